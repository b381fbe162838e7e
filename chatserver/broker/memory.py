"""The in-memory broker: room logs and presence inside one process.

It backs `chatserver dev` and the unit tests of everything above the broker seam. Several
`MemoryBroker`s made with `sibling()` share one set of logs, which is how tests stand in for
several backends of one cluster without a RabbitMQ node.

Deliveries are scheduled with `loop.call_soon` rather than made inside `append`: the listener
then never runs re-entrantly under its own `append` call, as with a real broker, and the event
loop's FIFO order keeps each room's records in log order.

A room's log is created on its first use with a new epoch (`ids.new_epoch` of the clock then), so
a process started again, which starts with no log, never repeats an id of the one before;
`drop_log` ends a log as deleting a RabbitMQ stream does.

Rooms are bounded as well as their logs: beyond `max_rooms` logs, the least recently used log
that no backend follows is forgotten (its room starts a new log, under a newer epoch, if it is
named again), so clients naming ever new rooms cannot grow the process without end. A followed
room is never forgotten; how many rooms are followed is bounded by the room caps of the hub.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from chatserver import contract
from chatserver.broker.base import BrokerListener, BrokerUnavailable, OlderRecords, Record
from chatserver.ids import new_epoch
from chatserver.interchange import PresenceBeat, TypingSignal

DEFAULT_RETENTION = 10_000
"""Records kept per room at most: far above the hub's history window (100 by default). Bytes
bound a log too (`CHAT_ROOM_MAX_BYTES`, as a stream's retention), so large messages cannot make
one hold 10 000 of them."""


@dataclass(eq=False, slots=True)
class _Follower:
    """One broker's interest in one room; dropped by `unfollow`, so late deliveries see it."""

    listener: BrokerListener
    epoch: int
    last_offset: int
    active: bool = True

    def deliver(self, records: list[Record]) -> None:
        # Skips what this follower already has: a backlog replay and a scheduled live delivery
        # may both carry the same record when `follow` runs between `append` and the delivery;
        # and a delivery scheduled before its log was dropped.
        fresh = [r for r in records if r.epoch == self.epoch and r.offset > self.last_offset]
        if self.active and fresh:
            self.last_offset = fresh[-1].offset
            self.listener.on_records(fresh)

    def restart(self, room: str, epoch: int) -> None:
        """The room's log was replaced: what follows is the new log, from its start."""
        self.epoch, self.last_offset = epoch, -1
        if self.active:
            self.listener.on_log_reset(room, epoch)


@dataclass(slots=True)
class _RoomLog:
    retention: int
    retention_bytes: int
    epoch: int
    records: deque[Record] = field(default_factory=deque)
    size_bytes: int = 0
    """The bodies of `records`, summed."""
    next_offset: int = 0
    followers: list[_Follower] = field(default_factory=list)

    def add(self, room: str, body: bytes) -> Record:
        record = Record(room=room, epoch=self.epoch, offset=self.next_offset, body=body)
        self.next_offset += 1
        self.records.append(record)
        self.size_bytes += len(body)
        # Like a stream's retention, except that the newest record always stays.
        while len(self.records) > self.retention or (
            self.size_bytes > self.retention_bytes and len(self.records) > 1
        ):
            self.size_bytes -= len(self.records.popleft().body)
        return record

    def after(self, offset: int | None) -> list[Record]:
        return [r for r in self.records if offset is None or r.offset > offset]


@dataclass(slots=True)
class _SharedState:
    """What every sibling broker sees: the logs and who listens to presence and typing."""

    retention: int
    retention_bytes: int
    max_rooms: int
    clock: Callable[[], float]
    rooms: dict[str, _RoomLog] = field(default_factory=dict)
    """The logs, least recently used first."""
    forgotten_epoch: int | None = None
    """The newest epoch of a forgotten log: a room named again starts above it, so no id repeats
    even within one millisecond."""
    started: set[MemoryBroker] = field(default_factory=set)
    """The siblings started and not closed: they hear presence beats and typing signals."""

    def room(self, name: str) -> _RoomLog:
        log = self.rooms.pop(name, None)
        if log is None:
            log = self._new_log(new_epoch(self.clock(), after=self.forgotten_epoch))
        self.rooms[name] = log  # now the most recently used
        self._forget_idle(keep=name)
        return log

    def _forget_idle(self, *, keep: str) -> None:
        """Forget the least recently used unfollowed logs beyond `max_rooms`, never `keep`'s
        (its caller is about to use it)."""
        excess = len(self.rooms) - self.max_rooms
        if excess <= 0:
            return
        idle = (n for n, log in self.rooms.items() if not log.followers and n != keep)
        for name in list(itertools.islice(idle, excess)):
            epoch = self.rooms.pop(name).epoch
            self.forgotten_epoch = max(epoch, self.forgotten_epoch or epoch)

    def replace(self, name: str) -> _RoomLog:
        """A new, empty log for `name` in place of the current one, followed by the same."""
        old = self.room(name)
        log = self.rooms[name] = self._new_log(new_epoch(self.clock(), after=old.epoch))
        log.followers = old.followers
        return log

    def _new_log(self, epoch: int) -> _RoomLog:
        return _RoomLog(self.retention, self.retention_bytes, epoch)


class MemoryBroker:
    """A `Broker` whose logs live in this process; see the module docstring."""

    def __init__(
        self,
        *,
        retention: int = DEFAULT_RETENTION,
        retention_bytes: int = contract.DEFAULT_ROOM_MAX_BYTES,
        max_rooms: int = contract.DEFAULT_MEMORY_MAX_ROOMS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if min(retention, retention_bytes, max_rooms) < 1:
            raise ValueError(
                f"retention ({retention}), retention_bytes ({retention_bytes}) and max_rooms"
                f" ({max_rooms}) must be >= 1"
            )
        self._state = _SharedState(
            retention=retention, retention_bytes=retention_bytes, max_rooms=max_rooms, clock=clock
        )
        self._listener: BrokerListener | None = None
        self._following: dict[str, _Follower] = {}

    def sibling(self) -> MemoryBroker:
        """Another broker on the same logs: a second backend of the same cluster."""
        other = MemoryBroker()
        other._state = self._state
        return other

    @property
    def connected(self) -> bool:
        return self._listener is not None

    @property
    def blocked(self) -> str | None:
        return None  # it has no resource alarm: memory is the process's own

    @property
    def room_limit_reached(self) -> bool:
        return False  # it forgets the least recently used unfollowed log instead of refusing

    async def start(self, listener: BrokerListener) -> None:
        self._listener = listener
        self._state.started.add(self)
        listener.on_connection_change(True)

    async def close(self) -> None:
        for room in list(self._following):
            await self.unfollow(room)
        self._state.started.discard(self)
        self._listener = None

    async def follow(self, room: str, *, after: int | None = None) -> int:
        listener = self._require_listener()
        log = self._state.room(room)
        if room in self._following:
            return log.epoch
        follower = _Follower(listener, log.epoch, -1 if after is None else after)
        self._following[room] = follower
        log.followers.append(follower)
        follower.deliver(log.after(after))
        return log.epoch

    async def read_before(self, room: str, *, epoch: int, before: int, limit: int) -> OlderRecords:
        self._require_listener()
        log = self._state.rooms.get(room)
        if log is None or log.epoch != epoch:
            return OlderRecords(records=[], start=True)
        older = [r for r in log.records if r.offset < before]
        return OlderRecords(records=older[-limit:], start=len(older) <= limit)

    async def exists(self, room: str) -> bool:
        return room in self._state.rooms

    async def unfollow(self, room: str) -> None:
        follower = self._following.pop(room, None)
        if follower is not None:
            follower.active = False
            self._state.room(room).followers.remove(follower)

    async def append(self, room: str, body: bytes) -> None:
        self._require_listener()
        log = self._state.room(room)
        record = log.add(room, body)
        loop = asyncio.get_running_loop()
        for follower in log.followers:
            loop.call_soon(follower.deliver, [record])

    async def drop_log(self, room: str) -> None:
        """Delete the room's log and start a new one with a new epoch, as deleting a RabbitMQ
        stream does (for tests): followers are told (`on_log_reset`) and follow the new log."""
        log = self._state.replace(room)
        loop = asyncio.get_running_loop()
        for follower in log.followers:
            # Scheduled like deliveries, so it reaches each listener after what was appended
            # before and before anything appended after.
            loop.call_soon(follower.restart, room, log.epoch)

    async def publish_presence(self, beat: PresenceBeat) -> None:
        self._broadcast(lambda listener: listener.on_presence(beat))

    async def publish_typing(self, signal: TypingSignal) -> None:
        self._broadcast(lambda listener: listener.on_typing(signal))

    def _broadcast(self, deliver: Callable[[BrokerListener], None]) -> None:
        """Hand `deliver` every started sibling's listener, later (as deliveries are). Best
        effort, as over RabbitMQ: sent while not started, it is dropped, not refused."""
        if self._listener is None:
            return
        loop = asyncio.get_running_loop()
        for broker in self._state.started:
            loop.call_soon(broker._deliver, deliver)

    def _deliver(self, deliver: Callable[[BrokerListener], None]) -> None:
        if self._listener is not None:
            deliver(self._listener)

    def _require_listener(self) -> BrokerListener:
        if self._listener is None:
            raise BrokerUnavailable("the memory broker is not started (or already closed)")
        return self._listener
