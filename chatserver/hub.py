"""The hub: local sessions, the rooms they joined, and everything the broker delivers.

It is the broker's listener. Records come back from the room logs in order; each becomes one
`message` frame, encoded once as JSON (kept for `joined` history) and once as a complete
WebSocket frame, stored in the room's window and written to every local member with a plain,
synchronous loop: the same bytes for all, no await and no task per recipient, so one slow client
never delays the rest (its own socket buffer absorbs it, or it is cut).

A room is followed on the broker only while this backend has a local member in it (or a join
or send in flight for it). The window is dropped when the room is unfollowed: a later join
follows again from the oldest retained record, which rebuilds the same window and dedupe state
every other backend has, so there is no second source of truth to keep in sync.

Permissions are the member's `Access` (open mode allows everything), asked before every join
and send; the hub never looks at how the server authenticates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chatserver import closecodes, protocol, wsframe
from chatserver.access import Access, Identity
from chatserver.broker.base import Broker, BrokerUnavailable, Record
from chatserver.history import RoomHistory, StoredMessage
from chatserver.interchange import (
    BadRecord,
    MessageRecord,
    PresenceBeat,
    decode_record,
    encode_record,
)
from chatserver.metrics import ChatMetrics
from chatserver.presence import PresenceSnapshot, PresenceTable
from chatserver.protocol import ProtocolError
from chatserver.settings import ChatSettings

log = logging.getLogger(__name__)

PRESENCE_MIN_GAP = 0.25
"""Seconds between two rounds of presence frames: bursts of joins coalesce into one update."""
MISSED_BEATS = 3
"""Beats a pod may miss before its sessions leave the counts."""
EXPIRY_SWEEP_SECONDS = 1.0
"""How often sessions are checked for an expired token: one pass for all of them, rather than
one timer per connection; a session may outlive its token by up to this much."""


class Member(Protocol):
    """What the hub needs of a session (`connection.Connection` in the server)."""

    session_id: str
    identity: Identity
    access: Access
    expires_at: float | None
    """When the session's token expires (Unix seconds); None when it never does."""
    rooms: set[str]
    last_presence: bytes
    """The last `presence` wire frame sent to this member."""

    @property
    def open(self) -> bool: ...

    def send(self, frame: bytes) -> None:
        """Write one encoded server frame meant for this member alone."""

    def send_wire(self, wire: bytes) -> None:
        """Write one complete WebSocket frame (`wsframe.encode_text`), shared by many."""

    def close_soon(self, code: int, reason: str) -> None: ...

    def cut(self, code: int, reason: str) -> None: ...


@dataclass(eq=False, slots=True)
class _Room:
    name: str
    history: RoomHistory
    members: set[Member] = field(default_factory=set)
    holds: int = 0
    """Joins waiting for the follow and sends waiting for their record: keep the room followed."""
    follow: asyncio.Future[None] | None = None


