"""The room directory (issue 13): which rooms exist, with their members across every backend,
searched by name and paged. Pure: time comes in through an injected clock.

What "exists" means here, and why it is this cheap: the rooms of `chat.rooms` (always there),
every room someone is in on any backend (presence beats, with their counts), every room this
backend has seen in use since it started, listed with 0 members once everyone left, and the
empty rooms the backends running when it started knew (each answers its first beat's ask with up
to `DIRECTORY_SYNC_MAX` of them: `presence.loop`), so a rolling update keeps them. A backend
never asks the broker for a list: AMQP cannot list queues, the management API is the operator's
alone (network policy) and absent on an external broker, and presence already brings every
room in use to every backend. What that misses: an empty room no running backend has seen in
use (after every backend restarted at once; shown again once someone enters it); what it may
keep: a room the operator reclaimed since (idle for `chat.idleRoomSeconds`), whose join creates
it again or, for someone who may not create it, is refused with `room_not_found`, which makes
this backend forget it.

Direct-message rooms (`dm.py`) never enter it: not remembered, not listed, not told.

Bounded: at most `DIRECTORY_KNOWN_MAX` remembered rooms (the one empty longest goes first); the
sorted listing is rebuilt at most every `DIRECTORY_CACHE_SECONDS`, so requests cost one filter
over it each, never a sort or a broker round trip.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from chatserver.contract import ROOM_NAME_PATTERN
from chatserver.dm import is_dm_room

ROOM_NAME: Final = re.compile(ROOM_NAME_PATTERN)
"""What another backend names is checked like a client's room (it is bounded all the same)."""


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    rooms: Sequence[tuple[str, int]]
    """(room, members) of the page, busiest first, then by name; rooms whose name starts with
    the query before those that only contain it."""
    total: int
    """Rooms matching the query, on every page."""


class RoomDirectory:
    """The rooms this backend knows of, and a briefly cached listing of them."""

    def __init__(
        self,
        *,
        preset: Iterable[str],
        known_max: int,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._preset = tuple(preset)
        self._known_max = known_max
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._known: OrderedDict[str, None] = OrderedDict()
        """Rooms seen in use, the one seen longest ago first."""
        self._listing: tuple[tuple[str, int], ...] = ()
        self._built_at: float | None = None

    def note(self, rooms: Iterable[str]) -> None:
        """These rooms are in use now (a presence round's rooms, or one just joined)."""
        for room in rooms:
            if is_dm_room(room):
                continue
            self._known[room] = None
            self._known.move_to_end(room)
        while len(self._known) > self._known_max:
            self._known.popitem(last=False)

    def learn(self, rooms: Iterable[str]) -> None:
        """Rooms another backend knows with nobody in them (its answer to this one's ask):
        remembered as seen longest ago, so they are the first forgotten."""
        for room in rooms:
            if (
                room not in self._known
                and ROOM_NAME.fullmatch(room)
                and not is_dm_room(room)
                and len(self._known) < self._known_max
            ):
                self._known[room] = None
                self._known.move_to_end(room, last=False)

    def empty(self, counts: Mapping[str, int], *, limit: int) -> tuple[str, ...]:
        """Up to `limit` remembered rooms nobody is in (`counts`: presence's rooms in use), the
        most recently seen in use first."""
        empty = (room for room in reversed(self._known) if not counts.get(room))
        return tuple(itertools.islice(empty, limit))

    def forget(self, room: str) -> None:
        """The broker says `room` does not exist (a join found no log)."""
        self._known.pop(room, None)

    def listing(self, counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
        """Every room with its members (`counts`: presence's rooms in use), busiest first;
        the one built within the cache interval when there is one."""
        now = self._clock()
        if self._built_at is None or now - self._built_at >= self._cache_seconds:
            names = {*self._preset, *self._known, *(r for r in counts if not is_dm_room(r))}
            self._listing = tuple(
                sorted(((name, counts.get(name, 0)) for name in names), key=_busiest_first)
            )
            self._built_at = now
        return self._listing


def search(
    listing: Sequence[tuple[str, int]],
    *,
    query: str,
    offset: int,
    limit: int,
    visible: Callable[[str], bool],
) -> DirectoryPage:
    """The page of `listing` at `offset` of the rooms `visible` to the asker whose name holds
    `query` (every room for ""), those starting with it first."""
    starting: list[tuple[str, int]] = []
    containing: list[tuple[str, int]] = []
    for entry in listing:
        name = entry[0]
        if query in name and visible(name):
            (starting if name.startswith(query) else containing).append(entry)
    matched = starting + containing
    return DirectoryPage(rooms=matched[offset : offset + limit], total=len(matched))


def _busiest_first(entry: tuple[str, int]) -> tuple[int, str]:
    return -entry[1], entry[0]
