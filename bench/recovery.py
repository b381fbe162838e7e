"""What a client does after losing its server, and whether it got everything back. Pure.

- The reconnect policy is the UI's (chatserver/static/js/backoff.js): exponential backoff with
  full jitter, so that a server's worth of clients does not come back in lockstep.
- A client's stream is audited against the messages the senders got acknowledged: each must
  arrive exactly once, in the order of the room's log. A message is known by its position in
  that log: chatserver's id (increasing along the log), Centrifugo's publication offset
  (increasing integers per channel, within one epoch). Centrifugo's publish reply carries no
  offset, so its acknowledged messages are known by their text until a delivery tells their
  offset (`resolve_acked`). python-socketio keeps no log: its messages are ordered by their
  send time (their text), and its clients cannot recover (`RECOVERS`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from bench.wire import Delivered, decode_text
from chatserver.ids import parse_id

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


class PositionError(ValueError):
    """A message id that does not say where the message stands in its room's log."""


def chat_position(message: Delivered) -> int:
    """A chatserver id as a number in the ids' order (DESIGN.md section 4: by offset within an
    epoch, a newer epoch after every older id). The contract calls ids opaque: a change there
    fails the run loudly rather than the audit quietly."""
    parsed = parse_id(message.id)
    if parsed is None:
        raise PositionError(f"message id {message.id!r} is not a chatserver id: no order")
    return (parsed.epoch << 64) | parsed.offset


def offset_position(message: Delivered) -> int:
    """A Centrifugo publication offset (1, 2, ... per channel), as the bench's wire carries it."""
    if not message.id.isdigit() or int(message.id) < 1:
        raise PositionError(f"publication offset {message.id!r}: the channel keeps no history?")
    return int(message.id)


def send_time_position(message: Delivered) -> int:
    """The send time the text carries: the only order of a server without a log."""
    sent_ns = decode_text(message.text)
    if sent_ns is None:
        raise PositionError(f"{message.text!r} carries no send time")
    return sent_ns


POSITIONS: Final[Mapping[str, Callable[[Delivered], int]]] = {
    "chatcluster": chat_position,
    "centrifugo": offset_position,
    "python-socketio": send_time_position,
}
"""Where a delivered message stands in its room's stream, by wire (`bench.wire.Wire.name`)."""
RECOVERS: Final = frozenset({"chatcluster", "centrifugo"})
"""Wires whose clients can ask for what they missed (chatserver's `join since`, Centrifugo's
`recover`); the others rejoin without."""


def resolve_acked(texts: Sequence[str], position_of: Mapping[str, int]) -> list[int]:
    """Positions of messages acknowledged without one, by the text they were sent with, through
    the positions they arrived with (`position_of`). One that reached nobody gets a position of
    its own below every real one (distinct, negative), so it counts as missing everywhere."""
    unknown = iter(range(-1, -len(texts) - 1, -1))
    return [position_of[text] if text in position_of else next(unknown) for text in texts]


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
