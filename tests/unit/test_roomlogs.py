"""Following rooms and the send story over the in-memory broker: `RoomLogs` of several backends on
sibling brokers, each fed the records its broker delivers, with no session or hub in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import orjson
import pytest

from chatserver.access import Identity
from chatserver.broker.base import BrokerUnavailable, Record
from chatserver.broker.memory import MemoryBroker
from chatserver.history import StoredMessage
from chatserver.ids import LEGACY_EPOCH, MessageId, parse_id
from chatserver.interchange import MessageRecord, PresenceBeat, decode_record, encode_record
from chatserver.metrics import ChatMetrics
from chatserver.roomlogs import OlderPage, RoomLogs
from chatserver.settings import ChatSettings

ALICE = Identity(user="alice", name="alice", client="tab1")


class CountingBroker(MemoryBroker):
    """A memory broker that records what is asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    async def follow(self, room: str, *, after: int | None = None) -> int:
        self.calls.append(("follow", room))
        return await super().follow(room, after=after)

    async def unfollow(self, room: str) -> None:
        self.calls.append(("unfollow", room))
        await super().unfollow(room)


class Backend:
    """One backend's room logs, fed by its broker; `delivered` is what it would fan out."""

    def __init__(self, broker: MemoryBroker, pod: str, **settings: Any) -> None:
        self.broker = broker
        self.logs = RoomLogs(
            broker, pod=pod, settings=ChatSettings(**settings), metrics=ChatMetrics()
        )
        self.delivered: list[StoredMessage] = []
        self.deaf = False
        """True: records are delivered to nobody (a follower that stopped reading)."""

    def on_records(self, records: Sequence[Record]) -> None:
        if not self.deaf:
            for messages in self.logs.take(records).values():
                self.delivered.extend(messages)

    def on_log_reset(self, room: str, epoch: int) -> None:
        self.logs.reset(room, epoch)

    def on_presence(self, beat: PresenceBeat) -> None:
        pass

    def on_connection_change(self, connected: bool) -> None:
        pass

    async def member_of(self, room: str) -> None:
        """Hold the room as a joined member does."""
        async with self.logs.held(room):
            self.logs.retain(room)

    def texts(self) -> list[str]:
        return [orjson.loads(message.frame)["text"] for message in self.delivered]


BackendFactory = Callable[..., Awaitable[Backend]]


@pytest.fixture
async def make_backend() -> AsyncIterator[BackendFactory]:
    root = CountingBroker()
    backends: list[Backend] = []

    async def make(pod: str, **settings: Any) -> Backend:
        backend = Backend(root if not backends else root.sibling(), pod, **settings)
        backends.append(backend)
        await backend.broker.start(backend)
        return backend

    yield make
    for backend in backends:
        await backend.broker.close()


async def members_on_two_backends(make_backend: BackendFactory, room: str) -> list[Backend]:
    """Two backends of one cluster, each with a member in `room`."""
    backends = [await make_backend("a"), await make_backend("b")]
    for backend in backends:
        await backend.member_of(room)
    return backends


