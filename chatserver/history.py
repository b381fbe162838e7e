"""A room's recent window: the last N messages of one incarnation (epoch) of its log, their
dedupe keys and `since` recovery. Pure.

Update records (an `edit`, `delete` or `react`, issue 13) are entries of the window like
messages, in log order, so a join and a `since` replay carry them to the clients that fold them;
a client that did not ask for them gets the messages alone.

Every backend following a room reads the same log in the same order and feeds it through the
same window, so every backend reaches the same dedupe decision for every record without talking
to the others. A new incarnation of the log gets a new window: nothing of the old one applies.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chatserver.ids import MessageId, format_id

DedupeKey = tuple[str | None, str, str]
"""(sub, client id, ref): the same `send` retried by the same user, possibly through another
backend. The client id and ref are the client's own choice; token mode's verified `sub` keeps
one user's retry from matching another's send (open mode has none: None)."""


STORED_MESSAGE_OVERHEAD_BYTES = 416
"""A stored message's objects beyond its two encodings (403 bytes measured with tracemalloc):
the slots object, the bytes headers, the dedupe key and its strings, the deque and dict
entries."""
STR_OBJECT_BYTES = 49
"""What CPython's str object of ASCII text takes besides its characters (`sys.getsizeof("")`)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    epoch: int
    offset: int
    key: DedupeKey
    frame: bytes
    """The encoded `message` frame (JSON), spliced as is into `joined` history."""
    wire: bytes
    """`frame` as a complete WebSocket frame, written as is to every member."""
    owner: str = ""
    """Who may edit it (`owners.owner_of`)."""
    update: bool = False
    """An update record (an `update` frame), not a message."""

    @property
    def id(self) -> str:
        return format_id(self.epoch, self.offset)

    @property
    def size(self) -> int:
        """Bytes it holds in a window: both encodings, and a fixed share for the objects
        around them."""
        return (
            len(self.frame)
            + len(self.wire)
            + len(self.owner)
            + STR_OBJECT_BYTES
            + STORED_MESSAGE_OVERHEAD_BYTES
        )


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a `join` replays."""

    frames: Sequence[bytes]
    truncated: bool
    """Messages after `since` have left the window: the client missed some for good."""
    reset: bool = False
    """`since` is not in this log (another epoch, or past its end): `frames` is the whole
    window, and the client must drop what it holds of the room rather than add to it."""


class RoomHistory:
    """The last `size` messages of one room's log of epoch `epoch`, in log order."""

    __slots__ = ("_by_key", "_bytes", "_evicted_upto", "_max_bytes", "_messages", "_size", "epoch")

    def __init__(self, size: int, *, max_bytes: int, epoch: int) -> None:
        if size < 1:
            raise ValueError(f"history size must be at least 1, got {size}")
        self.epoch = epoch
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._messages: deque[StoredMessage] = deque()
        self._by_key: dict[DedupeKey, StoredMessage] = {}
        self._evicted_upto: int | None = None

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def last_offset(self) -> int | None:
        """Offset of the newest message seen (retained or evicted), None before the first."""
        if self._messages:
            return self._messages[-1].offset
        return self._evicted_upto

    def find(self, key: DedupeKey) -> StoredMessage | None:
        """The retained message sent under this key, if any."""
        return self._by_key.get(key)

    def at(self, offset: int) -> StoredMessage | None:
        """The retained entry at `offset`, if any."""
        index = bisect.bisect_left(self._messages, offset, key=lambda m: m.offset)
        if index < len(self._messages) and self._messages[index].offset == offset:
            return self._messages[index]
        return None

    @property
    def first_offset(self) -> int | None:
        """Offset of the oldest retained entry, None when there is none."""
        return self._messages[0].offset if self._messages else None

    def add(self, message: StoredMessage) -> None:
        """Append the next message of the log (offsets must increase; keys must be new)."""
        if message.epoch != self.epoch:
            raise ValueError(f"epoch {message.epoch} is not this window's {self.epoch}")
        if self._messages and message.offset <= self._messages[-1].offset:
            raise ValueError(f"offset {message.offset} is not after {self._messages[-1].offset}")
        if message.key in self._by_key:
            raise ValueError(f"duplicate key {message.key}: check find() first")
        self._messages.append(message)
        self._by_key[message.key] = message
        self._bytes += message.size
        # The newest message always stays: the window is also the dedupe window.
        while len(self._messages) > self._size or (
            self._bytes > self._max_bytes and len(self._messages) > 1
        ):
            evicted = self._messages.popleft()
            del self._by_key[evicted.key]
            self._bytes -= evicted.size
            self._evicted_upto = evicted.offset

    @property
    def size_bytes(self) -> int:
        """What the retained messages hold, as `StoredMessage.size` counts it."""
        return self._bytes

    def recover(self, since: MessageId | None, *, updates: bool = False) -> Recovery:
        """Every retained message after `since` (all of them when None), in order, and the
        update records among them when `updates`; the whole window with `reset` when `since`
        cannot be placed in this log."""
        if since is None:
            return Recovery(frames=self._frames(self._messages, updates), truncated=False)
        last = self.last_offset
        if since.epoch != self.epoch or last is None or since.offset > last:
            # Another incarnation of the log, an id from before epochs, or one this log never
            # reached: answering "nothing after it" would hide the log from the client.
            frames = self._frames(self._messages, updates)
            return Recovery(frames=frames, truncated=False, reset=True)
        # Offsets need not be contiguous, so "missed some" is judged against the last evicted
        # offset, not against since + 1.
        after = since.offset
        truncated = self._evicted_upto is not None and after < self._evicted_upto
        newer: list[StoredMessage] = []
        for message in reversed(self._messages):  # a reconnect usually misses only the tail
            if message.offset <= after:
                break
            newer.append(message)
        newer.reverse()
        return Recovery(frames=self._frames(newer, updates), truncated=truncated)

    @staticmethod
    def _frames(messages: Iterable[StoredMessage], updates: bool) -> list[bytes]:
        return [m.frame for m in messages if updates or not m.update]
