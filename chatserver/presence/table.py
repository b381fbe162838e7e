"""Cluster-wide presence from the beats of every backend pod. Pure: time comes in as arguments.

Each pod reports its own sessions and room members; the cluster's counts are the sum over live
pods. A pod that misses `expire_after` seconds of beats (it died without a `gone` beat) drops
out, which is how a killed backend's users leave the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from chatserver.interchange import PresenceBeat


@dataclass(frozen=True, slots=True)
class PresenceSnapshot:
    users_online: int
    rooms: Mapping[str, int]
    """Members per room, rooms with nobody left out."""


class PresenceTable:
    """The latest beat of every other pod; this pod's own counts are passed in live."""

    __slots__ = ("_beats", "_expire_after", "_own_pod")

    def __init__(self, *, own_pod: str, expire_after: float) -> None:
        self._own_pod = own_pod
        self._expire_after = expire_after
        self._beats: dict[str, tuple[PresenceBeat, float]] = {}

    def observe(self, beat: PresenceBeat, *, now: float) -> bool:
        """Record a beat received at `now` (a monotonic clock); True if the counts changed."""
        if beat.pod == self._own_pod:
            return False  # our own echo: the live local counts are always fresher
        previous = self._beats.get(beat.pod)
        if beat.gone:
            return self._beats.pop(beat.pod, None) is not None
        self._beats[beat.pod] = (beat, now)
        return previous is None or _counts(previous[0]) != _counts(beat)

    def expire(self, *, now: float) -> bool:
        """Drop pods silent for too long; True if any was dropped."""
        stale = [pod for pod, (_, seen) in self._beats.items() if now - seen > self._expire_after]
        for pod in stale:
            del self._beats[pod]
        return bool(stale)

    def snapshot(self, *, own_sessions: int, own_rooms: Mapping[str, int]) -> PresenceSnapshot:
        users = own_sessions
        rooms: Counter[str] = Counter(own_rooms)
        for beat, _ in self._beats.values():
            users += beat.sessions
            rooms.update(beat.rooms)
        return PresenceSnapshot(
            users_online=users, rooms={room: n for room, n in rooms.items() if n > 0}
        )

    @property
    def pods(self) -> frozenset[str]:
        """Other pods currently counted."""
        return frozenset(self._beats)


def _counts(beat: PresenceBeat) -> tuple[int, Mapping[str, int]]:
    return beat.sessions, beat.rooms
