"""This pod's side of presence: publish its beat, keep the table of the others', and say when the
cluster's counts, or who is in this pod's rooms, change.

One task for the app's whole life (`Presence.run`). It wakes at the beat interval or soon after a
change (a session came or went, a beat arrived, the broker reconnected), publishes this pod's
beat when its counts changed or the interval passed, drops pods whose beats stopped, and hands a
new snapshot to `push` (the hub's fan-out) when the cluster's counts or the people of this pod's
rooms differ from the last one. Rounds are at least `PRESENCE_MIN_GAP` apart, so a burst of joins
costs one round; only rounds ask who is here by name (`people`), which costs more than counts.
A round may send a frame to every session, so on a busy pod rounds are spaced further, to
`PRESENCE_FRAMES_PER_SECOND` at most: measured with 6 000 idle clients joining, a quarter-second
gap made presence frames this pod's main work (socket writes) and its clients' too.

The room directory (issue 13) rides on beats too: a pod's first beat asks the others which rooms
exist with nobody in them (`ask`), and each pod that hears an ask names its own in its next beat
(`known`), so a pod started by a rolling update lists what its predecessors knew.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence

from chatserver.broker.base import Broker, BrokerUnavailable
from chatserver.interchange import Person, PresenceBeat
from chatserver.presence.table import PresenceSnapshot, PresenceTable

PRESENCE_MIN_GAP = 0.25
"""Seconds between two rounds of presence frames: bursts of joins coalesce into one update."""
PRESENCE_FRAMES_PER_SECOND = 5_000
"""Presence frames a pod's rounds may send per second, all sessions together: with 10 000
sessions a round every 2 s, with up to 1 250 every `PRESENCE_MIN_GAP`."""
MISSED_BEATS = 3
"""Beats a pod may miss before its sessions leave the counts."""


def round_gap(sessions: int) -> float:
    """Seconds after a round before the next, for a pod with `sessions` open."""
    return max(PRESENCE_MIN_GAP, sessions / PRESENCE_FRAMES_PER_SECOND)


LocalCounts = tuple[int, Mapping[str, int]]
"""This pod's open sessions and its local members per room (rooms with none left out)."""
LocalPeople = Mapping[str, tuple[Person, ...]]
"""The first local people of each room by name, distinct, at most the list bound per room."""


class Presence:
    """Cluster-wide presence as this pod sees it; `observe` is fed by the broker listener."""

    def __init__(
        self,
        broker: Broker,
        *,
        pod: str,
        interval: float,
        people_limit: int,
        local: Callable[[], LocalCounts],
        people: Callable[[], LocalPeople],
        push: Callable[[PresenceSnapshot], None],
        known: Callable[[], Sequence[str]] = tuple,
        on_known: Callable[[Sequence[str]], None] = lambda _: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`known` names the rooms this pod knows with nobody in them, for a pod that asks;
        `on_known` hears what the others answered to this pod's ask."""
        self._broker = broker
        self._pod = pod
        self._interval = interval
        self._local = local
        self._people = people
        self._push = push
        self._clock = clock
        self._table = PresenceTable(
            own_pod=pod, expire_after=MISSED_BEATS * interval, people_limit=people_limit
        )
        self._known = known
        self._on_known = on_known
        self._asking = True
        """Until a beat of this pod went out: it asks the others for their empty rooms."""
        self._answering = False
        """Another pod asked: this pod's next beat names its empty rooms."""
        self._changed = asyncio.Event()
        self._pushed: PresenceSnapshot | None = None

    def changed(self) -> None:
        """Local counts (or the broker connection) changed: run a round soon."""
        self._changed.set()

    def ask(self) -> None:
        """The broker (re)connected: ask the others for their empty rooms in the next beat (an
        ask made while it was away went nowhere)."""
        self._asking = True
        self._changed.set()

    def observe(self, beat: PresenceBeat) -> None:
        """A beat from any backend of the cluster, this one included."""
        if beat.pod != self._pod:
            if beat.known:
                self._on_known(beat.known)
            if beat.ask:
                self._answering = True
                self._changed.set()
        if self._table.observe(beat, now=time.monotonic()):
            self._changed.set()

    def snapshot(self) -> PresenceSnapshot:
        """The cluster's counts now: this pod's live counts plus every other pod's last beat
        (without people, which only rounds push)."""
        sessions, rooms = self._local()
        return self._table.snapshot(own_sessions=sessions, own_rooms=rooms)

    async def run(self) -> None:
        """Publish this pod's beat (periodically and soon after changes) and push snapshots when
        the cluster's counts change; runs for the app's whole life."""
        next_beat = 0.0
        published: tuple[LocalCounts, LocalPeople] | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_beat - time.monotonic())):
                    await self._changed.wait()
            self._changed.clear()
            now = time.monotonic()
            self._table.expire(now=now)
            counts, people = self._local(), self._people()
            sessions, rooms = counts
            if (counts, people) != published or now >= next_beat or self._answering:
                next_beat = now + self._interval
                answering = self._answering
                if await self._publish(
                    sessions=sessions,
                    rooms=rooms,
                    people=people,
                    ask=self._asking,
                    known=tuple(self._known()) if answering else (),
                ):
                    published = counts, people
                    self._asking = False
                    if answering:
                        self._answering = False
            snapshot = self._table.snapshot(
                own_sessions=sessions, own_rooms=rooms, own_people=people
            )
            if snapshot != self._pushed:
                self._pushed = snapshot
                self._push(snapshot)
            await asyncio.sleep(round_gap(sessions))

    async def announce_gone(self) -> None:
        """The last beat: other backends drop this pod's sessions at once."""
        await self._publish(sessions=0, rooms={}, gone=True)

    async def _publish(
        self,
        *,
        sessions: int,
        rooms: Mapping[str, int],
        people: LocalPeople | None = None,
        gone: bool = False,
        ask: bool = False,
        known: tuple[str, ...] = (),
    ) -> bool:
        beat = PresenceBeat(
            pod=self._pod,
            sessions=sessions,
            rooms=dict(rooms),
            ts=self._clock(),
            gone=gone,
            people=dict(people or {}),
            ask=ask,
            known=known,
        )
        try:
            await self._broker.publish_presence(beat)
        except BrokerUnavailable:
            return False  # best effort: the next beat follows within the interval
        return True
