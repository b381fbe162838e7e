"""The operator's long-lived state and its two background loops (work queue and resync).

Kopf calls handlers on events; this module decides what a pass is triggered by. The ChatCluster
itself triggers a pass through kopf's create/update/resume handlers (with kopf's retries); a
child's event or the periodic resync only queues the owning cluster, and one worker runs the
queued passes, so a burst of child events costs one pass, not one each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from chatoperator.errors import TransientError
from chatoperator.kube import Kube
from chatoperator.reconcile import PassResult, reconcile
from chatoperator.settings import OperatorSettings
from chatoperator.stats import read_users_online

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name) of a ChatCluster."""


class WorkQueue:
    """Cluster keys waiting for a pass; a key queued twice before its pass runs once."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: dict[Key, int | None] = {}

    def add(self, key: Key, users_online: int | None = None) -> None:
        if key not in self._pending:
            self._queue.put_nowait(key)
            self._pending[key] = users_online
        elif users_online is not None:
            self._pending[key] = users_online

    async def get(self) -> tuple[Key, int | None]:
        key = await self._queue.get()
        return key, self._pending.pop(key)


@dataclass
class Runtime:
    kube: Kube
    settings: OperatorSettings
    known: set[Key] = field(default_factory=set)
    """Clusters seen by the watch and not deleted: the resync loop visits these."""
    queue: WorkQueue = field(default_factory=WorkQueue)
    _locks: defaultdict[Key, threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock)
    )
    _failures: dict[Key, int] = field(default_factory=dict)
    """Transient failures in a row per cluster (worker passes), for the backoff."""

    def run_pass(self, key: Key, *, users_online: int | None = None) -> PassResult | None:
        """One pass for the cluster ``key``; None when it is gone or being deleted.

        Passes of one cluster never overlap (kopf's handlers and the worker both come here),
        and each reads the ChatCluster under the lock, so it starts from the status the
        previous pass wrote rather than from a copy taken before it.
        """
        with self._locks[key]:
            body = self.kube.get_cluster(namespace=key[0], name=key[1])
            if body is None or body["metadata"].get("deletionTimestamp"):
                return None
            result = reconcile(self.kube, body, settings=self.settings, users_online=users_online)
        log.info("pass %s/%s: phase=%s writes=%d", *key, result.phase, result.writes)
        if result.failure:
            log.warning("pass %s/%s: %s", *key, result.failure)
        return result

    async def work(self) -> None:
        """Run queued passes forever, one at a time."""
        loop = asyncio.get_running_loop()
        while True:
            key, users_online = await self.queue.get()
            try:
                await asyncio.to_thread(self.run_pass, key, users_online=users_online)
            except TransientError as error:
                attempt = self._failures.get(key, 0)
                self._failures[key] = attempt + 1
                delay = self.settings.retry_delay(attempt)
                log.warning("pass %s/%s: %s; retrying in %.0f s", *key, error, delay)
                loop.call_later(delay, self.queue.add, key)
            except Exception:
                log.exception("pass %s/%s failed unexpectedly", *key)
                loop.call_later(self.settings.max_retry_delay_seconds, self.queue.add, key)
            else:
                self._failures.pop(key, None)

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
