"""Cluster-wide presence from the beats of every backend pod. Pure: time comes in as arguments.

Each pod reports its own sessions and room members; the cluster's counts are the sum over live
pods. A pod that misses `expire_after` seconds of beats (it died without a `gone` beat) drops
out, which is how a killed backend's users leave the counts.

Who is in a room, by name, is the union of every live pod's list for it, cut to the first
`people_limit` by name: each pod sends at most that many per room, so the union of the first
ones of each holds the cluster's first ones.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from chatserver.interchange import Person, PresenceBeat


@dataclass(frozen=True, slots=True)
class RoomPeople:
    """Who is in one room, as far as the list bound lets a pod tell."""

    first: tuple[Person, ...]
    """The first people by name, distinct, at most the bound."""
    truncated: bool
    """Some may be left out: the union was longer than the bound, or a pod's list (this pod's
    included) was full, so that pod may have cut it."""


@dataclass(frozen=True, slots=True)
class PresenceSnapshot:
    users_online: int
    rooms: Mapping[str, int]
    """Members per room, rooms with nobody left out."""
    people: Mapping[str, RoomPeople] = field(default_factory=dict)
    """Who is in each room this pod has members in (only those: nobody else is shown them)."""


class PresenceTable:
    """The latest beat of every other pod; this pod's own counts are passed in live."""

    __slots__ = ("_beats", "_expire_after", "_own_pod", "_people_limit")

    def __init__(self, *, own_pod: str, expire_after: float, people_limit: int) -> None:
        self._own_pod = own_pod
        self._expire_after = expire_after
        self._people_limit = people_limit
        self._beats: dict[str, tuple[PresenceBeat, float]] = {}

    def observe(self, beat: PresenceBeat, *, now: float) -> bool:
        """Record a beat received at `now` (a monotonic clock); True if the counts or the people
        changed."""
        if beat.pod == self._own_pod:
            return False  # our own echo: the live local counts are always fresher
        previous = self._beats.get(beat.pod)
        if beat.gone:
            return self._beats.pop(beat.pod, None) is not None
        # A peer configured with a longer list (during a rolling change) is held to ours.
        people = {room: names[: self._people_limit] for room, names in beat.people.items()}
        beat = dataclasses.replace(beat, people=people)
        self._beats[beat.pod] = (beat, now)
        return previous is None or _content(previous[0]) != _content(beat)

    def expire(self, *, now: float) -> bool:
        """Drop pods silent for too long; True if any was dropped."""
        stale = [pod for pod, (_, seen) in self._beats.items() if now - seen > self._expire_after]
        for pod in stale:
            del self._beats[pod]
        return bool(stale)

    def snapshot(
        self,
        *,
        own_sessions: int,
        own_rooms: Mapping[str, int],
        own_people: Mapping[str, tuple[Person, ...]] | None = None,
    ) -> PresenceSnapshot:
        """The cluster's counts; with `own_people`, also who is in each of those rooms (the
        merge costs rooms x pods x the list bound, so only the presence round asks for it)."""
        users = own_sessions
        rooms: Counter[str] = Counter(own_rooms)
        for beat, _ in self._beats.values():
            users += beat.sessions
            rooms.update(beat.rooms)
        people = {room: self._first_people(room, own) for room, own in (own_people or {}).items()}
        return PresenceSnapshot(
            users_online=users,
            rooms={room: n for room, n in rooms.items() if n > 0},
            people=people,
        )

    def _first_people(self, room: str, own: tuple[Person, ...]) -> RoomPeople:
        lists = [own, *(beat.people.get(room, ()) for beat, _ in self._beats.values())]
        union = set().union(*lists)
        return RoomPeople(
            first=tuple(heapq.nsmallest(self._people_limit, union)),
            truncated=len(union) > self._people_limit
            or any(len(names) >= self._people_limit for names in lists),
        )

    @property
    def pods(self) -> frozenset[str]:
        """Other pods currently counted."""
        return frozenset(self._beats)


def _content(
    beat: PresenceBeat,
) -> tuple[int, Mapping[str, int], Mapping[str, tuple[Person, ...]]]:
    return beat.sessions, beat.rooms, beat.people
