"""The RabbitMQ broker: one stream per room, fanout exchanges for presence and typing, over aiormq.

Each room's log is a RabbitMQ stream queue (names in `amqp_wire`). A stream keeps one total order
and numbers its entries; every delivery carries its entry's number in the `x-stream-offset`
header, the same for every consumer, and that number is the record's offset. Consumers read
without removing, starting wherever they ask, so history and live delivery are the same consumer.

Facts this relies on, checked on RabbitMQ 3.10.8 (Debian bookworm) with no plugin enabled:
- stream queues work over AMQP 0-9-1 (`x-queue-type: stream`, durable), and deliveries carry
  `x-stream-offset` as an integer header;
- a stream consumer needs a per-consumer prefetch: consuming without one, or with a global
  one, closes the channel with PRECONDITION_FAILED; acks only return credit, and a cumulative
  ack may cover deliveries of consumers cancelled since;
- consuming from a numeric offset delivers exactly the entries from that offset on (the broker
  drops the earlier entries of the first chunk), and an offset past the end waits for the
  next entry;
- offsets are not contiguous even without our markers: each new segment starts with an entry
  of the broker's own (6,000 appends over 24 segments ended at offset 6,025);
- there is no "caught up" signal over AMQP 0-9-1 (a stream's declare-ok reports 0 messages), so
  `follow` appends a sync marker and returns when its own consumer has read it: everything
  confirmed before the marker sits before it in the log;
- a stream another connection has just created is declared-ok at once, before it can be used:
  consuming or publishing then closes the whole connection (see `stream_probe`), so a room's
  stream is first proven usable on a spare connection;
- a memory or disk alarm (`rabbitmqctl set_vm_memory_high_watermark 0.0001`) makes RabbitMQ
  stop reading a connection at its next publish and send it `connection.blocked` (aiormq
  announces the capability), then `connection.unblocked` once the alarm clears; while blocked,
  nothing written on the connection (a declare, a consume) is answered;
- after a node restart AMQP answers about a second before the streams do: declaring one fails
  with NOT_FOUND ("home node ... is down"), which closes the channel; the supervisor counts that
  as a failed attempt and retries.

Epochs. A stream deleted and declared again (by hand, by reclaiming an idle room, by a broker
that lost its data) numbers its entries from 0 again, so every consumer reads the stream's epoch
(`base.py`) before it delivers anything, from the stream itself; AMQP 0-9-1 cannot read back
the arguments a queue was declared with. The rule, the same for every reader:
- a consumer always starts at the stream's first entry and holds back what it reads until the
  epoch is settled;
- in a stream that still has its entry 0 (never truncated), the epoch is that of the first epoch
  claim. `follow` claims one when it has read up to its own sync marker and met none: two
  backends that start on a new stream at once both claim, and both read the same first claim;
  entries before it (stamped by a writer that had not seen the stream go, or written by the
  release before epochs) belong to it all the same;
- in a stream whose first entries retention has dropped, the first entry that carries an epoch
  (claimed or stamped) settles it: every record and sync marker is stamped with the epoch its
  writer read, so the survivors agree (only claims that lost the race at creation differ, and
  they sit in the first segment with the claim that won);
- a consumer that settles an epoch other than the one its follower delivered before (it resumed
  after a reconnect onto a new stream) tells the listener (`on_log_reset`) and delivers the new
  stream from its first record; one that settles the same epoch drops what it delivered before.
Reading from the first entry costs a resumed room a replay of its stream (at most
`retention_bytes`), as the room's first join on a backend always did.

Reading back (`read_before`, a page of older records for a client): a channel and short-lived
consumers of its own, at a numeric `x-stream-offset`, never the followers' consumer, so delivery
to the hub never waits for it; RabbitMQ starts a consumer asked for an offset retention dropped
at the oldest entry kept.

Connection loss: the supervisor reconnects, and every followed room is consumed again and
caught up (its epoch settled) before the broker is usable; records up to the last delivered
offset are dropped as above, so a listener sees each record exactly once across broker
restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiormq
import yarl
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from pamqp.commands import Basic
from pamqp.common import FieldTable

from chatserver.broker.alarm import BlockedState
from chatserver.broker.amqp_wire import (
    EPOCH_HEADER,
    KIND_EPOCH,
    KIND_HEADER,
    KIND_RECORD,
    KIND_SYNC,
    SYNC_TOKEN_HEADER,
    Topology,
    check_name,
    delivery_offset,
    header_epoch,
)
from chatserver.broker.base import (
    BrokerListener,
    BrokerUnavailable,
    OlderRecords,
    Record,
    RoomLimitReached,
)
from chatserver.broker.stream_probe import StreamProbe
from chatserver.broker.supervisor import CONNECTION_ERRORS, ConnectionSupervisor
from chatserver.contract import DEFAULT_ROOM_MAX_BYTES, ROOM_SEGMENT_BYTES
from chatserver.ids import new_epoch
from chatserver.interchange import (
    PresenceBeat,
    TypingSignal,
    decode_beat,
    decode_typing,
    encode_beat,
    encode_typing,
)

log = logging.getLogger(__name__)

_PERSISTENT = 2
_TRANSIENT = 1


@dataclass(frozen=True, slots=True)
class RabbitMQSettings:
    """How the broker uses RabbitMQ. Retention applies when a room's stream is first declared."""

    prefetch: int = 200
    """Unacknowledged deliveries per followed room (messages). Streams require a per-consumer
    prefetch; RabbitMQ's guidance puts the sweet spot at 100-300."""

    ack_every: int = 50
    """Unacked deliveries (of all rooms) at which the cumulative ack goes out. For a stream an
    ack only returns credit, so acks are held back to spare both ends a frame per delivery
    (measured: 290 to 106 frames a second from a backend in `many-rooms`). No room's consumer
    has more unacked deliveries than all rooms together, so with this at most `prefetch` its
    credit never runs out; a quarter of it keeps the credit from running low."""

    retention_bytes: int = DEFAULT_ROOM_MAX_BYTES
    """Bytes a new room's stream may keep (`x-max-length-bytes`); a broker policy may lower it
    for every stream. `follow(after=None)` replays all of it, so it sets the cost of a room's
    first join on a backend (measured: about 2,000 records of 1 KB in 0.2 s). 2 MiB still holds
    400+ messages of the 4 KiB maximum, several history windows, and bounds the disk any user
    can take by creating rooms."""

    segment_bytes: int = ROOM_SEGMENT_BYTES
    """Stream segment size (`x-stream-max-segment-size-bytes`). Retention drops whole segments
    (and never the one being written), so small segments keep it fine-grained: a stream holds
    between `retention_bytes - segment_bytes` and `retention_bytes`."""

    heartbeat: int = 10
    """AMQP heartbeat (seconds). A dead broker or a silent network partition is noticed within
    about 3 heartbeats; RabbitMQ's default of 60 s would keep backends "ready" for minutes."""

    connect_timeout: float = 10.0
    """Seconds for opening a connection (TCP, AMQP handshake), and for closing one."""

    backoff_initial: float = 0.25
    """Ceiling of the first reconnect delay (seconds); it doubles per failed attempt."""

    backoff_cap: float = 3.0
    """Largest reconnect delay ceiling (seconds). Recovery after the broker is back is up to
    this long (measured with 10 s: 5-8 s after a node restart); even a hundred backends retrying
    every 1.5 s on average is no load for RabbitMQ."""

    publish_timeout: float = 10.0
    """Seconds `append` waits for a publisher confirm before giving up with BrokerUnavailable.
    Confirms of persistent messages normally take milliseconds to a few hundred (fsync batching).
    Once RabbitMQ says it blocked the connection (a disk or memory alarm, `alarm.py`), appends are
    refused at once; only one already waiting for its confirm then waits this long."""

    follow_timeout: float = 10.0
    """Seconds `follow` waits to read a room's history up to its sync marker."""

    stream_start_timeout: float = 10.0
    """Seconds a room's first use on a connection waits for its stream to accept consumers
    (milliseconds unless the broker is away or overloaded)."""

    older_reads: int = 4
    """`read_before` calls reading at once; more wait their turn (within `older_timeout`). Each
    holds a channel and reads at most a page of entries at a time, so a crowd of people
    scrolling back costs the broker and this backend a bounded amount, whatever they ask."""

    older_timeout: float = 5.0
    """Seconds one `read_before` may take, waiting for its turn included."""

    def __post_init__(self) -> None:
        if not 1 <= self.ack_every <= self.prefetch:
            raise ValueError(f"ack_every must be 1 to prefetch ({self.prefetch}): {self.ack_every}")


