"""The operator's long-lived state and the one way into a reconcile pass.

Every reason for a pass only queues the cluster's key: the ChatCluster appeared or its spec
changed, a child it owns changed or vanished, the periodic resync came round, or a retry fell
due. Workers take keys from the queue and run the passes, so one policy decides what follows a
pass, whatever queued it:

- a transient API error or a missing permission (``TransientError``, ``NotPermitted``): the key
  is queued again after ``OperatorSettings.retry_delay``, which doubles with every failure in a
  row and is reset by a pass that goes through;
- an invalid spec (recorded in status by the pass, or a ChatCluster that cannot be parsed): no
  retry until the next change or resync;
- anything else is a bug: logged with its traceback, and retried after the longest delay.

A key is never in two passes at once; a key queued while its pass runs runs once more after it,
so a burst of events costs at most one extra pass. A deleted cluster's state (its failure count
and pending retry) is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatoperator.broker_admin import visit_broker
from chatoperator.errors import InvalidSpec, NotPermitted, TransientError
from chatoperator.idle_rooms import IdleRooms
from chatoperator.kube import Kube
from chatoperator.reconcile import BrokerTarget, PassResult, reconcile
from chatoperator.settings import OperatorSettings
from chatoperator.stats import read_users_online
from chatoperator.status.observed import BrokerVisit

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name) of a ChatCluster."""

WORKERS = 4
"""Passes of different clusters that may run at once (each on a thread of its own: the API
client is synchronous)."""


class WorkQueue:
    """Cluster keys waiting for a pass. A key queued twice before its pass runs once; a key
    queued while its pass runs is queued again when that pass is done."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: dict[Key, int | None] = {}
        """Queued keys, with the ``usersOnline`` to record (None: keep the last one)."""
        self._running: set[Key] = set()
        self._again: dict[Key, int | None] = {}
        """Keys queued while their pass runs."""

    def add(self, key: Key, users_online: int | None = None) -> None:
        waiting = self._again if key in self._running else self._pending
        if key not in waiting:
            waiting[key] = users_online
            if waiting is self._pending:
                self._queue.put_nowait(key)
        elif users_online is not None:
            waiting[key] = users_online

    async def get(self) -> tuple[Key, int | None]:
        """The next key, now running until ``done``."""
        key = await self._queue.get()
        self._running.add(key)
        return key, self._pending.pop(key)

    def done(self, key: Key) -> None:
        self._running.discard(key)
        if key in self._again:
            self.add(key, self._again.pop(key))


def needs_pass(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Whether a ChatCluster watch event calls for a pass: the first sight of a cluster (the
    operator's initial listing, or a new one), or a spec the last status does not reflect. The
    operator's own status writes come back as events too; those need none."""
    if event_type in (None, "ADDED"):
        return True
    status = body.get("status") or {}
    return bool(status.get("observedGeneration") != body["metadata"].get("generation"))


