"""This backend's side of the room logs: which rooms it follows and why, each followed room's
window, and the whole `send` story, from the record appended to the message id its `ack` carries.

Following. A room is followed on the broker only while something here holds it: each local
member, each join waiting for the follow and each send waiting for its record is one hold
(`held`, `retain`, `release`). The last release unfollows the room and drops its window; a later
follow reads the log again from the oldest retained record, which rebuilds the same window and
dedupe state every other backend has, so there is no second source of truth to keep in sync. An
unfollow and the next follow of one room never interleave on the broker.

Sending. `append` first looks the (sub, client, ref) key up in the room's window: a retry of a
message already there is answered with the original id and appends nothing. Otherwise it
appends a record carrying a fresh `publish_id` and waits, under `ack_timeout_seconds`, until this
backend's own follower reads that record back (`take`): the message is then durable and in this
backend's history, which is what an `ack` promises (read-your-writes). A record that turns out to
repeat a key already in the window is a retry that raced its original, perhaps through
another backend: every backend reads the same log, so all of them drop that same record, and the
send waiting for it gets the original's id.

Updates (issue 13). An `edit`, `delete` or `react` is appended like a message (the same key,
the same dedupe, the same `ack`), as a record naming its target message; `target` first finds
that message, in the window or, further back, in the log itself, so the hub can check that it
is a message and whose. Clients fold updates into their targets; nothing here folds them, so a
window, a `since` replay and an `older` page are the log as it is, and agree on every backend.

Reading back. A window holds only the newest messages; `older` reads a page before a given id
from the log itself (`Broker.read_before`), decoded and encoded as the live path does, for the
one client that asked: nothing of it enters the window or reaches other members.

Epochs. A window holds one incarnation of the room's log. When the broker says the log was
replaced (`reset`), or a record of another epoch arrives, the room gets a new, empty window of
that epoch: ids of the old one cannot be placed in it, so a `join since=` one of them gets the
reset answer, and the dedupe of the old log ends with it (its records are gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from chatserver import protocol, wsframe
from chatserver.access import Identity
from chatserver.broker.base import Broker, BrokerUnavailable, Record
from chatserver.history import DedupeKey, RoomHistory, StoredMessage
from chatserver.ids import MessageId, format_id
from chatserver.interchange import BadRecord, Change, MessageRecord, decode_record, encode_record
from chatserver.metrics import ChatMetrics
from chatserver.owners import owner_of
from chatserver.settings import ChatSettings

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class _Followed:
    name: str
    window: RoomHistory | None = None
    """None until the log's epoch is known (its first record, or the follow's answer)."""
    holds: int = 0
    """Local members, joins waiting for the follow and sends waiting for their record."""
    follow: asyncio.Future[int] | None = field(default=None)


@dataclass(frozen=True, slots=True)
class OlderPage:
    """What `older` answers."""

    frames: Sequence[bytes]
    """Encoded `message` frames, oldest first."""
    start: bool
    """Nothing older is retained (or the id asked about is not of this log)."""


class RoomLogs:
    """The rooms this backend follows, their windows, and the sends waiting for their record."""

    def __init__(
        self,
        broker: Broker,
        *,
        pod: str,
        settings: ChatSettings,
        metrics: ChatMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._broker = broker
        self._pod = pod
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._rooms: dict[str, _Followed] = {}
        self._unfollowing: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, asyncio.Future[str]] = {}
        """publish_id -> the send waiting for that record to come back."""

    @property
    def followed(self) -> int:
        """Rooms held now (read from the broker, their windows in memory)."""
        return len(self._rooms)

    # Holds.

    @contextlib.asynccontextmanager
    async def held(self, name: str) -> AsyncIterator[RoomHistory]:
        """Hold the room for the block, which starts once it is followed and its window holds
        everything appended before; raises BrokerUnavailable when it cannot be followed now."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = _Followed(name)
        room.holds += 1
        try:
            epoch = await self._followed(room)
            if room.window is None:
                room.window = self._new_window(epoch)
            yield room.window
        finally:
            self._release(room)

    def retain(self, name: str) -> None:
        """One more hold on a room held now (a member joined it, inside `held`)."""
        self._rooms[name].holds += 1

    def release(self, name: str) -> None:
        """Give back a hold taken with `retain` (a member left)."""
        self._release(self._rooms[name])

    def _release(self, room: _Followed) -> None:
        room.holds -= 1
        if room.holds or self._rooms.get(room.name) is not room:
            return
        del self._rooms[room.name]
        if room.follow is not None:
            task = asyncio.create_task(self._unfollow(room.name), name=f"unfollow-{room.name}")
            self._unfollowing[room.name] = task

    async def _followed(self, room: _Followed) -> int:
        """The log's epoch once the room is followed."""
        if room.follow is None:
            room.follow = asyncio.ensure_future(self._follow(room.name))
        follow = room.follow
        try:
            return await asyncio.shield(follow)
        except BrokerUnavailable:
            if room.follow is follow:
                room.follow = None  # the next join tries again
            raise

    async def _follow(self, name: str) -> int:
        unfollowing = self._unfollowing.get(name)
        if unfollowing is not None:
            await unfollowing  # the broker sees unfollow, then follow, never interleaved
        return await self._broker.follow(name, after=None)

    def _new_window(self, epoch: int) -> RoomHistory:
        return RoomHistory(
            self._settings.history_size, max_bytes=self._settings.history_max_bytes, epoch=epoch
        )

    def reset(self, name: str, epoch: int) -> None:
        """The broker replaced the room's log by a new incarnation, `epoch`."""
        room = self._rooms.get(name)
        if room is not None and (room.window is None or room.window.epoch != epoch):
            log.info("room log replaced", extra={"room": name, "epoch": epoch})
            room.window = self._new_window(epoch)

    async def _unfollow(self, name: str) -> None:
        try:
            await self._broker.unfollow(name)
        except BrokerUnavailable:
            pass  # a broker that reconnects only re-follows the rooms still followed
        finally:
            if self._unfollowing.get(name) is asyncio.current_task():
                del self._unfollowing[name]

    # Sending.

    async def append(
        self, name: str, *, identity: Identity, ref: str, text: str, change: Change | None = None
    ) -> str:
        """Append a message (or, with `change`, an update record) to a room held now; its id
        once this backend has read the record back. Raises BrokerUnavailable when the broker
        does not confirm it in time (it may or may not be stored: the client retries with the
        same ref)."""
        room = self._rooms[name]
        stored = (
            None if room.window is None else room.window.find((identity.sub, identity.client, ref))
        )
        if stored is not None:
            return stored.id
        publish_id = uuid.uuid4().hex
        body = encode_record(
            MessageRecord(
                publish_id=publish_id,
                user=identity.name,
                client=identity.client,
                ref=ref,
                text=text,
                ts=self._clock(),
                pod=self._pod,
                sub=identity.sub,
                change=change,
            )
        )
        arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[publish_id] = arrived
        room.holds += 1
        try:
            async with asyncio.timeout(self._settings.ack_timeout_seconds):
                await self._broker.append(name, body)
                message_id = await arrived
        except TimeoutError:
            raise BrokerUnavailable("timeout") from None
        finally:
            del self._pending[publish_id]
            self._release(room)
        self._metrics.messages_in.inc()
        return message_id

    async def target(self, name: str, target: MessageId) -> str | None:
        """The owner of the message `target` of a room held now (`owners.owner_of`); None when
        this backend finds no message there: another epoch, an offset it has not read yet, one
        retention dropped, or an update record. Raises BrokerUnavailable when the log cannot be
        read within `history_page_timeout_seconds`."""
        room = self._rooms[name]
        window = room.window
        if window is None or window.last_offset is None or target.epoch != window.epoch:
            return None
        if (stored := window.at(target.offset)) is not None:
            return None if stored.update else stored.owner
        first = window.first_offset
        if target.offset > window.last_offset or (first is not None and target.offset > first):
            return None  # within what the window has read, and not a message of it
        room.holds += 1  # the member may leave while the log is read
        try:
            async with asyncio.timeout(self._settings.history_page_timeout_seconds):
                read = await self._broker.read_before(
                    name, epoch=window.epoch, before=target.offset + 1, limit=1
                )
        except TimeoutError:
            raise BrokerUnavailable("timeout") from None
        finally:
            self._release(room)
        found = [r for r in read.records if r.offset == target.offset]
        message = _decode(found[0]) if found else None
        if message is None or message.change is not None:
            return None
        return _owner(message)

    # Reading back.

    async def older(
        self, name: str, *, before: MessageId, limit: int, updates: bool = False
    ) -> OlderPage:
        """Up to `limit` messages before `before` in a room held now, oldest first, and the
        update records among them when `updates` (they count towards `limit`). An id of
        another epoch (or from before epochs) gets an empty page at the start: nothing older of
        the log it names is here. Raises BrokerUnavailable when the log cannot be read within
        `history_page_timeout_seconds`."""
        room = self._rooms[name]
        window = room.window
        if window is None or window.last_offset is None or before.epoch != window.epoch:
            return OlderPage(frames=[], start=True)
        # An id past what this backend has read (another backend gave it a moment ago): all
        # this one has read is older. The broker is only asked for offsets it delivered.
        end = min(before.offset, window.last_offset + 1)
        room.holds += 1  # the member may leave while the log is read
        try:
            async with asyncio.timeout(self._settings.history_page_timeout_seconds):
                read = await self._broker.read_before(
                    name, epoch=window.epoch, before=end, limit=limit
                )
        except TimeoutError:
            raise BrokerUnavailable("timeout") from None
        finally:
            self._release(room)
        if room.window is not window:  # the log was replaced while it was read
            return OlderPage(frames=[], start=True)
        frames: list[bytes] = []
        keys: set[DedupeKey] = set()
        for record in read.records:
            message = _decode(record)
            if message is None or (message.change is not None and not updates):
                continue
            key = (message.sub, message.client, message.ref)
            # A retry that raced its original is dropped, as the live path drops it (within
            # the page: a pair split across two pages shows twice).
            if key not in keys:
                keys.add(key)
                frames.append(_frame(record, message, _owner(message)))
        return OlderPage(frames=frames, start=read.start)

    # Delivered records.

    def take(self, records: Sequence[Record]) -> dict[str, list[StoredMessage]]:
        """Store delivered records in their rooms' windows and settle the sends waiting for
        them; the new messages to deliver, per room, in log order."""
        now = self._clock()
        fresh: dict[str, list[StoredMessage]] = {}
        for record in records:
            room = self._rooms.get(record.room)
            if room is not None:
                stored = self._store(room, record, now=now)
                if stored is not None:
                    fresh.setdefault(room.name, []).append(stored)
        return fresh

    def _store(self, room: _Followed, record: Record, *, now: float) -> StoredMessage | None:
        """Store a record's message and settle a `send` waiting for it; the new message, or
        None for a repeated, unreadable or duplicate record."""
        if room.window is None or room.window.epoch != record.epoch:
            self.reset(room.name, record.epoch)
        window = room.window
        assert window is not None  # reset() made it
        last = window.last_offset
        if last is not None and record.offset <= last:
            # The contract says a broker never repeats a record; if one ever did, members must
            # still not see a message twice.
            log.warning(
                "skipped a repeated record", extra={"room": room.name, "offset": record.offset}
            )
            return None
        message = _decode(record)
        if message is None:
            return None
        key = (message.sub, message.client, message.ref)
        original = window.find(key)
        if original is not None:
            # A retry that raced its original: every backend drops this same record.
            self._metrics.duplicates.inc()
            self._settle(message.publish_id, original.id)
            return None
        owner = _owner(message)
        encoded = _frame(record, message, owner)
        wire = wsframe.encode_text(encoded)
        stored = StoredMessage(
            epoch=record.epoch,
            offset=record.offset,
            key=key,
            # A copy cut from `wire`, not orjson's own output: that sits in a buffer of at least
            # 4 KiB however short the frame (measured with tracemalloc), and a window keeps it.
            frame=wire[len(wire) - len(encoded) :],
            wire=wire,
            owner=owner,
            update=message.change is not None,
        )
        window.add(stored)
        self._metrics.fanout_latency.observe(max(0.0, now - message.ts))
        self._settle(message.publish_id, stored.id)
        return stored

    def _settle(self, publish_id: str, message_id: str) -> None:
        """Answer the `send` waiting for this record, if it came through this backend (its ack
        is written by the sender's task, so after the frames of the current burst)."""
        arrived = self._pending.get(publish_id)
        if arrived is not None and not arrived.done():
            arrived.set_result(message_id)


def _decode(record: Record) -> MessageRecord | None:
    """The message in a record, or None (logged) for one this release cannot read."""
    try:
        return decode_record(record.body)
    except BadRecord as exc:
        log.warning(
            "skipped a record",
            extra={"room": record.room, "offset": record.offset, "error": str(exc)},
        )
        return None


def _owner(message: MessageRecord) -> str:
    return owner_of(sub=message.sub, client=message.client)


def _frame(record: Record, message: MessageRecord, owner: str) -> bytes:
    """The `message` frame of a message record, the `update` frame of an update record."""
    id = format_id(record.epoch, record.offset)
    if message.change is not None:
        return protocol.encode_update(
            room=record.room,
            id=id,
            change=message.change,
            text=message.text,
            user=message.user,
            ts=message.ts,
            pod=message.pod,
            owner=owner,
            sub=message.sub,
        )
    return protocol.encode_message(
        room=record.room,
        id=id,
        user=message.user,
        text=message.text,
        ts=message.ts,
        pod=message.pod,
        owner=owner,
        sub=message.sub,
    )