@dataclass(eq=False, slots=True)
class _Link:
    """The channels of one connection; a new link is made for every reconnect."""

    publisher: AbstractChannel
    """Publisher-confirm channel: appends, presence beats and declarations."""
    connection: AbstractConnection
    """For the channels of `read_before`, one per read."""
    consumer: AbstractChannel
    """Room streams and the presence queue; carries the per-consumer prefetch."""
    lost: asyncio.Future[None]
    """Done when this link is torn down: wakes `follow` calls waiting on it."""
    ready: bool = False
    """Set up completely (and announced to the listener)."""
    broken: bool = False
    """A channel closed or a consumer was cancelled: unusable, the supervisor replaces it."""
    declared: set[str] = field(default_factory=set)
    """Rooms whose stream is declared and bound on this connection."""

    @property
    def usable(self) -> bool:
        return self.ready and not self.broken


@dataclass(eq=False, slots=True)
class _Reading:
    """What one consumer of a room's stream has read: it settles the stream's epoch (module
    docstring) before anything it reads is handed on."""

    settled: asyncio.Future[int]
    """The stream's epoch, once settled."""
    first_offset: int | None = None
    """Offset of the first entry read: 0 if the stream was never truncated."""
    held: list[tuple[int, FieldTable, bytes]] = field(default_factory=list)
    """Entries read before the epoch was settled (offset, headers, body), in order."""
    epoch: int | None = None
    """`settled`'s result, read on every delivery."""


