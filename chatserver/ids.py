"""Message ids, the one place the server parses and formats them. Pure.

An id is `<epoch>-<offset>` (DESIGN section 4): the incarnation of the room's log and the
position in it. The epoch is fixed when a log is created (milliseconds since the Unix epoch then)
and read back by every backend from the log itself (the broker's business), so every backend
names a message alike; a log deleted and created again gets a new epoch, so ids never repeat for
the life of a room name. Clients treat ids as opaque but may rely on one order rule: within an
epoch by offset, and a newer epoch after every id of an older one. `MessageId` orders exactly so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from chatserver.contract import MESSAGE_ID_PATTERN

LEGACY_EPOCH: Final = 0
"""The epoch an id without one (a bare offset, from before epochs) is read as. No log has it:
epochs are creation times."""

_ID: Final = re.compile(MESSAGE_ID_PATTERN)


@dataclass(frozen=True, order=True, slots=True)
class MessageId:
    epoch: int
    offset: int

    def __str__(self) -> str:
        return format_id(self.epoch, self.offset)


def format_id(epoch: int, offset: int) -> str:
    return f"{epoch}-{offset}"


def parse_id(text: str) -> MessageId | None:
    """The id in `text`, or None when it is not one (a bare offset is epoch `LEGACY_EPOCH`)."""
    match = _ID.fullmatch(text)
    if match is None:
        return None
    epoch, offset = match.groups()
    return MessageId(LEGACY_EPOCH if epoch is None else int(epoch), int(offset))


def new_epoch(now: float, *, after: int | None = None) -> int:
    """The epoch of a log created at `now` (Unix seconds): milliseconds then, and above `after`
    (the epoch of the log it replaces, when known), so a newer log sorts after an older one even
    if it was made in the same millisecond or on a clock a little behind."""
    epoch = max(int(now * 1000), LEGACY_EPOCH + 1)
    return epoch if after is None else max(epoch, after + 1)