async def test_append_returns_once_the_message_is_in_this_backends_window(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    message_id = await backend.logs.append("lobby", identity=ALICE, ref="r1", text="hello")
    async with backend.logs.held("lobby") as window:
        stored = window.find((None, "tab1", "r1"))
    assert stored is not None
    assert stored.id == message_id
    assert backend.texts() == ["hello"]


async def test_a_resent_ref_gets_the_original_id_and_appends_nothing(
    make_backend: BackendFactory,
) -> None:
    first, second = await members_on_two_backends(make_backend, "lobby")
    original = await first.logs.append("lobby", identity=ALICE, ref="same", text="once")
    again = await second.logs.append("lobby", identity=ALICE, ref="same", text="once")
    assert again == original
    assert first.texts() == second.texts() == ["once"]
    assert len(first.broker._state.room("lobby").records) == 1


async def test_racing_retries_through_two_backends_store_one_message(
    make_backend: BackendFactory,
) -> None:
    first, second = await members_on_two_backends(make_backend, "lobby")
    ids = await asyncio.gather(
        first.logs.append("lobby", identity=ALICE, ref="dup", text="racy"),
        second.logs.append("lobby", identity=ALICE, ref="dup", text="racy"),
    )
    assert ids[0] == ids[1]
    assert first.texts() == second.texts() == ["racy"]
    assert len(first.broker._state.room("lobby").records) == 2  # both appended, one kept


async def test_a_repeated_record_is_not_delivered_twice(make_backend: BackendFactory) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    await backend.logs.append("lobby", identity=ALICE, ref="r1", text="once")
    again = MessageRecord(
        publish_id="p2", user="alice", client="tab1", ref="r2", text="again", ts=0.0, pod="a"
    )
    epoch = backend.broker._state.room("lobby").epoch
    assert backend.logs.take([Record("lobby", epoch, offset=0, body=encode_record(again))]) == {}


async def test_an_undecodable_record_is_skipped(make_backend: BackendFactory) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    await backend.broker.append("lobby", b"not a message")
    epoch = backend.broker._state.room("lobby").epoch
    message_id = await backend.logs.append("lobby", identity=ALICE, ref="r1", text="fine")
    assert message_id == f"{epoch}-1"
    assert backend.texts() == ["fine"]


async def test_records_of_rooms_not_held_are_ignored(make_backend: BackendFactory) -> None:
    backend = await make_backend("a")
    body = encode_record(
        MessageRecord(publish_id="p", user="u", client="c", ref="r", text="t", ts=0.0, pod="a")
    )
    assert backend.logs.take([Record(room="elsewhere", epoch=1, offset=0, body=body)]) == {}


async def test_an_append_the_broker_refuses_raises_broker_unavailable(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    await backend.broker.close()
    with pytest.raises(BrokerUnavailable):
        await backend.logs.append("lobby", identity=ALICE, ref="r1", text="hi")


async def test_a_record_not_read_back_in_time_raises_broker_unavailable(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a", ack_timeout_seconds=0.05)
    await backend.member_of("lobby")
    backend.deaf = True
    with pytest.raises(BrokerUnavailable, match="timeout"):
        await backend.logs.append("lobby", identity=ALICE, ref="r1", text="lost?")
    backend.deaf = False
    # Not confirmed is not the same as not stored: hence the client's retry with the same ref.
    stored = decode_record(backend.broker._state.room("lobby").records[0].body)
    assert (stored.client, stored.ref) == ("tab1", "r1")


async def test_the_last_release_unfollows_and_the_next_hold_rebuilds_the_window(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    await backend.member_of("lobby")
    await backend.logs.append("lobby", identity=ALICE, ref="r1", text="before")
    backend.logs.release("lobby")
    await asyncio.sleep(0)
    assert backend.broker.calls == [("follow", "lobby")]  # one member is still in
    backend.logs.release("lobby")
    await asyncio.sleep(0)
    assert backend.broker.calls == [("follow", "lobby"), ("unfollow", "lobby")]
    async with backend.logs.held("lobby") as window:
        assert (len(window), window.last_offset) == (1, 0)
    assert backend.broker.calls[-1] == ("follow", "lobby")


async def test_a_hold_that_cannot_follow_raises_and_the_next_one_tries_again(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a")
    await backend.broker.close()
    with pytest.raises(BrokerUnavailable):
        async with backend.logs.held("lobby"):
            pytest.fail("the block must not run without the follow")
    await backend.broker.start(backend)
    async with backend.logs.held("lobby") as window:
        assert len(window) == 0


async def test_a_replaced_log_gets_a_new_window_and_its_ids_never_repeat_an_old_one(
    make_backend: BackendFactory,
) -> None:
    first, second = await members_on_two_backends(make_backend, "lobby")
    old = await first.logs.append("lobby", identity=ALICE, ref="r1", text="before")
    await first.broker.drop_log("lobby")
    new = await second.logs.append("lobby", identity=ALICE, ref="r2", text="after")
    old_id, new_id = parse_id(old), parse_id(new)
    assert old_id is not None
    assert new_id is not None
    assert new_id.epoch > old_id.epoch
    for backend in (first, second):
        assert backend.texts() == ["before", "after"]
        async with backend.logs.held("lobby") as window:
            assert (window.epoch, len(window), window.last_offset) == (new_id.epoch, 1, 0)
    # Dedupe goes on in the new log: a retry through the other backend gets the same id.
    assert await first.logs.append("lobby", identity=ALICE, ref="r2", text="after") == new
    assert len(first.broker._state.room("lobby").records) == 1


def page_texts(frames: Sequence[bytes]) -> list[str]:
    return [orjson.loads(frame)["text"] for frame in frames]


async def said(backend: Backend, text: str, *, ref: str) -> MessageId:
    """Append a message to `lobby` through `backend`; its id."""
    message_id = parse_id(await backend.logs.append("lobby", identity=ALICE, ref=ref, text=text))
    assert message_id is not None
    return message_id


async def test_older_pages_back_from_an_id_to_the_first_message(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    ids = [await said(backend, f"m{n}", ref=f"r{n}") for n in range(7)]

    newer = await backend.logs.older("lobby", before=ids[6], limit=3)
    assert (page_texts(newer.frames), newer.start) == (["m3", "m4", "m5"], False)
    assert [orjson.loads(f)["id"] for f in newer.frames] == [str(i) for i in ids[3:6]]
    oldest = await backend.logs.older("lobby", before=ids[3], limit=3)
    assert (page_texts(oldest.frames), oldest.start) == (["m0", "m1", "m2"], True)
    assert await backend.logs.older("lobby", before=ids[0], limit=3) == OlderPage([], True)


async def test_older_than_an_id_of_another_log_is_an_empty_page_at_the_start(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    message_id = await said(backend, "t", ref="r")
    for other in (MessageId(message_id.epoch - 1, 5), MessageId(LEGACY_EPOCH, 5)):
        assert await backend.logs.older("lobby", before=other, limit=3) == OlderPage([], True)


async def test_older_than_an_id_this_backend_has_not_read_yet_pages_from_its_newest(
    make_backend: BackendFactory,
) -> None:
    lagging, writer = await members_on_two_backends(make_backend, "lobby")
    await said(writer, "m0", ref="r0")
    lagging.deaf = True
    await said(writer, "m1", ref="r1")
    newest = await said(writer, "m2", ref="r2")

    page = await lagging.logs.older("lobby", before=newest, limit=10)

    assert (page_texts(page.frames), page.start) == (["m0"], True)


async def test_older_leaves_out_a_retry_that_raced_its_original(
    make_backend: BackendFactory,
) -> None:
    first, second = await members_on_two_backends(make_backend, "lobby")
    await asyncio.gather(said(first, "racy", ref="dup"), said(second, "racy", ref="dup"))
    last = await said(first, "after", ref="r")

    page = await second.logs.older("lobby", before=last, limit=10)

    assert page_texts(page.frames) == ["racy"]


async def test_older_when_the_broker_is_away_raises_broker_unavailable(
    make_backend: BackendFactory,
) -> None:
    backend = await make_backend("a")
    await backend.member_of("lobby")
    last = await said(backend, "t", ref="r")
    await backend.broker.close()
    with pytest.raises(BrokerUnavailable):
        await backend.logs.older("lobby", before=last, limit=10)
