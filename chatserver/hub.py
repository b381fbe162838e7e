"""The hub: this backend's local sessions, the rooms they joined, and the fan-out of what the
broker delivers to them.

It is the broker's listener. Records come back from the room logs in order; `RoomLogs` turns
each into one `message` frame, encoded once as JSON (kept for `joined` history) and once as a
complete WebSocket frame, and the hub writes those bytes to every local member with a plain,
synchronous loop: the same bytes for all, no await and no task per recipient, so one slow client
never delays the rest (its own socket buffer absorbs it, or it is cut). Presence frames go out
the same way, framed once per distinct content, and so do `members` frames, once per room whose
list or total changed, to that room's members only.

Not here: following rooms and the `send` -> record -> `ack` story (`roomlogs.py`), presence beats
and counts (`presence/`), and what a frame may do (`gate.py`, which has checked every request
before it reaches the hub). The hub never imports aiohttp: a member is anything that can take
bytes and be closed.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from chatserver import closecodes, contract, protocol, wsframe
from chatserver.access import Access, Identity
from chatserver.broker.base import Broker, BrokerUnavailable, Record, RoomLimitReached
from chatserver.directory import RoomDirectory, search
from chatserver.dm import dm_room
from chatserver.history import StoredMessage
from chatserver.ids import MessageId
from chatserver.interchange import Change, Person, PresenceBeat, TypingSignal
from chatserver.metrics import ChatMetrics
from chatserver.owners import owner_of
from chatserver.presence.loop import LocalCounts, LocalPeople, Presence
from chatserver.presence.table import PresenceSnapshot
from chatserver.protocol import ProtocolError
from chatserver.roomcaps import RoomTally, client_key
from chatserver.roomlogs import RoomLogs
from chatserver.settings import ChatSettings

log = logging.getLogger(__name__)

_ROOM_LIMIT_MESSAGE = "no new room can be made: the chat holds as many rooms as it may"

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
        self._by_sub: dict[str, set[Member]] = {}
        """Token mode: the local sessions of each `sub`, for the calls of direct messages."""
        self._members: dict[str, set[Member]] = {}
        """Local members per room; a room with none is not listed."""
        self._people: dict[str, Counter[Person]] = {}
        """Local members per room by person (sessions each), kept beside `_members` so a
        presence round reads who is here without walking every session."""
        self._updaters: dict[str, set[Member]] = {}
        """Local members per room that joined it with `updates` (issue 13): the only ones sent
        `update` frames; a room with none is not listed."""
        self._members_wires: dict[str, bytes] = {}
        """The last `members` wire frame sent to each room's local members."""
        self._tally = RoomTally(
            per_connection=settings.max_rooms_per_connection,
            per_client=settings.max_rooms_per_client,
        )
        self.directory = RoomDirectory(
            preset=settings.rooms,
            known_max=contract.DIRECTORY_KNOWN_MAX,
            cache_seconds=contract.DIRECTORY_CACHE_SECONDS,
        )
        metrics.broker_blocked.set_function(lambda: float(broker.blocked is not None))
        metrics.room_limit_reached.set_function(lambda: float(broker.room_limit_reached))
        metrics.rooms_followed.set_function(lambda: float(self.logs.followed))
        self.logs = RoomLogs(broker, pod=pod, settings=settings, metrics=metrics, clock=clock)
        self.presence = Presence(
            broker,
            pod=pod,
            interval=settings.presence_interval_seconds,
            people_limit=settings.members_list_max,
            local=self._local_counts,
            people=self._local_people,
            push=self._push_presence,
            known=self._empty_rooms,
            on_known=self.directory.learn,
            clock=clock,
        )
        self._emptied = asyncio.Event()
        self._emptied.set()

    # Sessions.

    @property
    def broker_connected(self) -> bool:
        return self._broker.connected

    @property
    def room_limit_reached(self) -> bool:
        return self._broker.room_limit_reached

    @property
    def broker_blocked(self) -> str | None:
        """Why the broker holds back writes (a resource alarm), or None."""
        return self._broker.blocked

    def attach(self, member: Member) -> None:
        self._sessions.add(member)
        if (sub := member.identity.sub) is not None:
            self._by_sub.setdefault(sub, set()).add(member)
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
                users_online=self.presence.snapshot().users_online,
                rooms=self._settings.rooms,
                rate_per_second=self._settings.rate_per_second,
                rate_burst=self._settings.rate_burst,
                owner=owner_of(sub=member.identity.sub, client=member.identity.client),
                sub=member.identity.sub,
            )
        )
        self.presence.changed()

    def detach(self, member: Member) -> None:
        self._sessions.discard(member)
        self._expiring.discard(member)
        if (sub := member.identity.sub) is not None and (same := self._by_sub.get(sub)):
            same.discard(member)
            if not same:
                del self._by_sub[sub]
        for name in member.rooms:
            self._remove_member(member, name)
        member.rooms.clear()
        self._metrics.connections.set(len(self._sessions))
        if not self._sessions:
            self._emptied.set()
        self.presence.changed()

    def on_slow_consumer(self, member: Member) -> None:
        """A member fell more than its bound behind; it is being cut (its handler detaches it
        when its socket ends)."""
        self._metrics.slow_consumers.inc()
        log.warning("cut slow consumer", extra={"user": member.identity.user})

    def reauthorize(
        self, member: Member, identity: Identity, access: Access, expires_at: float | None
    ) -> None:
        """A refreshed token: new identity, permissions and deadline from now on."""
        for name in member.rooms:  # a new token may carry a new display name
            self._count_person(name, _person(member.identity), -1)
            self._count_person(name, _person(identity), +1)
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

    # Client requests, already admitted by the gate. Each answers the member itself or raises
    # ProtocolError.

    async def join(
        self,
        member: Member,
        name: str,
        *,
        since: MessageId | None,
        updates: bool = False,
        dm_with: str | None = None,
    ) -> None:
        """`dm_with`: the other person of a direct-message room (the gate checked the pair)."""
        client = client_key(member.identity)
        # Both refusals come before the broker is asked to follow, so a refused name creates no
        # stream (but for a race between the client's connections, caught below).
        self._tally.check(client, member.rooms, name)
        try:
            if not await self._may_open(member, name):
                self.directory.forget(name)
                raise ProtocolError(
                    closecodes.ROOM_NOT_FOUND,
                    f"room {name} does not exist, and this session may not create it",
                    room=name,
                )
            async with self.logs.held(name) as window:
                if not member.open:
                    return
                # Nothing awaits from here to send(): no record can reach the member before
                # its `joined` frame.
                recovery = window.recover(since, updates=updates)
                entered = name not in member.rooms
                if entered:
                    # Again: another connection of the client may have joined a room meanwhile.
                    self._tally.check(client, member.rooms, name)
                    member.rooms.add(name)
                    self._tally.add(client, name)
                    self._members.setdefault(name, set()).add(member)
                    self._count_person(name, _person(member.identity), +1)
                    self.logs.retain(name)
                if updates:
                    self._updaters.setdefault(name, set()).add(member)
                else:
                    self._drop_updater(member, name)
                member.send(
                    protocol.encode_joined(
                        room=name,
                        members=self.presence.snapshot().rooms.get(name, 0),
                        history=recovery.frames,
                        truncated=recovery.truncated,
                        reset=recovery.reset,
                        dm_with=dm_with,
                    )
                )
                self.directory.note((name,))
                # Who is here as last pushed; the round this join triggers sends the update.
                if (members_wire := self._members_wires.get(name)) is not None:
                    member.send_wire(members_wire)
                self.presence.changed()
            if dm_with is not None and entered:
                # The other person's sessions on every backend learn of the room (`dm` frames).
                await self._signal(member, name, to=dm_with)
        except RoomLimitReached:
            raise ProtocolError(closecodes.ROOM_LIMIT, _ROOM_LIMIT_MESSAGE, room=name) from None
        except BrokerUnavailable as exc:
            raise ProtocolError(
                closecodes.UNAVAILABLE, f"cannot join {name} now: {exc}", room=name
            ) from None

    async def _may_open(self, member: Member, name: str) -> bool:
        """True when joining `name` creates nothing, or `member` may create it (DESIGN section
        7). The broker is asked last: a preset room or one with local members exists."""
        anyone = self._settings.room_creation == "anyone"
        if member.access.may_create(name, anyone=anyone):
            return True
        return (
            name in self._settings.rooms
            or name in self._members
            or (await self._broker.exists(name))
        )

    def leave(self, member: Member, name: str) -> None:
        if name in member.rooms:
            member.rooms.discard(name)
            self._remove_member(member, name)
            self.presence.changed()
        member.send(protocol.encode_left(name))

    async def send(self, member: Member, request: protocol.Send) -> None:
        await self._append_and_ack(member, request.room, request.ref, request.text)

    async def _append_and_ack(
        self,
        member: Member,
        room: str,
        ref: str,
        text: str,
        change: Change | None = None,
    ) -> None:
        """Append a message (or, with `change`, an update) and ack it with its id once the
        broker confirmed it; a refusal is the contract's error with the `ref`."""
        try:
            record_id = await self.logs.append(
                room, identity=member.identity, ref=ref, text=text, change=change
            )
        except RoomLimitReached:
            raise ProtocolError(closecodes.ROOM_LIMIT, _ROOM_LIMIT_MESSAGE, ref=ref) from None
        except BrokerUnavailable as exc:
            raise ProtocolError(
                closecodes.UNAVAILABLE, f"not confirmed ({exc}): retry with the same ref", ref=ref
            ) from None
        member.send(protocol.encode_ack(ref=ref, id=record_id))

    async def update(self, member: Member, request: protocol.Update) -> None:
        """Append an edit, delete or reaction of a message of a joined room (the gate has checked
        the room and the rate). Only the message's owner may edit or delete it."""
        target = request.change.target
        try:
            owner = await self.logs.target(request.room, target)
        except BrokerUnavailable as exc:
            raise ProtocolError(
                closecodes.UNAVAILABLE, f"cannot find {target} now: {exc}", ref=request.ref
            ) from None
        if owner is None:
            raise ProtocolError(
                closecodes.MESSAGE_NOT_FOUND,
                f"no message {target} in {request.room} (unknown, or no longer retained)",
                ref=request.ref,
            )
        mine = owner_of(sub=member.identity.sub, client=member.identity.client)
        if request.change.action != "react" and owner != mine:
            raise ProtocolError(
                closecodes.FORBIDDEN,
                f"only its author may {request.change.action} message {target}",
                ref=request.ref,
            )
        await self._append_and_ack(
            member, request.room, request.ref, request.text, change=request.change
        )

    async def older(self, member: Member, request: protocol.Older) -> None:
        """A page of a joined room's messages before `request.before`, for this member only."""
        page_max = self._settings.history_page_max
        limit = min(request.limit or page_max, page_max)
        try:
            page = await self.logs.older(
                request.room,
                before=request.before,
                limit=limit,
                updates=member in self._updaters.get(request.room, ()),
            )
        except BrokerUnavailable as exc:
            raise ProtocolError(
                closecodes.UNAVAILABLE, f"cannot read {request.room} back now: {exc}"
            ) from None
        member.send(
            protocol.encode_older(room=request.room, messages=page.frames, start=page.start)
        )

    async def typing(self, member: Member, name: str) -> None:
        """Tell the room's other members, on every backend, that `member` is typing (the gate
        has checked the room and the rate). Through the broker, even to this backend's members:
        one path, and the local ones hear it in the same order as the remote ones."""
        await self._signal(member, name, to=None)

    async def _signal(self, member: Member, name: str, *, to: str | None) -> None:
        """A typing signal from `member` in room `name`; with `to`, a direct message's call."""
        identity = member.identity
        await self._broker.publish_typing(
            TypingSignal(
                room=name, name=identity.name, sub=identity.sub, session=member.session_id, to=to
            )
        )

    def rooms(self, member: Member, request: protocol.RoomsQuery) -> None:
        """A page of the room directory for this member: rooms it may join (the directory
        holds no direct message's; DESIGN section 4, `rooms`)."""
        page = search(
            self.directory.listing(self.presence.snapshot().rooms),
            query=request.query,
            offset=request.offset,
            limit=contract.DIRECTORY_PAGE_MAX,
            visible=member.access.joinable(),
        )
        member.send(
            protocol.encode_rooms(
                query=request.query, offset=request.offset, total=page.total, rooms=page.rooms
            )
        )

    def _remove_member(self, member: Member, name: str) -> None:
        members = self._members.get(name)
        if members is None or member not in members:
            return
        members.discard(member)
        self._tally.remove(client_key(member.identity), name)
        self._count_person(name, _person(member.identity), -1)
        self._drop_updater(member, name)
        if not members:
            del self._members[name]
            self._members_wires.pop(name, None)
        self.logs.release(name)

    def _drop_updater(self, member: Member, name: str) -> None:
        updaters = self._updaters.get(name)
        if updaters is not None:
            updaters.discard(member)
            if not updaters:
                del self._updaters[name]

    def _count_person(self, name: str, person: Person, change: int) -> None:
        people = self._people.setdefault(name, Counter())
        people[person] += change
        if people[person] <= 0:
            del people[person]
            if not people:
                del self._people[name]

    # BrokerListener.

    def on_records(self, records: Sequence[Record]) -> None:
        # One write per member per room for everything this delivery burst brought: the frames
        # are already encoded, so a burst of N messages costs each member one system call
        # instead of N, and never waits for a later burst (no added latency).
        for name, messages in self.logs.take(records).items():
            members = self._members.get(name, ())
            wires = [message.wire for message in messages]
            burst = wires[0] if len(wires) == 1 else b"".join(wires)
            if any(message.update for message in messages):
                self._send_with_updates(name, members, messages, burst)
            else:
                for member in members:
                    member.send_wire(burst)
            self._metrics.messages_out.inc(len(members) * len(wires))

    def _send_with_updates(
        self, name: str, members: Collection[Member], messages: Sequence[StoredMessage], full: bytes
    ) -> None:
        """A burst holding update records: whole to the members that asked for updates, its
        messages alone to the others (a burst of messages alone never comes here)."""
        updaters = self._updaters.get(name, set())
        plain = b"".join(message.wire for message in messages if not message.update)
        for member in members:
            if member in updaters:
                member.send_wire(full)
            elif plain:
                member.send_wire(plain)

    def on_log_reset(self, room: str, epoch: int) -> None:
        self.logs.reset(room, epoch)

    def on_presence(self, beat: PresenceBeat) -> None:
        self.presence.observe(beat)

    def on_typing(self, signal: TypingSignal) -> None:
        if signal.to is not None:
            self._call(signal)
            return
        members = self._members.get(signal.room)
        if not members:
            return  # nobody here follows the room: signals of every room reach every backend
        wire = wsframe.encode_text(
            protocol.encode_typing(room=signal.room, user=signal.name, sub=signal.sub)
        )
        for member in members:
            if member.session_id != signal.session:
                member.send_wire(wire)

    def _call(self, signal: TypingSignal) -> None:
        """Tell the sessions of `signal.to` here, that are not in the room yet, that `signal.sub`
        opened their direct message. The room is recomputed from both subs: a signal can only
        call someone into the pair's own room."""
        called = self._by_sub.get(signal.to or "")
        if not called or signal.sub is None or dm_room(signal.sub, signal.to or "") != signal.room:
            return
        frame = protocol.encode_dm_call(room=signal.room, other=signal.sub, user=signal.name)
        for member in called:
            if signal.room not in member.rooms:
                member.send(frame)

    def on_connection_change(self, connected: bool) -> None:
        self._metrics.broker_connected.set(1 if connected else 0)
        log.info("broker %s", "connected" if connected else "disconnected")
        if connected:
            self.presence.ask()
        self.presence.changed()

    # Presence frames.

    def _local_counts(self) -> LocalCounts:
        return len(self._sessions), {name: len(m) for name, m in self._members.items()}

    def _empty_rooms(self) -> tuple[str, ...]:
        """The rooms this backend knows with nobody in them, for a backend that asks."""
        return self.directory.empty(
            self.presence.snapshot().rooms, limit=contract.DIRECTORY_SYNC_MAX
        )

    def _local_people(self) -> LocalPeople:
        limit = self._settings.members_list_max
        return {
            name: tuple(heapq.nsmallest(limit, people)) for name, people in self._people.items()
        }

    def _push_presence(self, snapshot: PresenceSnapshot) -> None:
        self.directory.note(snapshot.rooms)
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
        self._push_members(snapshot)

    def _push_members(self, snapshot: PresenceSnapshot) -> None:
        for name, people in snapshot.people.items():
            members = self._members.get(name)
            if not members:
                continue  # everyone here left since the round began
            wire = wsframe.encode_text(
                protocol.encode_members(
                    room=name,
                    total=snapshot.rooms.get(name, 0),
                    people=people.first,
                    truncated=people.truncated,
                )
            )
            if wire != self._members_wires.get(name):
                self._members_wires[name] = wire
                for member in members:
                    member.send_wire(wire)

    # Stats and shutdown.

    def stats(self, *, room_names: bool = True) -> dict[str, object]:
        """The body of `/api/stats` (DESIGN section 3); without `room_names`, `rooms` is empty."""
        snapshot = self.presence.snapshot()
        rooms = Counter(dict.fromkeys(self._settings.rooms, 0))
        rooms.update(snapshot.rooms)
        return {
            "pod": self._pod,
            "connections": len(self._sessions),
            "users_online": snapshot.users_online,
            "rooms": dict(rooms) if room_names else {},
            "broker_blocked": self._broker.blocked is not None,
            "room_limit_reached": self._broker.room_limit_reached,
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


def _person(identity: Identity) -> Person:
    return Person(name=identity.name, sub=identity.sub or "")