class Hub:
    """Implements `BrokerListener`; the WebSocket handler calls `attach`, `join`, `send`, ..."""

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
        self._sessions: set[Member] = set()
        self._expiring: set[Member] = set()
        """The sessions with an `expires_at`, the only ones the expiry sweep looks at."""
        self._rooms: dict[str, _Room] = {}
        self._pending: dict[str, asyncio.Future[str]] = {}
        self._unfollowing: dict[str, asyncio.Task[None]] = {}
        self._presence = PresenceTable(
            own_pod=pod, expire_after=MISSED_BEATS * settings.presence_interval_seconds
        )
        self._presence_changed = asyncio.Event()
        self._last_snapshot: PresenceSnapshot | None = None
        self._emptied = asyncio.Event()
        self._emptied.set()

    # Sessions.

    @property
    def broker_connected(self) -> bool:
        return self._broker.connected

    def attach(self, member: Member) -> None:
        self._sessions.add(member)
        if member.expires_at is not None:
            self._expiring.add(member)
        self._emptied.clear()
        self._metrics.connections.set(len(self._sessions))
        member.send(
            protocol.encode_welcome(
                session=member.session_id,
                # The name this session's messages carry, so a client recognises its own; in
                # token mode the token's `name` (or `sub`), in open mode the name picked.
                user=member.identity.name,
                pod=self._pod,
                users_online=self._snapshot().users_online,
                rooms=self._settings.rooms,
            )
        )
        self._presence_changed.set()

    def detach(self, member: Member) -> None:
        self._sessions.discard(member)
        self._expiring.discard(member)
        for name in member.rooms:
            room = self._rooms.get(name)
            if room is not None:
                room.members.discard(member)
                self._release(room)
        member.rooms.clear()
        self._metrics.connections.set(len(self._sessions))
        if not self._sessions:
            self._emptied.set()
        self._presence_changed.set()

    def on_slow_consumer(self, member: Member) -> None:
        """A member fell more than its bound behind; it is being cut (its handler detaches it
        when its socket ends)."""
        self._metrics.slow_consumers.inc()
        log.warning("cut slow consumer", extra={"user": member.identity.user})

    # Client requests. Each answers the member itself or raises ProtocolError.

    def reauthorize(
        self, member: Member, identity: Identity, access: Access, expires_at: float | None
    ) -> None:
        """A refreshed token: new identity, permissions and deadline from now on."""
        member.identity, member.access, member.expires_at = identity, access, expires_at
        if expires_at is None:
            self._expiring.discard(member)
        else:
            self._expiring.add(member)
        # Rooms the new claims no longer allow are left: staying would keep delivering a room
        # the user may no longer read. `left` tells the client, as for its own `leave`.
        for name in sorted(member.rooms):
            if not access.may_join(name):
                self.leave(member, name)

    def expire_sessions(self, now: float) -> None:
        """Tell every session whose token expired by `now`, and close it with 4001."""
        expired = [m for m in self._expiring if m.expires_at is not None and m.expires_at <= now]
        for member in expired:
            self._expiring.discard(member)
            member.send(
                protocol.encode_error(
                    closecodes.TOKEN_EXPIRED,
                    "the session's token expired: reconnect with a new one",
                )
            )
            member.close_soon(closecodes.SESSION_EXPIRED, "token expired")

    async def run_expiry(self) -> None:
        """The expiry sweep, for the app's whole life."""
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)
            self.expire_sessions(self._clock())

    async def join(self, member: Member, name: str, *, since: int | None) -> None:
        if not member.access.may_join(name):
            raise ProtocolError(closecodes.FORBIDDEN, f"not allowed to join {name}")
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = _Room(name, RoomHistory(self._settings.history_size))
        room.holds += 1
        try:
            await self._followed(room)
            if member.open:
                # Nothing awaits from here to send(): no record can reach the member before
                # its `joined` frame.
                recovery = room.history.recover(since)
                room.members.add(member)
                member.rooms.add(name)
                member.send(
                    protocol.encode_joined(
                        room=name,
                        members=self._snapshot().rooms.get(name, 0),
                        history=recovery.frames,
                        truncated=recovery.truncated,
                    )
                )
                self._presence_changed.set()
        except BrokerUnavailable as exc:
            raise ProtocolError(closecodes.UNAVAILABLE, f"cannot join {name} now: {exc}") from None
        finally:
            room.holds -= 1
            self._release(room)

    def leave(self, member: Member, name: str) -> None:
        room = self._rooms.get(name)
        if name in member.rooms and room is not None:
            member.rooms.discard(name)
            room.members.discard(member)
            self._release(room)
            self._presence_changed.set()
        member.send(protocol.encode_left(name))

    async def send(self, member: Member, request: protocol.Send) -> None:
        if not member.access.may_post(request.room):
            raise ProtocolError(
                closecodes.FORBIDDEN, f"not allowed to post to {request.room}", ref=request.ref
            )
        room = self._rooms.get(request.room)
        if request.room not in member.rooms or room is None:
            raise ProtocolError(
                closecodes.NOT_JOINED, f"join {request.room} before sending", ref=request.ref
            )
        key = (member.identity.client, request.ref)
        stored = room.history.find(key)
        if stored is not None:
            member.send(protocol.encode_ack(ref=request.ref, id=stored.id))
            return
        publish_id = uuid.uuid4().hex
        body = encode_record(
            MessageRecord(
                publish_id=publish_id,
                user=member.identity.name,
                client=member.identity.client,
                ref=request.ref,
                text=request.text,
                ts=self._clock(),
                pod=self._pod,
            )
        )
        arrived = self._pending[publish_id] = asyncio.get_running_loop().create_future()
        room.holds += 1
        try:
            async with asyncio.timeout(self._settings.ack_timeout_seconds):
                await self._broker.append(request.room, body)
                message_id = await arrived
        except (BrokerUnavailable, TimeoutError) as exc:
            raise ProtocolError(
                closecodes.UNAVAILABLE,
                f"not confirmed ({exc or 'timeout'}): retry with the same ref",
                ref=request.ref,
            ) from None
        finally:
            del self._pending[publish_id]
            room.holds -= 1
            self._release(room)
        self._metrics.messages_in.inc()
        member.send(protocol.encode_ack(ref=request.ref, id=message_id))

    # BrokerListener.

    def on_records(self, records: Sequence[Record]) -> None:
        now = self._clock()
        fresh: dict[str, list[bytes]] = {}
        for record in records:
            room = self._rooms.get(record.room)
            if room is not None:
                stored = self._on_record(room, record, now=now)
                if stored is not None:
                    fresh.setdefault(room.name, []).append(stored.wire)
        # One write per member per room for everything this delivery burst brought: the frames
        # are already encoded, so a burst of N messages costs each member one system call
        # instead of N, and never waits for a later burst (no added latency).
        for name, wires in fresh.items():
            members = self._rooms[name].members
            burst = wires[0] if len(wires) == 1 else b"".join(wires)
            for member in members:
                member.send_wire(burst)
            self._metrics.messages_out.inc(len(members) * len(wires))

    def _on_record(self, room: _Room, record: Record, *, now: float) -> StoredMessage | None:
        """Store a record's message and settle a `send` waiting for it; the new message to
        deliver, or None for a repeated, unreadable or duplicate record."""
        last = room.history.last_offset
        if last is not None and record.offset <= last:
            # The contract says a broker never repeats a record; if one ever did, members must
            # still not see a message twice.
            log.warning(
                "skipped a repeated record", extra={"room": room.name, "offset": record.offset}
            )
            return None
        try:
            message = decode_record(record.body)
        except BadRecord as exc:
            log.warning(
                "skipped a record",
                extra={"room": room.name, "offset": record.offset, "error": str(exc)},
            )
            return None
        key = (message.client, message.ref)
        original = room.history.find(key)
        if original is not None:
            # A retry that raced its original (for instance through another backend): every
            # backend sees the same log, so all of them drop this same record.
            self._metrics.duplicates.inc()
            self._settle(message.publish_id, original.id)
            return None
        frame = protocol.encode_message(
            room=room.name,
            id=str(record.offset),
            user=message.user,
            text=message.text,
            ts=message.ts,
            pod=message.pod,
        )
        stored = StoredMessage(
            offset=record.offset, key=key, frame=frame, wire=wsframe.encode_text(frame)
        )
        room.history.add(stored)
        self._metrics.fanout_latency.observe(max(0.0, now - message.ts))
        self._settle(message.publish_id, stored.id)
        return stored

    def _settle(self, publish_id: str, message_id: str) -> None:
        """Answer the `send` waiting for this record, if it came through this backend (its ack
        is written by the sender's task, so after the frames of the current burst)."""
        arrived = self._pending.get(publish_id)
        if arrived is not None and not arrived.done():
            arrived.set_result(message_id)

    def on_presence(self, beat: PresenceBeat) -> None:
        if self._presence.observe(beat, now=time.monotonic()):
            self._presence_changed.set()

    def on_connection_change(self, connected: bool) -> None:
        self._metrics.broker_connected.set(1 if connected else 0)
        log.info("broker %s", "connected" if connected else "disconnected")
        self._presence_changed.set()

    # Presence.

    async def run_presence(self) -> None:
        """Publish this pod's beat (periodically and soon after changes) and push `presence`
        frames when the cluster's counts change; runs for the app's whole life."""
        interval = self._settings.presence_interval_seconds
        next_beat = 0.0
        published: tuple[int, dict[str, int]] | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_beat - time.monotonic())):
                    await self._presence_changed.wait()
            self._presence_changed.clear()
            now = time.monotonic()
            self._presence.expire(now=now)
            local = (len(self._sessions), self._local_rooms())
            if local != published or now >= next_beat:
                next_beat = now + interval
                if await self._publish_beat(sessions=local[0], rooms=local[1]):
                    published = local
            self._push_presence()
            await asyncio.sleep(PRESENCE_MIN_GAP)

    async def announce_gone(self) -> None:
        """The last beat: other backends drop this pod's sessions at once."""
        await self._publish_beat(sessions=0, rooms={}, gone=True)

    async def _publish_beat(
        self, *, sessions: int, rooms: dict[str, int], gone: bool = False
    ) -> bool:
        beat = PresenceBeat(
            pod=self._pod, sessions=sessions, rooms=rooms, ts=self._clock(), gone=gone
        )
        try:
            await self._broker.publish_presence(beat)
        except BrokerUnavailable:
            return False  # best effort: the next beat follows within the interval
        return True

    def _push_presence(self) -> None:
        snapshot = self._snapshot()
        if snapshot == self._last_snapshot:
            return
        self._last_snapshot = snapshot
        # One wire frame per distinct content, which a member's set of rooms determines.
        wires: dict[frozenset[str], bytes] = {}
        for member in self._sessions:
            rooms = frozenset(member.rooms)
            wire = wires.get(rooms)
            if wire is None:
                wire = wires[rooms] = wsframe.encode_text(
                    protocol.encode_presence(
                        users_online=snapshot.users_online,
                        rooms={room: snapshot.rooms.get(room, 0) for room in sorted(rooms)},
                    )
                )
            if wire != member.last_presence:
                member.last_presence = wire
                member.send_wire(wire)

    def _local_rooms(self) -> dict[str, int]:
        return {name: len(room.members) for name, room in self._rooms.items() if room.members}

    def _snapshot(self) -> PresenceSnapshot:
        return self._presence.snapshot(
            own_sessions=len(self._sessions), own_rooms=self._local_rooms()
        )

    # Stats and shutdown.

    def stats(self) -> dict[str, object]:
        """The body of `/api/stats` (DESIGN section 3)."""
        snapshot = self._snapshot()
        rooms = Counter(dict.fromkeys(self._settings.rooms, 0))
        rooms.update(snapshot.rooms)
        return {
            "pod": self._pod,
            "connections": len(self._sessions),
            "users_online": snapshot.users_online,
            "rooms": dict(rooms),
        }

    def drain(self, reason: str) -> None:
        """Ask every client to reconnect elsewhere, then close each with 1012 behind what
        was already sent."""
        wire = wsframe.encode_text(protocol.encode_reconnect(reason))
        for member in self._sessions:
            member.send_wire(wire)
            member.close_soon(closecodes.SERVICE_RESTART, reason)

    def cut_all(self, reason: str) -> None:
        """The drain budget is spent: close whoever is left without waiting for them to read
        what is pending."""
        for member in list(self._sessions):
            member.cut(closecodes.SERVICE_RESTART, reason)

    async def wait_empty(self) -> None:
        """Until no session is left."""
        await self._emptied.wait()

    # Following rooms on the broker.

    async def _followed(self, room: _Room) -> None:
        if room.follow is None:
            room.follow = asyncio.ensure_future(self._follow(room.name))
        follow = room.follow
        try:
            await asyncio.shield(follow)
        except BrokerUnavailable:
            if room.follow is follow:
                room.follow = None  # the next join tries again
            raise

    async def _follow(self, name: str) -> None:
        unfollowing = self._unfollowing.get(name)
        if unfollowing is not None:
            await unfollowing  # the broker sees unfollow, then follow, never interleaved
        await self._broker.follow(name, after=None)

    def _release(self, room: _Room) -> None:
        """Forget the room once nobody local is in it or about to be."""
        if room.members or room.holds or self._rooms.get(room.name) is not room:
            return
        del self._rooms[room.name]
        if room.follow is not None:
            task = asyncio.create_task(self._unfollow(room.name), name=f"unfollow-{room.name}")
            self._unfollowing[room.name] = task

    async def _unfollow(self, name: str) -> None:
        try:
            await self._broker.unfollow(name)
        except BrokerUnavailable:
            pass  # a broker that reconnects only re-follows the rooms still followed
        finally:
            if self._unfollowing.get(name) is asyncio.current_task():
                del self._unfollowing[name]
