"""The broker contract (chatserver/broker/base.py), run against every implementation.

Each test builds a small cluster of backends, each with its own broker and listener: siblings of
one MemoryBroker, or RabbitMQBrokers on one cluster name of the session's RabbitMQ node.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiormq
import pytest

from chatserver.broker import Broker, BrokerUnavailable, Record
from chatserver.broker.amqp_wire import Topology
from chatserver.broker.memory import MemoryBroker
from chatserver.broker.rabbitmq import RabbitMQBroker, RabbitMQSettings
from chatserver.interchange import PresenceBeat, TypingSignal
from tests.fixtures.rabbitmq import RabbitMQNode

WAIT = 30.0
"""Seconds any awaited condition gets: generous, for a node restart on a busy shared machine."""

FAST_RECONNECT = RabbitMQSettings(backoff_initial=0.05, backoff_cap=0.5, heartbeat=2)


class RecordingListener:
    """Keeps everything a broker delivers and lets a test await a condition on it."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.beats: list[PresenceBeat] = []
        self.typing: list[TypingSignal] = []
        self.changes: list[bool] = []
        self.resets: list[tuple[str, int]] = []
        self._changed = asyncio.Event()

    def on_records(self, records: Sequence[Record]) -> None:
        self.records.extend(records)
        self._changed.set()

    def on_log_reset(self, room: str, epoch: int) -> None:
        self.resets.append((room, epoch))
        self._changed.set()

    def on_presence(self, beat: PresenceBeat) -> None:
        self.beats.append(beat)
        self._changed.set()

    def on_typing(self, signal: TypingSignal) -> None:
        self.typing.append(signal)
        self._changed.set()

    def on_connection_change(self, connected: bool) -> None:
        self.changes.append(connected)
        self._changed.set()

    def bodies(self, room: str) -> list[bytes]:
        return [r.body for r in self.records if r.room == room]

    def offsets(self, room: str) -> list[int]:
        return [r.offset for r in self.records if r.room == room]

    async def until(self, condition: Callable[[], bool]) -> None:
        await asyncio.sleep(0)  # always yield: callers may loop on this, and so may the broker
        async with asyncio.timeout(WAIT):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def until_records(self, count: int) -> None:
        await self.until(lambda: len(self.records) >= count)


@dataclass
class Backend:
    broker: Broker
    listener: RecordingListener


@dataclass
class Cluster:
    """Makes started backends that share one cluster's logs and presence."""

    make_broker: Callable[[str], Broker]
    drop_log: Callable[[str], Awaitable[None]]
    """Deletes a room's log behind the backends' backs, as an operator or a lost disk would."""
    backends: list[Backend] = field(default_factory=list)

    async def backend(self) -> Backend:
        backend = Backend(self.make_broker(f"pod-{len(self.backends)}"), RecordingListener())
        self.backends.append(backend)
        await backend.broker.start(backend.listener)
        await backend.listener.until(lambda: backend.broker.connected)
        return backend


def memory_cluster() -> Cluster:
    first = MemoryBroker()
    made = iter([first])
    return Cluster(lambda pod: next(made, None) or first.sibling(), first.drop_log)


