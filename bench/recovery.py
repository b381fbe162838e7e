"""What a client does after losing its server, and whether it got everything back. Pure.

- The reconnect policy is the UI's (chatserver/static/js/backoff.js): exponential backoff with
  full jitter, so that a server's worth of clients does not come back in lockstep.
- A client's stream is audited against the messages the senders got acknowledged: each must
  arrive exactly once, in the order of the room's log (chatserver's ids increase along it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final

RECONNECT_BASE: Final = 0.5
"""Seconds: the ceiling of the first delay (`RECONNECT_BASE_MS` in backoff.js)."""
RECONNECT_CAP: Final = 15.0
"""Seconds: the largest ceiling (`RECONNECT_CAP_MS` in backoff.js)."""


def full_jitter_delay(attempt: int, *, uniform: Callable[[], float] = random.random) -> float:
    """Seconds before reconnect attempt `attempt` (0 for the first): uniform in [0, ceiling),
    the ceiling doubling from `RECONNECT_BASE` up to `RECONNECT_CAP`."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = min(RECONNECT_CAP, RECONNECT_BASE * 2.0 ** min(attempt, 30))
    return uniform() * ceiling


@dataclass(frozen=True, slots=True)
class StreamAudit:
    """One client's received ids against the acknowledged ones."""

    duplicates: int
    """Arrivals of an id already received."""
    late: int
    """First arrivals of an id below one already received (out of log order)."""
    missing: int
    """Acknowledged ids never received."""
    unexpected: int
    """Ids received that no sender got acknowledged."""

    @property
    def complete(self) -> bool:
        """Every acknowledged message exactly once, in order, and nothing else."""
        return not (self.duplicates or self.late or self.missing or self.unexpected)


def audit_stream(received: Sequence[int], acked: Collection[int]) -> StreamAudit:
    """Audit the ids a client received, in arrival order, against the acknowledged ids."""
    seen: set[int] = set()
    duplicates = late = 0
    highest: int | None = None
    for id in received:
        if id in seen:
            duplicates += 1
            continue
        seen.add(id)
        if highest is not None and id < highest:
            late += 1
        else:
            highest = id
    acked_set = set(acked)
    return StreamAudit(
        duplicates=duplicates,
        late=late,
        missing=len(acked_set - seen),
        unexpected=len(seen - acked_set),
    )
