"""The broker contract.

A room is an append-only log. Every backend that follows a room sees the same records, in the
same order, at the same offsets, under the same epoch; that shared order is what makes message
ids, ordering, dedupe and `join since=` agree across backends without any backend talking to
another.

A log may end and start again under the same room name (a RabbitMQ stream deleted and declared
again, a `chatserver dev` restarted): the new log numbers its offsets from the start again, so
each incarnation has an epoch, fixed when it is created and read back by every follower from the
log itself, greater than the epoch of any incarnation before it (`ids.new_epoch`). Offsets order
records within one epoch only.

Records carry opaque bytes: the hub encodes a message once and the broker never looks inside.
Presence travels beside the logs as small periodic beats, and typing signals the same way, never
stored and never in a room's log. What the bytes of a
record and the fields of a beat mean is `interchange.py`'s business, not the broker's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chatserver.interchange import PresenceBeat, TypingSignal


class BrokerUnavailable(Exception):
    """The broker cannot take or confirm a write right now; the caller may retry later."""


class RoomLimitReached(BrokerUnavailable):
    """The broker refuses to create another room's log (it holds as many as it may); rooms that
    exist are not affected. A `BrokerUnavailable`, so every path that recovers from one recovers
    from this; the hub tells the client which it was."""


@dataclass(frozen=True, slots=True)
class Record:
    """One entry of a room's log, as delivered to followers."""

    room: str
    epoch: int
    """The incarnation of the room's log this record belongs to."""
    offset: int
    """Position in the room's log: the same on every backend, strictly increasing per room
    (not necessarily contiguous: the broker may keep entries of its own between records)."""
    body: bytes
    """Exactly the bytes given to `Broker.append`."""


@dataclass(frozen=True, slots=True)
class OlderRecords:
    """What `Broker.read_before` found: a page of a room's log read back from an offset."""

    records: Sequence[Record]
    """Oldest first."""
    start: bool
    """Nothing older is retained: `records` begin at the oldest record the broker keeps."""


class BrokerListener(Protocol):
    """Receives what the broker delivers. Called on the event loop; must not block or await."""

    def on_records(self, records: Sequence[Record]) -> None:
        """New records of followed rooms, in log order per room."""

    def on_log_reset(self, room: str, epoch: int) -> None:
        """A followed room's log was replaced by a new incarnation, `epoch`: everything delivered
        of the room before is gone from the broker, and the records that follow (from the new
        log's oldest) carry the new epoch."""

    def on_presence(self, beat: PresenceBeat) -> None:
        """A beat from any backend of the cluster, this one included."""

    def on_typing(self, signal: TypingSignal) -> None:
        """A typing signal from any backend of the cluster, this one included."""

    def on_connection_change(self, connected: bool) -> None:
        """The broker connection went up or down (drives readiness)."""


class Broker(Protocol):
    """Room logs and presence shared by every backend of one chat cluster."""

    @property
    def connected(self) -> bool:
        """True while writes can be confirmed and followed rooms are being delivered."""

    @property
    def blocked(self) -> str | None:
        """Why the broker holds back every write right now (a RabbitMQ memory or disk alarm),
        or None. While blocked, `append` and a `follow` that would write raise BrokerUnavailable
        at once rather than wait for a confirm that cannot come."""

    @property
    def room_limit_reached(self) -> bool:
        """The broker refused the last room this backend asked it to create (its room cap:
        `chat.maxRooms`, or fewer when its nodes cannot hold that many); the next room it
        creates clears it. Rooms that exist are unaffected."""

    async def start(self, listener: BrokerListener) -> None:
        """Begin connecting (and reconnecting, with backoff, for the broker's whole life).

        Returns at once; `listener.on_connection_change(True)` says when the broker is usable.
        """

    async def close(self) -> None:
        """Stop following everything, close the connection, stop reconnecting."""

    async def follow(self, room: str, *, after: int | None = None) -> int:
        """Deliver the room's records to the listener, starting after offset `after` of the
        current log; returns the log's epoch.

        `after=None` starts at the oldest record the broker retains. Returns once every record
        appended before the call has been delivered (so history is complete when it returns).
        Following a room already followed delivers nothing again. After a reconnect the broker
        resumes each followed room right after the last offset it delivered: nothing is missed
        or repeated; if the log was replaced meanwhile, it calls `on_log_reset` and delivers the
        new log from its oldest record. Raises BrokerUnavailable when not connected.
        """

    async def read_before(self, room: str, *, epoch: int, before: int, limit: int) -> OlderRecords:
        """The last `limit` (at least 1) records before offset `before` of the room's log of
        `epoch`, as retained now: a read of its own, apart from the delivery of followed rooms,
        which it never holds up. `before` must be an offset this broker delivered; the records
        come labelled with `epoch` (a broker that sees the log is of another epoch answers none,
        with `start`). Raises BrokerUnavailable when not connected."""

    async def exists(self, room: str) -> bool:
        """True when the room's log exists already: joining it creates nothing. Raises
        BrokerUnavailable when the broker cannot say."""

    async def unfollow(self, room: str) -> None:
        """Stop delivering the room (the last local member left). Idempotent."""

    async def append(self, room: str, body: bytes) -> None:
        """Append a record durably; returns once the broker has confirmed it.

        Raises BrokerUnavailable when not connected or when the broker refuses or loses it
        before confirming (then it may or may not have been stored: retry with the same
        dedupe key in the body).
        """

    async def publish_presence(self, beat: PresenceBeat) -> None:
        """Send a beat to every backend of the cluster (best effort, never stored)."""

    async def publish_typing(self, signal: TypingSignal) -> None:
        """Send a typing signal to every backend of the cluster (best effort, never stored)."""
