"""Which room streams have been idle long enough to reclaim, from what successive visits to the
broker saw.

A room nobody is in has a stream nobody consumes: a backend consumes a room's stream exactly
while it has a member in the room. The operator sees consumers only when it visits the broker,
so a room counts as idle from the first visit that found it unused, and a room found in use
again starts over. Kept in the operator's memory: a restarted operator starts every clock
again, which only ever keeps a room longer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class IdleRooms:
    """One cluster's unused room streams, and since when each has been seen unused."""

    _since: dict[str, float] = field(default_factory=dict)

    def saw(self, unused: Iterable[str], now: float) -> None:
        """A visit found exactly these streams unused; every other one is in use or gone."""
        self._since = {name: self._since.get(name, now) for name in unused}

    def due(self, now: float, idle_seconds: int) -> tuple[str, ...]:
        """The streams unused for at least ``idle_seconds`` (none when it is 0: never)."""
        if idle_seconds <= 0:
            return ()
        return tuple(sorted(n for n, since in self._since.items() if now - since >= idle_seconds))
