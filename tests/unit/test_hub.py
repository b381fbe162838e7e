"""The hub over the in-memory broker: several hubs on sibling brokers stand for several
backends of one cluster, and recording members stand for their WebSocket sessions."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from chatserver import closecodes
from chatserver.access import OPEN, Access, Identity
from chatserver.broker.base import Record
from chatserver.broker.memory import MemoryBroker
from chatserver.dm import dm_room
from chatserver.hub import Hub
from chatserver.ids import parse_id
from chatserver.interchange import MessageRecord, TypingSignal, encode_record
from chatserver.metrics import ChatMetrics
from chatserver.protocol import Older, ProtocolError, RoomsQuery, Send
from chatserver.settings import ChatSettings
from tests.unit.rfc6455 import text_frame_payloads

_sessions = itertools.count()


class RecordingMember:
    """A session that records what it is sent: every frame decoded, and the wire frames shared
    by many members as the very objects it was handed."""

    def __init__(
        self,
        name: str,
        client: str | None = None,
        *,
        access: Access = OPEN,
        expires_at: float | None = None,
    ) -> None:
        self.session_id = f"s{next(_sessions)}"
        self.identity = Identity(user=name, name=name, client=client or name)
        self.access = access
        self.expires_at = expires_at
        self.rooms: set[str] = set()
        self.last_presence = b""
        self.frames: list[dict[str, Any]] = []
        self.wires: list[bytes] = []
        self.closed_with: int | None = None
        self.changed = asyncio.Event()

    @property
    def open(self) -> bool:
        return self.closed_with is None

    def send(self, frame: bytes) -> None:
        self.frames.append(orjson.loads(frame))
        self.changed.set()

    def send_wire(self, wire: bytes) -> None:
        self.wires.append(wire)
        for payload in text_frame_payloads(wire):
            self.send(payload)

    def close_soon(self, code: int, reason: str) -> None:
        self.closed_with = code

    def cut(self, code: int, reason: str) -> None:
        self.closed_with = code

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    def texts(self) -> list[str]:
        return [f["text"] for f in self.of_type("message")]

    async def until_texts(self, count: int) -> None:
        await self.until(lambda: len(self.texts()) >= count)

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def make_hub() -> AsyncIterator[HubFactory]:
    """Hubs sharing one in-memory cluster, each with its presence loop running."""
    root = MemoryBroker()
    brokers: list[MemoryBroker] = []
    tasks: list[asyncio.Task[None]] = []

    async def make(pod: str, **settings: Any) -> Hub:
        broker = root if not brokers else root.sibling()
        brokers.append(broker)
        chat = ChatSettings(presence_interval_seconds=0.2, **settings)
        hub = Hub(broker, pod=pod, settings=chat, metrics=ChatMetrics())
        await broker.start(hub)
        tasks.append(asyncio.create_task(hub.presence.run()))
        return hub

    yield make
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for broker in brokers:
        await broker.close()


async def attached(hub: Hub, name: str, *rooms: str, client: str | None = None) -> RecordingMember:
    member = RecordingMember(name, client)
    hub.attach(member)
    for room in rooms:
        await hub.join(member, room, since=None)
    return member


async def say(hub: Hub, member: RecordingMember, room: str, text: str, ref: str) -> str:
    await hub.send(member, Send(room=room, text=text, ref=ref))
    ack = member.of_type("ack")[-1]
    assert ack["ref"] == ref
    return str(ack["id"])


async def test_every_member_on_every_hub_gets_each_message_once_in_order(
    make_hub: HubFactory,
) -> None:
    hubs = [await make_hub(f"pod{i}") for i in range(3)]
    members = [
        await attached(hub, f"u{i}{j}", "lobby") for i, hub in enumerate(hubs) for j in range(3)
    ]
    sent = []
    for n in range(20):
        speaker = members[n % len(members)]
        hub = hubs[members.index(speaker) // 3]
        await say(hub, speaker, "lobby", f"m{n}", ref=f"r{n}")
        sent.append(f"m{n}")
    for member in members:
        await member.until_texts(len(sent))
        assert member.texts() == sent
    ids = [[f["id"] for f in m.of_type("message")] for m in members]
    assert all(i == ids[0] for i in ids)


async def test_a_message_is_framed_once_and_the_same_bytes_go_to_every_member(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a")
    members = [await attached(hub, f"u{i}", "lobby") for i in range(3)]
    await say(hub, members[0], "lobby", "shared", ref="r1")
    wires = [next(w for w in member.wires if b'"type":"message"' in w) for member in members]
    assert all(wire is wires[0] for wire in wires)


async def test_a_burst_of_records_reaches_each_member_as_one_write_in_log_order(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a")
    members = [await attached(hub, f"u{i}", "lobby") for i in range(2)]
    outsider = await attached(hub, "o", "other")
    state = hub._broker._state  # type: ignore[attr-defined]
    burst = [
        Record(
            room="lobby" if n < 3 else "other",
            epoch=state.room("lobby" if n < 3 else "other").epoch,
            offset=100 + n,
            body=encode_record(
                MessageRecord(
                    publish_id=f"p{n}", user="w", client="w", ref=f"r{n}", text=f"b{n}",
                    ts=0.0, pod="elsewhere",
                )
            ),
        )
        for n in range(4)
    ]  # fmt: skip
    hub.on_records(burst)
    for member in members:
        assert member.texts() == ["b0", "b1", "b2"]
        assert len([w for w in member.wires if b'"type":"message"' in w]) == 1
    assert outsider.texts() == ["b3"]


async def test_presence_is_framed_once_per_distinct_content(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    lobby = [await attached(hub, f"l{i}", "lobby") for i in range(2)]
    other = [await attached(hub, f"o{i}", "other") for i in range(2)]

    def settled(member: RecordingMember) -> bool:
        frames = member.of_type("presence")
        return bool(frames) and frames[-1]["users_online"] == 4

    for member in lobby + other:
        await member.until(lambda member=member: settled(member))
    assert lobby[0].last_presence is lobby[1].last_presence
    assert other[0].last_presence is other[1].last_presence
    assert lobby[0].last_presence != other[0].last_presence


async def test_ack_means_the_message_is_in_this_hubs_history(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    alice = await attached(hub, "alice", "lobby")
    message_id = await say(hub, alice, "lobby", "hello", ref="r1")
    late = await attached(hub, "late", "lobby")
    history = late.of_type("joined")[0]["history"]
    assert [(m["id"], m["text"], m["user"], m["pod"]) for m in history] == [
        (message_id, "hello", "alice", "a")
    ]


async def test_join_since_replays_only_missed_messages(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    alice = await attached(hub, "alice", "lobby")
    ids = [await say(hub, alice, "lobby", f"m{n}", ref=f"r{n}") for n in range(5)]
    bob = RecordingMember("bob")
    hub.attach(bob)
    await hub.join(bob, "lobby", since=parse_id(ids[2]))
    joined = bob.of_type("joined")[0]
    assert [m["text"] for m in joined["history"]] == ["m3", "m4"]
    assert joined["truncated"] is False


async def test_join_since_beyond_the_window_is_truncated(make_hub: HubFactory) -> None:
    hub = await make_hub("a", history_size=3)
    alice = await attached(hub, "alice", "lobby")
    ids = [await say(hub, alice, "lobby", f"m{n}", ref=f"r{n}") for n in range(6)]
    bob = RecordingMember("bob")
    hub.attach(bob)
    await hub.join(bob, "lobby", since=parse_id(ids[0]))
    joined = bob.of_type("joined")[0]
    assert [m["text"] for m in joined["history"]] == ["m3", "m4", "m5"]
    assert joined["truncated"] is True
    assert joined["reset"] is False


async def test_join_since_an_id_of_a_replaced_log_gets_the_latest_window_marked_reset(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a")
    alice = await attached(hub, "alice", "lobby")
    old = await say(hub, alice, "lobby", "before", ref="r1")
    await hub._broker.drop_log("lobby")  # type: ignore[attr-defined]
    new = await say(hub, alice, "lobby", "after", ref="r2")
    assert parse_id(new) > parse_id(old)  # type: ignore[operator]
    for since in (old, "0"):  # an id of the replaced log; one from before epochs
        bob = RecordingMember("bob")
        hub.attach(bob)
        await hub.join(bob, "lobby", since=parse_id(since))
        joined = bob.of_type("joined")[0]
        assert [m["text"] for m in joined["history"]] == ["after"]
        assert (joined["reset"], joined["truncated"]) == (True, False)


async def test_older_answers_one_member_a_page_cut_to_the_configured_size(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a", history_size=2, history_page_max=3)
    alice = await attached(hub, "alice", "lobby")
    ids = [await say(hub, alice, "lobby", f"m{n}", ref=f"r{n}") for n in range(6)]
    bob = await attached(hub, "bob", "lobby")
    oldest_shown = parse_id(bob.of_type("joined")[0]["history"][0]["id"])
    assert oldest_shown is not None

    await hub.older(bob, Older("lobby", oldest_shown, limit=1000))

    (page,) = bob.of_type("older")
    assert [(m["id"], m["text"]) for m in page["messages"]] == [
        (ids[n], f"m{n}") for n in (1, 2, 3)
    ]
    assert (page["room"], page["start"]) == ("lobby", False)
    assert alice.of_type("older") == []


async def test_older_with_the_broker_gone_answers_unavailable(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    alice = await attached(hub, "alice", "lobby")
    last = parse_id(await say(hub, alice, "lobby", "hi", ref="r1"))
    assert last is not None
    await hub._broker.close()
    with pytest.raises(ProtocolError) as caught:
        await hub.older(alice, Older("lobby", last, limit=None))
    assert (caught.value.code, caught.value.room) == (closecodes.UNAVAILABLE, None)


async def test_a_room_left_by_everyone_is_rebuilt_from_the_log(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    alice = await attached(hub, "alice", "lobby")
    await say(hub, alice, "lobby", "before", ref="r1")
    hub.leave(alice, "lobby")
    assert hub.stats()["rooms"] == {"general": 0}
    bob = await attached(hub, "bob", "lobby")
    assert [m["text"] for m in bob.of_type("joined")[0]["history"]] == ["before"]


async def test_broker_gone_answers_unavailable(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    alice = await attached(hub, "alice", "lobby")
    await hub._broker.close()  # the one way to make an in-memory broker "unreachable"
    with pytest.raises(ProtocolError) as caught:
        await hub.send(alice, Send(room="lobby", text="hi", ref="r1"))
    assert (caught.value.code, caught.value.ref) == (closecodes.UNAVAILABLE, "r1")
    with pytest.raises(ProtocolError) as joining:
        await hub.join(alice, "other", since=None)
    assert (joining.value.code, joining.value.room) == (closecodes.UNAVAILABLE, "other")


async def test_presence_is_cluster_wide(make_hub: HubFactory) -> None:
    first, second = await make_hub("a"), await make_hub("b")
    alice = await attached(first, "alice", "lobby")
    await attached(second, "bob", "lobby")
    await attached(second, "carol")

    def counts() -> tuple[int, dict[str, int]] | None:
        frames = alice.of_type("presence")
        return (frames[-1]["users_online"], frames[-1]["rooms"]) if frames else None

    await alice.until(lambda: counts() == (3, {"lobby": 2}))
    assert first.stats()["users_online"] == second.stats()["users_online"] == 3
    assert first.stats()["rooms"] == {"general": 0, "lobby": 2}


async def test_a_detached_member_leaves_the_counts(make_hub: HubFactory) -> None:
    first, second = await make_hub("a"), await make_hub("b")
    alice = await attached(first, "alice", "lobby")
    bob = await attached(second, "bob", "lobby")
    await alice.until(
        lambda: (
            alice.of_type("presence")[-1:]
            == [{"type": "presence", "users_online": 2, "rooms": {"lobby": 2}}]
        )
    )
    second.detach(bob)
    await alice.until(lambda: alice.of_type("presence")[-1]["users_online"] == 1)
    assert alice.of_type("presence")[-1]["rooms"] == {"lobby": 1}


async def test_drain_tells_everyone_to_reconnect_and_closes_with_1012(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    members = [await attached(hub, f"u{i}", "lobby") for i in range(3)]
    hub.drain("bye")
    for member in members:
        assert member.frames[-1] == {"type": "reconnect", "reason": "bye"}
        assert member.closed_with == closecodes.SERVICE_RESTART


TEAM_ONLY = Access(join=("team-*", "general"), post=("team-*",))


async def test_new_claims_leave_the_rooms_they_no_longer_allow(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    member = RecordingMember("ada", access=TEAM_ONLY, expires_at=100.0)
    hub.attach(member)
    for room in ("general", "team-red"):
        await hub.join(member, room, since=None)
    narrower = Access(join=("team-*",), post=None)
    hub.reauthorize(member, member.identity, narrower, 200.0)
    assert member.rooms == {"team-red"}
    assert member.of_type("left") == [{"type": "left", "room": "general"}]
    assert (member.access, member.expires_at) == (narrower, 200.0)


async def test_expired_sessions_are_told_and_closed_with_4001(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    soon = RecordingMember("soon", expires_at=100.0)
    later = RecordingMember("later", expires_at=200.0)
    never = RecordingMember("never")
    for member in (soon, later, never):
        hub.attach(member)
    hub.expire_sessions(150.0)
    assert soon.closed_with == closecodes.SESSION_EXPIRED
    assert soon.of_type("error")[-1]["code"] == closecodes.TOKEN_EXPIRED
    assert later.closed_with is None
    hub.reauthorize(later, later.identity, OPEN, 300.0)  # a refresh moves the deadline
    hub.expire_sessions(250.0)
    assert later.closed_with is None
    hub.expire_sessions(1e12)
    assert later.closed_with == closecodes.SESSION_EXPIRED
    assert never.closed_with is None
    assert len(soon.of_type("error")) == 1  # told once


async def refused_join(hub: Hub, member: RecordingMember, room: str) -> str:
    """The code of the refusal of `member`'s join of `room` (which must be refused)."""
    with pytest.raises(ProtocolError) as caught:
        await hub.join(member, room, since=None)
    assert caught.value.room == room
    return caught.value.code