@dataclass
class Runtime:
    kube: Kube
    settings: OperatorSettings
    known: set[Key] = field(default_factory=set)
    """Clusters seen by the watch and not deleted: the resync loop visits these."""
    queue: WorkQueue = field(default_factory=WorkQueue)
    _failures: dict[Key, int] = field(default_factory=dict)
    """Failed passes in a row per cluster, for the backoff."""
    _retries: dict[Key, asyncio.TimerHandle] = field(default_factory=dict)
    _broker_visits: dict[Key, BrokerVisit] = field(default_factory=dict)
    """The last visit to each cluster's broker (room policy, nodes), for its status."""
    _visited: dict[Key, tuple[BrokerTarget, float]] = field(default_factory=dict)
    """What each cluster's last visit was for, and when (monotonic): a steady broker is visited
    again once per resync (one that restarted blank has lost the policy)."""
    _idle_rooms: dict[Key, IdleRooms] = field(default_factory=dict)
    """Each cluster's unused rooms and since when, for reclaiming them."""
    _visits: set[asyncio.Task[None]] = field(default_factory=set)
    """Visits under way (held, so none is collected before it ends)."""

    def cluster_seen(self, key: Key, *, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a ChatCluster that still exists."""
        self.known.add(key)
        if needs_pass(event_type, body):
            self.queue.add(key)

    def forget(self, key: Key) -> None:
        """The cluster is deleted: drop everything kept for it."""
        self.known.discard(key)
        self._failures.pop(key, None)
        self._broker_visits.pop(key, None)
        self._visited.pop(key, None)
        self._idle_rooms.pop(key, None)
        retry = self._retries.pop(key, None)
        if retry is not None:
            retry.cancel()

    def run_pass(self, key: Key, *, users_online: int | None = None) -> PassResult | None:
        """One pass for the cluster ``key`` (blocking: run it on a thread); None when it is
        gone or being deleted.

        Each pass reads the ChatCluster first, so it starts from the status the previous pass
        wrote rather than from a copy taken before it.
        """
        body = self.kube.get_cluster(namespace=key[0], name=key[1])
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        result = reconcile(
            self.kube,
            body,
            settings=self.settings,
            users_online=users_online,
            broker_visit=self._broker_visits.get(key),
        )
        log.info("pass %s/%s: phase=%s writes=%d", *key, result.phase, result.writes)
        if result.failure:
            log.warning("pass %s/%s: %s", *key, result.failure)
        return result

    async def work(self) -> None:
        """Run queued passes forever, ``WORKERS`` at a time."""
        await asyncio.gather(*(self._worker() for _ in range(WORKERS)))

    async def _worker(self) -> None:
        while True:
            key, users_online = await self.queue.get()
            try:
                await self._pass(key, users_online)
            finally:
                self.queue.done(key)

    async def _pass(self, key: Key, users_online: int | None) -> None:
        try:
            result = await asyncio.to_thread(self.run_pass, key, users_online=users_online)
        except (TransientError, NotPermitted) as error:
            self._retry(key, str(error))
        except InvalidSpec as error:
            log.warning("pass %s/%s: %s; waiting for a change", *key, error)
            self._settled(key)
        except Exception:
            log.exception("pass %s/%s failed unexpectedly", *key)
            self._retry(key, "a bug", delay=self.settings.max_retry_delay_seconds)
        else:
            if result is None:
                self.forget(key)
            elif result.retry:
                self._retry(key, str(result.failure))
            else:
                self._settled(key)
            if result is not None:
                self._visit_broker(key, result.broker_target)

    def _visit_broker(self, key: Key, target: BrokerTarget | None) -> None:
        """Visit the broker's management API off the pass (the broker may be slow to answer);
        a visit with news queues a pass, which records it in status."""
        if target is None:
            return
        last = self._visited.get(key)
        now = time.monotonic()
        if last is not None and last[0] == target and now - last[1] < self.settings.resync_seconds:
            return
        self._visited[key] = (target, now)
        task = asyncio.create_task(self._visit(key, target))
        self._visits.add(task)
        task.add_done_callback(self._visits.discard)

    async def _visit(self, key: Key, target: BrokerTarget) -> None:
        idle = self._idle_rooms.setdefault(key, IdleRooms())
        visit = await asyncio.to_thread(
            visit_broker,
            target.policy,
            username=target.username,
            password=target.password,
            timeout=self.settings.stats_timeout_seconds,
            reclaim=idle.due(time.monotonic(), target.policy.idle_room_seconds),
        )
        if visit.applied:
            idle.saw(visit.unused_rooms, time.monotonic())
        if not visit.applied:
            log.warning("cluster %s/%s: room policy not applied: %s", *key, visit.message)
        if not visit.applied or len(visit.running_nodes) < target.nodes or visit.alarms:
            self._visited.pop(key, None)  # visit again at the next pass, not only at resync
        if key in self.known and visit != self._broker_visits.get(key):
            self._broker_visits[key] = visit
            self.queue.add(key)

    def _retry(self, key: Key, reason: str, *, delay: float | None = None) -> None:
        attempt = self._failures.get(key, 0)
        self._failures[key] = attempt + 1
        if delay is None:
            delay = self.settings.retry_delay(attempt)
        log.warning("pass %s/%s: %s; retrying in %.0f s", *key, reason, delay)
        previous = self._retries.pop(key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._retries[key] = loop.call_later(delay, self._retry_due, key)

    def _retry_due(self, key: Key) -> None:
        self._retries.pop(key, None)
        self.queue.add(key)

    def _settled(self, key: Key) -> None:
        self._failures.pop(key, None)
        retry = self._retries.pop(key, None)
        if retry is not None:
            retry.cancel()

    async def resync(self) -> None:
        """Queue every known cluster with fresh ``usersOnline`` at a fixed interval."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            keys = sorted(self.known)
            counts = await asyncio.gather(
                *(
                    asyncio.to_thread(
                        read_users_online,
                        namespace=namespace,
                        name=name,
                        timeout=self.settings.stats_timeout_seconds,
                    )
                    for namespace, name in keys
                )
            )
            for key, users_online in zip(keys, counts, strict=True):
                self.queue.add(key, users_online)