async def delete_stream(url: str, stream: str) -> None:
    """Delete a RabbitMQ queue as an operator would, on a connection of its own."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        await channel.queue_delete(stream)
    finally:
        await connection.close()


def rabbitmq_cluster(node: RabbitMQNode) -> Cluster:
    topology = Topology(f"t{uuid.uuid4().hex[:12]}")
    return Cluster(
        lambda pod: RabbitMQBroker(
            (node.url,), cluster=topology.cluster, pod=pod, settings=FAST_RECONNECT
        ),
        lambda room: delete_stream(node.url, topology.room_stream(room)),
    )


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    if request.param == "memory":
        made = memory_cluster()
    else:
        made = rabbitmq_cluster(request.getfixturevalue("rabbitmq"))
    yield made
    for backend in made.backends:
        await backend.broker.close()


async def test_every_follower_sees_the_same_records_at_the_same_offsets(cluster: Cluster) -> None:
    a, b = await cluster.backend(), await cluster.backend()
    await a.broker.follow("general")
    await b.broker.follow("general")
    sent = [b"a%d" % i for i in range(40)] + [b"b%d" % i for i in range(40)]

    await asyncio.gather(
        *(a.broker.append("general", body) for body in sent[:40]),
        *(b.broker.append("general", body) for body in sent[40:]),
    )
    for backend in (a, b):
        await backend.listener.until_records(len(sent))

    assert a.listener.records == b.listener.records
    assert sorted(a.listener.bodies("general")) == sorted(sent)
    offsets = a.listener.offsets("general")
    assert offsets == sorted(set(offsets))


async def test_follow_returns_with_the_history_complete(cluster: Cluster) -> None:
    writer, reader = await cluster.backend(), await cluster.backend()
    sent = [b"m%d" % i for i in range(10)]
    for body in sent:
        await writer.broker.append("general", body)

    await reader.broker.follow("general")

    assert reader.listener.bodies("general") == sent


async def test_a_concurrent_follow_of_the_same_room_also_waits_for_the_history(
    cluster: Cluster,
) -> None:
    writer, reader = await cluster.backend(), await cluster.backend()
    sent = [b"m%d" % i for i in range(10)]
    for body in sent:
        await writer.broker.append("general", body)

    async def follow() -> list[bytes]:
        await reader.broker.follow("general")
        return reader.listener.bodies("general")

    seen_on_return = await asyncio.gather(follow(), follow())

    assert list(seen_on_return) == [sent, sent]


async def test_follow_after_an_offset_replays_exactly_the_later_records(cluster: Cluster) -> None:
    writer, first, second = (
        await cluster.backend(),
        await cluster.backend(),
        await cluster.backend(),
    )
    for i in range(6):
        await writer.broker.append("general", b"m%d" % i)
    await first.broker.follow("general")
    seen = first.listener.records

    await second.broker.follow("general", after=seen[2].offset)

    assert second.listener.records == seen[3:]


async def test_follow_of_a_followed_room_delivers_nothing_twice(cluster: Cluster) -> None:
    backend = await cluster.backend()
    await backend.broker.append("general", b"once")
    await backend.broker.follow("general")

    await backend.broker.follow("general")
    await backend.broker.follow("other")  # a full round trip through the broker

    assert backend.listener.bodies("general") == [b"once"]


async def test_rooms_are_separate_logs(cluster: Cluster) -> None:
    backend = await cluster.backend()
    await backend.broker.append("general", b"for general")
    await backend.broker.append("random", b"for random")

    await backend.broker.follow("random")

    assert [(r.room, r.body) for r in backend.listener.records] == [("random", b"for random")]


async def test_unfollow_stops_delivery(cluster: Cluster) -> None:
    leaving, staying = await cluster.backend(), await cluster.backend()
    for backend in (leaving, staying):
        await backend.broker.follow("general")
    await staying.broker.append("general", b"before")
    await leaving.listener.until(lambda: leaving.listener.bodies("general") == [b"before"])

    await leaving.broker.unfollow("general")
    await leaving.broker.unfollow("general")  # idempotent
    await staying.broker.append("general", b"after")
    await staying.listener.until_records(2)
    await leaving.broker.follow("other")  # a full round trip through the broker

    assert leaving.listener.bodies("general") == [b"before"]


async def test_presence_reaches_every_backend_including_the_sender(cluster: Cluster) -> None:
    a, b = await cluster.backend(), await cluster.backend()
    beats = [
        PresenceBeat(pod="pod-0", sessions=3, rooms={"general": 2, "random": 1}, ts=1.5),
        PresenceBeat(pod="pod-1", sessions=0, ts=2.0, gone=True),
    ]

    await a.broker.publish_presence(beats[0])
    await b.broker.publish_presence(beats[1])

    for listener in (a.listener, b.listener):
        await listener.until(lambda: len(listener.beats) >= 2)  # noqa: B023 (awaited right here)
        assert sorted(listener.beats, key=lambda beat: beat.pod) == beats


async def test_a_broker_that_is_not_started_refuses_writes(cluster: Cluster) -> None:
    idle = cluster.make_broker("idle")

    with pytest.raises(BrokerUnavailable):
        await idle.append("general", b"nowhere")
    with pytest.raises(BrokerUnavailable):
        await idle.follow("general")


async def test_every_follower_reads_the_same_epoch_and_records_carry_it(cluster: Cluster) -> None:
    a, b = await cluster.backend(), await cluster.backend()
    epochs = await asyncio.gather(a.broker.follow("general"), b.broker.follow("general"))
    assert epochs[0] == epochs[1]
    assert await a.broker.follow("general") == epochs[0]  # followed already: the same answer
    await a.broker.append("general", b"hello")
    for backend in (a, b):
        await backend.listener.until_records(1)
        assert [(r.epoch, r.body) for r in backend.listener.records] == [(epochs[0], b"hello")]


async def test_a_replaced_log_is_reported_and_delivered_from_its_start_under_a_newer_epoch(
    cluster: Cluster,
) -> None:
    a, b = await cluster.backend(), await cluster.backend()
    old = await a.broker.follow("general")
    await b.broker.follow("general")
    for n in range(3):
        await a.broker.append("general", b"old%d" % n)
    for backend in (a, b):
        await backend.listener.until_records(3)

    await cluster.drop_log("general")
    for backend in (a, b):
        await backend.listener.until(lambda backend=backend: bool(backend.listener.resets))
        await backend.listener.until(lambda backend=backend: backend.broker.connected)
    ((room, new),) = a.listener.resets
    assert b.listener.resets == [("general", new)]
    assert room == "general"
    assert new > old

    await asyncio.wait_for(a.broker.append("general", b"new"), WAIT)
    for backend in (a, b):
        await backend.listener.until_records(4)
        fresh = backend.listener.records[3]
        assert (fresh.epoch, fresh.body) == (new, b"new")
        assert fresh.offset <= backend.listener.records[2].offset  # numbered from 0 again
    late = await cluster.backend()
    assert await late.broker.follow("general") == new
    await late.listener.until_records(1)
    assert late.listener.bodies("general") == [b"new"]


async def test_a_room_exists_once_any_backend_used_it_and_asking_creates_nothing(
    cluster: Cluster,
) -> None:
    a, b = await cluster.backend(), await cluster.backend()
    assert not await a.broker.exists("unheard-of")
    assert not await b.broker.exists("unheard-of")  # asking twice finds nothing made by asking
    await a.broker.append("made", b"x")
    assert await b.broker.exists("made")
    await b.broker.follow("made")  # still usable after a refused passive declare on b
    assert await b.broker.exists("made")
    assert not await b.broker.exists("unheard-of")


async def test_read_before_pages_back_to_the_oldest_record_past_what_lies_between(
    cluster: Cluster,
) -> None:
    writer, other, reader = (
        await cluster.backend(),
        await cluster.backend(),
        await cluster.backend(),
    )
    await writer.broker.follow("general")
    for n in range(5):
        await writer.broker.append("general", b"m%d" % n)
    await other.broker.follow("general")  # on RabbitMQ: a sync marker between the records
    for n in range(5, 10):
        await writer.broker.append("general", b"m%d" % n)
    epoch = await reader.broker.follow("general")
    newest = reader.listener.records[-1]

    pages: list[list[bytes]] = []
    before, start = newest.offset, False
    while not start:
        page = await reader.broker.read_before("general", epoch=epoch, before=before, limit=4)
        assert len(page.records) <= 4
        assert page.start or len(page.records) == 4
        pages.insert(0, [r.body for r in page.records])
        if page.records:
            before = page.records[0].offset
        start = page.start

    assert [body for page in pages for body in page] == reader.listener.bodies("general")[:-1]
    assert pages[-1] == [b"m5", b"m6", b"m7", b"m8"]
    assert all(r.epoch == epoch for r in reader.listener.records)


async def test_read_before_more_than_is_left_answers_the_rest_and_the_start(
    cluster: Cluster,
) -> None:
    backend = await cluster.backend()
    epoch = await backend.broker.follow("general")
    for n in range(3):
        await backend.broker.append("general", b"m%d" % n)
    await backend.listener.until_records(3)
    third = backend.listener.records[2]

    page = await backend.broker.read_before("general", epoch=epoch, before=third.offset, limit=100)

    assert ([r.body for r in page.records], page.start) == ([b"m0", b"m1"], True)
    assert page.records == backend.listener.records[:2]


async def test_typing_reaches_every_backend_including_the_sender(cluster: Cluster) -> None:
    a, b = await cluster.backend(), await cluster.backend()
    signal = TypingSignal(room="general", name="Ada", sub=None, session="s1")

    await a.broker.publish_typing(signal)

    for listener in (a.listener, b.listener):
        await listener.until(lambda: len(listener.typing) >= 1)  # noqa: B023 (awaited right here)
        assert listener.typing == [signal]
        assert listener.beats == []  # not mistaken for a presence beat