async def test_a_connection_may_join_up_to_its_cap_and_rejoin_or_swap_rooms(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a", max_rooms_per_connection=2)
    alice = await attached(hub, "alice", "one", "two")
    assert await refused_join(hub, alice, "three") == closecodes.TOO_MANY_ROOMS
    await hub.join(alice, "two", since=None)  # a room joined already is never refused
    hub.leave(alice, "one")
    await hub.join(alice, "three", since=None)
    assert alice.rooms == {"two", "three"}


async def test_a_clients_connections_share_one_cap_counting_each_room_once(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a", max_rooms_per_connection=3, max_rooms_per_client=3)
    tab1 = await attached(hub, "alice", "one", "two", client="c1")
    tab2 = await attached(hub, "alice", "two", "three", client="c1")
    assert await refused_join(hub, tab2, "four") == closecodes.TOO_MANY_ROOMS
    other = await attached(hub, "bob", "four", client="c2")  # another client: its own count
    hub.detach(tab1)  # "one" is no longer the client's; "two" still is, through tab2
    await hub.join(tab2, "four", since=None)
    assert await refused_join(hub, tab2, "five") == closecodes.TOO_MANY_ROOMS
    assert other.rooms == {"four"}


async def test_a_refused_join_creates_no_room(make_hub: HubFactory) -> None:
    hub = await make_hub("a", max_rooms_per_connection=1, room_creation="preset")
    alice = await attached(hub, "alice", "general")
    assert await refused_join(hub, alice, "capped") == closecodes.TOO_MANY_ROOMS
    hub.leave(alice, "general")
    assert await refused_join(hub, alice, "unheard-of") == closecodes.ROOM_NOT_FOUND
    assert not await hub._broker.exists("capped")
    assert not await hub._broker.exists("unheard-of")


async def test_preset_creation_admits_preset_and_existing_rooms_only(
    make_hub: HubFactory,
) -> None:
    open_hub = await make_hub("a")
    await attached(open_hub, "alice", "made-before")
    preset = await make_hub("b", room_creation="preset", rooms=("general", "news"))
    bob = await attached(preset, "bob", "general", "news", "made-before")
    assert await refused_join(preset, bob, "fresh") == closecodes.ROOM_NOT_FOUND
    assert bob.rooms == {"general", "news", "made-before"}


async def test_a_create_claim_overrides_the_servers_creation_rule(make_hub: HubFactory) -> None:
    preset = await make_hub("a", room_creation="preset")
    maker = RecordingMember("maker", access=Access(join=None, post=None, create=("team-*",)))
    preset.attach(maker)
    await preset.join(maker, "team-a", since=None)
    assert await refused_join(preset, maker, "elsewhere") == closecodes.ROOM_NOT_FOUND
    anyone = await make_hub("b")
    barred = RecordingMember("barred", access=Access(join=None, post=None, create=()))
    anyone.attach(barred)
    assert await refused_join(anyone, barred, "brand-new") == closecodes.ROOM_NOT_FOUND
    await anyone.join(barred, "team-a", since=None)  # it exists now: joining creates nothing


def last_members(member: RecordingMember, room: str) -> dict[str, Any] | None:
    frames = [f for f in member.of_type("members") if f["room"] == room]
    return frames[-1] if frames else None


def lobby_members(total: int, *names: str, truncated: bool = False) -> dict[str, Any]:
    people = [{"user": name} for name in names]
    return {
        "type": "members",
        "room": "lobby",
        "total": total,
        "people": people,
        "truncated": truncated,
    }


async def test_members_by_name_are_cluster_wide_and_follow_leaves(make_hub: HubFactory) -> None:
    first, second = await make_hub("a"), await make_hub("b")
    alice = await attached(first, "alice", "lobby")
    bob = await attached(second, "bob", "lobby")
    await attached(second, "bob", "lobby", client="bob-tab-2")
    both = lobby_members(3, "alice", "bob")
    await alice.until(lambda: last_members(alice, "lobby") == both)
    await bob.until(lambda: last_members(bob, "lobby") == both)

    second.leave(bob, "lobby")
    # Bob's other tab is still there: he stays listed, counted once less.
    await alice.until(lambda: last_members(alice, "lobby") == lobby_members(2, "alice", "bob"))


async def test_a_late_joiner_is_told_who_is_here_at_once(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    alice = await attached(hub, "alice", "lobby")
    await alice.until(lambda: last_members(alice, "lobby") is not None)
    carol = await attached(hub, "carol", "lobby")
    assert last_members(carol, "lobby") == last_members(alice, "lobby")
    assert carol.frames.index(last_members(carol, "lobby")) == 2  # welcome, joined, members


async def test_members_frames_go_only_to_the_rooms_members_and_lists_are_bounded(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a", members_list_max=2)
    outsider = await attached(hub, "zed", "other")
    crowd = [await attached(hub, name, "lobby") for name in ("dan", "cy", "bo", "al")]
    expected = lobby_members(4, "al", "bo", truncated=True)
    await crowd[0].until(lambda: last_members(crowd[0], "lobby") == expected)
    assert last_members(outsider, "lobby") is None


async def test_typing_reaches_the_rooms_other_members_on_every_hub_and_no_one_else(
    make_hub: HubFactory,
) -> None:
    first, second = await make_hub("a"), await make_hub("b")
    ada = await attached(first, "ada", "lobby")
    bob = await attached(first, "bob", "lobby")
    cy = await attached(second, "cy", "lobby")
    outsider = await attached(second, "zed", "other")

    await first.typing(ada, "lobby")
    typing = {"type": "typing", "room": "lobby", "user": "ada"}
    for member in (bob, cy):
        await member.until(lambda member=member: member.of_type("typing") == [typing])
    # Both hubs have handled the signal by now: each has a member that got it.
    assert ada.of_type("typing") == outsider.of_type("typing") == []


async def test_in_token_mode_members_and_typing_carry_the_verified_sub(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a")
    ada, namesake = RecordingMember("Ada"), RecordingMember("Ada")
    ada.identity = Identity(user="u1", name="Ada", client="c1", verified=True)
    namesake.identity = Identity(user="u2", name="Ada", client="c2", verified=True)
    for member in (ada, namesake):
        hub.attach(member)
        await hub.join(member, "lobby", since=None)
    people = [{"user": "Ada", "sub": "u1"}, {"user": "Ada", "sub": "u2"}]
    await ada.until(lambda: (last_members(ada, "lobby") or {}).get("people") == people)

    await hub.typing(ada, "lobby")
    typing = {"type": "typing", "room": "lobby", "user": "Ada", "sub": "u1"}
    await namesake.until(lambda: namesake.of_type("typing") == [typing])


async def test_the_directory_lists_rooms_of_every_hub_and_keeps_emptied_ones(
    make_hub: HubFactory,
) -> None:
    first, second = await make_hub("a"), await make_hub("b")
    alice = await attached(first, "alice", "lobby")
    asker = await attached(second, "bob")

    def listed() -> dict[str, int]:
        second.rooms(asker, RoomsQuery(query="", offset=0))
        return {r["room"]: r["members"] for r in asker.of_type("rooms")[-1]["rooms"]}

    await until_true(lambda: listed().get("lobby") == 1)
    first.leave(alice, "lobby")
    await until_true(lambda: listed() == {"lobby": 0, "general": 0})


async def test_the_directory_hides_direct_messages_and_rooms_outside_the_claims(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a")
    member = await attached(hub, "alice", "team-a", "other")
    await hub.join(member, dm_room("alice", "bob"), since=None, dm_with="bob")
    member.access = Access(join=("team-*", "dm-*"), post=None)
    await until_true(lambda: hub.presence.snapshot().rooms.get("other") == 1)
    hub.rooms(member, RoomsQuery(query="", offset=0))
    page = member.of_type("rooms")[-1]
    assert page["rooms"] == [{"room": "team-a", "members": 1}]
    assert page["total"] == 1


async def until_true(condition: Callable[[], bool]) -> None:
    """Poll: what a directory answers is built on asking, with no event to wait for."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def signed_in(name: str) -> RecordingMember:
    member = RecordingMember(name)
    member.identity = Identity(user=f"u-{name}", name=name, client=name, verified=True)
    return member


async def test_opening_a_dm_calls_the_other_persons_sessions_on_every_hub_once(
    make_hub: HubFactory,
) -> None:
    first, second = await make_hub("a"), await make_hub("b")
    ada, bob, bob_in_room, eve = (signed_in(n) for n in ("ada", "bob", "bob", "eve"))
    for hub, member in ((first, ada), (second, bob), (second, bob_in_room), (second, eve)):
        hub.attach(member)
    room = dm_room("u-ada", "u-bob")
    await second.join(bob_in_room, room, since=None, dm_with="u-ada")
    await first.join(ada, room, since=None, dm_with="u-bob")
    await bob.until(lambda: bool(bob.of_type("dm")))
    assert bob.of_type("dm") == [{"type": "dm", "room": room, "with": "u-ada", "user": "ada"}]
    assert bob_in_room.of_type("dm") == []  # in the room already: nothing to learn
    await first.join(ada, room, since=None, dm_with="u-bob")  # joined already: no second call
    await say(first, ada, room, "hi", "r1")
    await bob_in_room.until_texts(1)
    assert len(bob.of_type("dm")) == 1
    assert eve.of_type("dm") == []


async def test_a_call_naming_a_room_that_is_not_the_pairs_reaches_nobody(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub("a")
    bob = signed_in("bob")
    hub.attach(bob)
    forged = TypingSignal(
        room="dm-" + "0" * 40, name="mallory", sub="u-mal", session="x", to="u-bob"
    )
    hub.on_typing(forged)
    assert bob.of_type("dm") == []


async def test_a_hub_started_after_a_room_emptied_learns_it_from_the_others(
    make_hub: HubFactory,
) -> None:
    first = await make_hub("a")
    alice = await attached(first, "alice", "lobby")
    first.leave(alice, "lobby")
    await until_true(lambda: "lobby" not in first.presence.snapshot().rooms)
    second = await make_hub("b")
    asker = await attached(second, "bob")

    def listed() -> dict[str, int]:
        second.rooms(asker, RoomsQuery(query="", offset=0))
        return {r["room"]: r["members"] for r in asker.of_type("rooms")[-1]["rooms"]}

    await until_true(lambda: listed().get("lobby") == 0)