@dataclass(eq=False, slots=True)
class _Follower:
    """A followed room; it outlives links, carrying the epoch and offset to resume from."""

    room: str
    last_offset: int | None
    """Last offset handed over for delivery (None: nothing yet, start at the oldest entry)."""
    epoch: int | None = None
    """Epoch of the stream `last_offset` belongs to (None until a consumer settled one)."""
    reading: _Reading | None = None
    """The current consumer's reading."""
    active: bool = True
    consumer: tuple[_Link, str] | None = None
    """The link and consumer tag currently reading this room, if any."""
    syncs: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    """Sync markers `follow` is waiting for, by token."""
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the `follow` call that made this follower returns, however it ends."""


def _with_heartbeat(url: str, heartbeat: int) -> str:
    """The URL with our heartbeat, unless it asks for one of its own."""
    parsed = yarl.URL(url)
    if "heartbeat" in parsed.query:
        return url
    return str(parsed.update_query(heartbeat=heartbeat))


class RabbitMQBroker:
    """A `Broker` shared by every backend of the cluster `cluster` through RabbitMQ, reached at
    any of `urls` (the nodes of one RabbitMQ cluster, tried in turn)."""

    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        cluster: str,
        pod: str,
        settings: RabbitMQSettings = RabbitMQSettings(),
    ) -> None:
        self._topology = Topology(cluster)
        self._settings = settings
        self._supervisor = ConnectionSupervisor(
            tuple(_with_heartbeat(url, settings.heartbeat) for url in urls),
            on_up=self._on_up,
            on_down=self._on_down,
            connect_timeout=settings.connect_timeout,
            backoff_initial=settings.backoff_initial,
            backoff_cap=settings.backoff_cap,
            client_name=f"chatserver {cluster}/{pod}",
        )
        self._probe = StreamProbe(
            lambda: self._supervisor.url,
            client_name=f"chatserver {cluster}/{pod} stream probe",
            connect_timeout=settings.connect_timeout,
            ready_timeout=settings.stream_start_timeout,
        )
        self._listener: BrokerListener | None = None
        self._link: _Link | None = None
        self._alarm: BlockedState | None = None
        """The current connection's blocked state (None between connections)."""
        self._rooms: dict[str, _Follower] = {}
        # Deliveries of one loop iteration go to the listener in one call, acked with one frame.
        self._pending: list[tuple[_Follower, Record]] = []
        self._flush_scheduled = False
        self._unacked: tuple[_Link, int] | None = None
        """The latest delivery not acked yet, and how many deliveries its ack will cover."""
        self._unacked_count = 0
        self._acks: set[asyncio.Task[None]] = set()
        self._older_reads = asyncio.Semaphore(settings.older_reads)
        self._room_limit_reached = False

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.usable

    @property
    def blocked(self) -> str | None:
        return None if self._alarm is None else self._alarm.reason

    @property
    def room_limit_reached(self) -> bool:
        return self._room_limit_reached

    async def start(self, listener: BrokerListener) -> None:
        self._listener = listener
        self._supervisor.start()

    async def close(self) -> None:
        # No on_connection_change(False) for a deliberate close: the listener is going away.
        self._listener = None
        for follower in self._rooms.values():
            follower.active = False
        self._rooms.clear()
        await self._supervisor.close()
        await self._probe.close()
        for ack in list(self._acks):
            ack.cancel()

    async def follow(self, room: str, *, after: int | None = None) -> int:
        check_name("room", room)
        link = self._ready_link()
        following = self._rooms.get(room)
        if following is not None:
            # Followed already, or being followed by a call still catching up: share its fate.
            await following.caught_up.wait()
            if self._rooms.get(room) is not following or following.epoch is None:
                raise BrokerUnavailable(f"cannot follow room {room!r}: the first attempt failed")
            return following.epoch
        self._refuse_if_blocked()  # following a room appends a sync marker
        follower = self._rooms[room] = _Follower(room=room, last_offset=after)
        try:
            await self._consume(link, follower)
            await self._catch_up(link, follower)
        except BaseException as exc:
            if self._rooms.get(room) is follower:
                del self._rooms[room]
                await self._drop(follower)
            if isinstance(exc, CONNECTION_ERRORS):
                raise BrokerUnavailable(f"cannot follow room {room!r}: {exc!r}") from exc
            raise
        finally:
            follower.caught_up.set()
        assert follower.epoch is not None  # _catch_up returns once it is settled
        return follower.epoch

    async def read_before(self, room: str, *, epoch: int, before: int, limit: int) -> OlderRecords:
        stream = self._topology.room_stream(room)
        link = self._ready_link()
        try:
            async with asyncio.timeout(self._settings.older_timeout), self._older_reads:
                # A channel of its own: the read's consumers, their prefetch and any error they
                # meet stay apart from the channel that delivers the followed rooms.
                channel = await link.connection.channel(publisher_confirms=False)
                try:
                    return await _read_back(
                        channel, stream, room=room, epoch=epoch, before=before, limit=limit
                    )
                finally:
                    with contextlib.suppress(*CONNECTION_ERRORS):
                        await channel.close()
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"cannot read room {room!r} back: {exc!r}") from exc

    async def exists(self, room: str) -> bool:
        check_name("room", room)
        self._ready_link()
        if room in self._rooms:
            return True
        try:
            return await self._probe.exists(self._topology.room_stream(room))
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"cannot tell whether room {room!r} exists: {exc!r}") from exc

    async def unfollow(self, room: str) -> None:
        follower = self._rooms.pop(room, None)
        if follower is not None:
            await self._drop(follower)

    async def append(self, room: str, body: bytes) -> None:
        check_name("room", room)
        link = self._ready_link()
        self._refuse_if_blocked()
        try:
            await self._publish_to_room(link, room, body, self._stamped(room, KIND_RECORD))
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"append to room {room!r} not confirmed: {exc!r}") from exc

    async def publish_presence(self, beat: PresenceBeat) -> None:
        # Best effort: the next beat after reconnecting makes up for a lost one.
        await self._publish_ephemeral(encode_beat(beat), self._topology.presence_exchange)

    async def publish_typing(self, signal: TypingSignal) -> None:
        # Best effort: a person still typing sends another within seconds.
        await self._publish_ephemeral(encode_typing(signal), self._topology.typing_exchange)

    async def _publish_ephemeral(self, body: bytes, exchange: str) -> None:
        """Publish to a fanout exchange, transient; dropped while the broker is away or
        blocked."""
        link = self._link
        if link is None or not link.usable or self.blocked is not None:
            return
        try:
            await link.publisher.basic_publish(
                body,
                exchange=exchange,
                properties=Basic.Properties(delivery_mode=_TRANSIENT),
                timeout=self._settings.publish_timeout,
            )
        except CONNECTION_ERRORS as exc:
            log.info("dropped a message to %s: %r", exchange, exc)

    # Connection life, driven by the supervisor.

    async def _on_up(self, connection: AbstractConnection) -> None:
        self._alarm = BlockedState()
        self._alarm.watch(connection)
        publisher = await connection.channel(publisher_confirms=True)
        consumer = await connection.channel(publisher_confirms=False)
        link = self._link = _Link(
            publisher=publisher,
            connection=connection,
            consumer=consumer,
            lost=asyncio.get_running_loop().create_future(),
        )
        for channel in (publisher, consumer):
            channel.closing.add_done_callback(
                functools.partial(self._link_broken, link, "channel closed")
            )
        consumer.on_consumer_cancel_callbacks.add(
            functools.partial(self._link_broken, link, "consumer cancelled by the broker")
        )
        await consumer.basic_qos(prefetch_count=self._settings.prefetch)
        await publisher.exchange_declare(
            self._topology.rooms_exchange, exchange_type="direct", durable=True
        )
        await self._consume_ephemeral(link)
        followers = [follower for follower in self._rooms.values() if follower.active]
        for follower in followers:
            await self._consume(link, follower)
        # Usable only once every followed room's epoch is settled again: a stream replaced
        # while the connection was down is reported (on_log_reset) before anyone writes to it.
        await asyncio.gather(*(self._catch_up(link, follower) for follower in followers))
        link.ready = True
        if self._listener is not None:
            self._listener.on_connection_change(True)

    def _on_down(self) -> None:
        self._alarm = None
        self._probe.forget_connection()
        link, self._link = self._link, None
        if link is None:
            return
        link.lost.set_result(None)
        for follower in self._rooms.values():
            follower.consumer = None
        if link.ready and self._listener is not None:
            self._listener.on_connection_change(False)

    def _link_broken(self, link: _Link, reason: str, _: object) -> None:
        if link is self._link:
            link.broken = True
            self._supervisor.fail(reason)

    def _ready_link(self) -> _Link:
        link = self._link
        if link is None or not link.usable:
            raise BrokerUnavailable("not connected to RabbitMQ")
        return link

    def _refuse_if_blocked(self) -> None:
        # A publish now would wait for the alarm to clear (up to `publish_timeout`): refuse at
        # once, and the client retries with the same ref.
        if (reason := self.blocked) is not None:
            raise BrokerUnavailable(f"RabbitMQ holds back writes ({reason})")

    # Rooms.

    async def _declare_room(self, link: _Link, room: str) -> None:
        # Concurrent first uses may both declare: both calls are idempotent, and a lock per
        # room would cost more than the rare duplicate round trip.
        if room in link.declared:
            return
        stream = self._topology.room_stream(room)
        # An existing stream is used as it is: declaring it with other arguments (another
        # retention since it was made) would close the channel, and retention that changes
        # after creation is a broker policy's job.
        # A new one is declared on the probe's connection too: a broker that refuses it (its
        # queue limit reached) closes that channel, not one every room uses.
        if not await self._probe.exists(stream):
            try:
                await self._probe.declare(
                    stream,
                    {
                        "x-queue-type": "stream",
                        "x-max-length-bytes": self._settings.retention_bytes,
                        "x-stream-max-segment-size-bytes": self._settings.segment_bytes,
                    },
                )
            except RoomLimitReached:
                self._room_limit_reached = True
                raise
            self._room_limit_reached = False
        await link.publisher.queue_bind(stream, self._topology.rooms_exchange, routing_key=room)
        # The stream may have been created by another backend a moment ago and still be
        # starting: using it now would close this connection, interrupting every room on it.
        await self._probe.wait_ready(stream)
        link.declared.add(room)

    async def _publish_to_room(
        self, link: _Link, room: str, body: bytes, headers: FieldTable
    ) -> None:
        """Append one entry and return once RabbitMQ confirms it (mandatory: an unroutable
        entry raises instead of vanishing)."""
        await self._declare_room(link, room)
        await link.publisher.basic_publish(
            body,
            exchange=self._topology.rooms_exchange,
            routing_key=room,
            mandatory=True,
            properties=Basic.Properties(delivery_mode=_PERSISTENT, headers=headers),
            timeout=self._settings.publish_timeout,
        )

    async def _consume(self, link: _Link, follower: _Follower) -> None:
        await self._declare_room(link, follower.room)
        reading = follower.reading = _Reading(asyncio.get_running_loop().create_future())
        # From the first entry, always: the epoch is read from the stream (module docstring).
        ok = await link.consumer.basic_consume(
            self._topology.room_stream(follower.room),
            functools.partial(self._on_room_delivery, link, follower, reading),
            arguments={"x-stream-offset": "first"},
        )
        if ok.consumer_tag is None:
            raise aiormq.exceptions.AMQPError("basic.consume-ok without a consumer tag")
        follower.consumer = (link, ok.consumer_tag)
        if not follower.active:  # unfollowed while this consumer was being set up
            await self._drop(follower)

    async def _catch_up(self, link: _Link, follower: _Follower) -> None:
        """Return once this follower's consumer has settled the stream's epoch and read
        everything appended before the call."""
        reading = follower.reading
        assert reading is not None  # _consume made it
        token = uuid.uuid4().hex
        seen = follower.syncs[token] = asyncio.get_running_loop().create_future()
        headers = self._stamped(follower.room, KIND_SYNC)
        headers[SYNC_TOKEN_HEADER] = token
        try:
            await self._publish_to_room(link, follower.room, b"", headers)
            await self._await_reading(link, follower, seen)
        finally:
            follower.syncs.pop(token, None)
        if reading.epoch is None:
            # Nothing up to our marker says the epoch: a new stream (or one written only by the
            # release before epochs). Claim one; the first claim in the stream wins.
            claim = new_epoch(time.time(), after=follower.epoch)
            await self._publish_to_room(
                link, follower.room, b"", {KIND_HEADER: KIND_EPOCH, EPOCH_HEADER: claim}
            )
            await self._await_reading(link, follower, reading.settled)

    async def _await_reading(
        self, link: _Link, follower: _Follower, done: asyncio.Future[None] | asyncio.Future[int]
    ) -> None:
        await asyncio.wait(
            [done, link.lost],
            timeout=self._settings.follow_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not done.done():
            reason = "connection lost" if link.lost.done() else "timed out"
            raise TimeoutError(f"reading the history of {follower.room!r}: {reason}")

    def _stamped(self, room: str, kind: str) -> FieldTable:
        """Headers of an entry of `kind`, stamped with the epoch this backend read from the
        room's stream on this connection, if it has."""
        headers: FieldTable = {KIND_HEADER: kind}
        follower = self._rooms.get(room)
        epoch = None if follower is None or follower.reading is None else follower.reading.epoch
        if epoch is not None:
            headers[EPOCH_HEADER] = epoch
        return headers

    async def _drop(self, follower: _Follower) -> None:
        follower.active = False
        consumer, follower.consumer = follower.consumer, None
        if consumer is None:
            return
        link, tag = consumer
        if link is self._link:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await link.consumer.basic_cancel(tag)

    # Deliveries. Called by aiormq in delivery order (one task each, started in order).

    async def _on_room_delivery(
        self, link: _Link, follower: _Follower, reading: _Reading, message: DeliveredMessage
    ) -> None:
        # async only because aiormq wants a coroutine; it never awaits, so deliveries are
        # handled one by one, in the order their tasks were created.
        if not follower.active or reading is not follower.reading:
            return
        self._unacked = (link, _delivery_tag(message))
        self._unacked_count += 1
        headers = message.header.properties.headers or {}
        offset = delivery_offset(headers)
        if reading.epoch is not None:
            self._accept(follower, reading.epoch, offset, headers, message.body)
            return
        if reading.first_offset is None:
            reading.first_offset = offset
        reading.held.append((offset, headers, message.body))
        epoch = header_epoch(headers)
        truncated = reading.first_offset > 0
        if epoch is not None and (headers.get(KIND_HEADER) == KIND_EPOCH or truncated):
            self._settle(follower, reading, epoch)
            return
        if headers.get(KIND_HEADER) == KIND_SYNC:
            # Our marker, read before any epoch: `_catch_up` claims one.
            seen = follower.syncs.pop(str(headers.get(SYNC_TOKEN_HEADER)), None)
            if seen is not None:
                seen.set_result(None)
        self._schedule_flush()

    def _settle(self, follower: _Follower, reading: _Reading, epoch: int) -> None:
        """The consumer read the stream's epoch: hand on what it held back."""
        if follower.epoch is not None and follower.epoch != epoch:
            self._flush()  # what the old stream delivered goes out first
            log.warning("room stream replaced", extra={"room": follower.room, "epoch": epoch})
            follower.last_offset = None
            if self._listener is not None:
                self._listener.on_log_reset(follower.room, epoch)
        follower.epoch = reading.epoch = epoch
        reading.settled.set_result(epoch)
        held, reading.held = reading.held, []
        for offset, headers, body in held:
            self._accept(follower, epoch, offset, headers, body)
        self._flush()

    def _accept(
        self, follower: _Follower, epoch: int, offset: int, headers: FieldTable, body: bytes
    ) -> None:
        """An entry of the settled stream: a record to deliver, or a sync marker."""
        if follower.last_offset is not None and offset <= follower.last_offset:
            self._schedule_flush()
            return
        follower.last_offset = offset
        kind = headers.get(KIND_HEADER)
        if kind == KIND_RECORD:
            self._pending.append((follower, Record(follower.room, epoch, offset, body)))
        elif kind == KIND_SYNC:
            seen = follower.syncs.pop(str(headers.get(SYNC_TOKEN_HEADER)), None)
            if seen is not None:
                self._flush()  # the records before the marker go out before follow() returns
                seen.set_result(None)
                return
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if self._unacked_count >= self._settings.ack_every:
            self._ack()
        records = _active(pending)
        if records and self._listener is not None:
            self._listener.on_records(records)

    def _ack(self) -> None:
        unacked, self._unacked = self._unacked, None
        self._unacked_count = 0
        if unacked is None:
            return
        ack = asyncio.get_running_loop().create_task(self._send_ack(unacked))
        self._acks.add(ack)
        ack.add_done_callback(self._acks.discard)

    async def _send_ack(self, unacked: tuple[_Link, int]) -> None:
        link, tag = unacked
        if link is self._link:
            # One cumulative ack per burst: for a stream an ack only returns credit.
            with contextlib.suppress(*CONNECTION_ERRORS):
                await link.consumer.basic_ack(tag, multiple=True)

    async def _consume_ephemeral(self, link: _Link) -> None:
        """One queue of this connection's own for presence beats and typing signals."""
        # Server-named and exclusive: it dies with the connection, and RabbitMQ 4.3 refuses
        # transient queues that are not exclusive.
        declared = await link.consumer.queue_declare("", exclusive=True, auto_delete=True)
        queue = declared.queue
        assert queue is not None  # the broker always names a server-named queue
        for exchange in (self._topology.presence_exchange, self._topology.typing_exchange):
            await link.publisher.exchange_declare(exchange, exchange_type="fanout", durable=True)
            await link.consumer.queue_bind(queue, exchange)
        await link.consumer.basic_consume(queue, self._on_ephemeral_delivery, no_ack=True)

    async def _on_ephemeral_delivery(self, message: DeliveredMessage) -> None:
        listener = self._listener
        typing = message.exchange == self._topology.typing_exchange
        try:
            if typing:
                signal = decode_typing(message.body)
            else:
                beat = decode_beat(message.body)
        except ValueError as exc:
            log.warning("ignored a message from %s: %s", message.exchange, exc)
            return
        if listener is None:
            return
        if typing:
            listener.on_typing(signal)
        else:
            listener.on_presence(beat)


async def _read_back(
    channel: AbstractChannel, stream: str, *, room: str, epoch: int, before: int, limit: int
) -> OlderRecords:
    """`read_before` on a channel of its own: ranges of `limit` entries, going back from
    `before` until they hold `limit` records or reach the oldest entry retained (sync markers
    and epoch claims sit between records, so one range may hold fewer)."""
    (oldest,) = await _read_entries(channel, stream, start="first", until=0, count=1)
    first = delivery_offset(oldest.header.properties.headers)
    records: list[Record] = []
    end = before
    while len(records) < limit and end > first:
        start = max(first, end - limit)
        entries = await _read_entries(
            channel, stream, start=start, until=end - 1, count=end - start + 1
        )
        records[:0] = [
            Record(room, epoch, offset, entry.body)
            for entry in entries
            if (offset := delivery_offset(entry.header.properties.headers)) < end
            and (entry.header.properties.headers or {}).get(KIND_HEADER) == KIND_RECORD
        ]
        end = start
    return OlderRecords(records=records[-limit:], start=end <= first and len(records) <= limit)


async def _read_entries(
    channel: AbstractChannel,
    stream: str,
    *,
    start: int | str,
    until: int,
    count: int,
) -> list[DeliveredMessage]:
    """The stream's entries from `start` (an offset, or "first") up to the first at or past
    offset `until`, at most `count` of them. Nothing is acked: a prefetch of `count` lets them
    all come (a consumer starting at an offset retention dropped starts at the oldest entry
    kept, so never more of them)."""
    entries: list[DeliveredMessage] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def on_delivery(message: DeliveredMessage) -> None:
        if not done.done():
            entries.append(message)
            if delivery_offset(message.header.properties.headers) >= until:
                done.set_result(None)

    await channel.basic_qos(prefetch_count=count)
    ok = await channel.basic_consume(stream, on_delivery, arguments={"x-stream-offset": start})
    try:
        await done
    finally:
        if ok.consumer_tag is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await channel.basic_cancel(ok.consumer_tag)
    return entries


def _delivery_tag(message: DeliveredMessage) -> int:
    delivery = message.delivery
    if not isinstance(delivery, Basic.Deliver) or delivery.delivery_tag is None:
        raise TypeError(f"not a consumer delivery: {delivery!r}")
    tag: int = delivery.delivery_tag
    return tag


def _active(pending: Iterable[tuple[_Follower, Record]]) -> list[Record]:
    """Records of rooms still followed: a room unfollowed since delivery gets nothing more."""
    return [record for follower, record in pending if follower.active]
