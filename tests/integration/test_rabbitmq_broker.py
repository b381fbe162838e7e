"""What only the RabbitMQ broker must survive: node restarts, broker-side cancels, new instances."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import aiormq
import pytest

from chatserver.broker import BrokerUnavailable
from chatserver.broker.amqp_wire import Topology
from chatserver.broker.rabbitmq import RabbitMQBroker, RabbitMQSettings
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.integration.test_broker_contract import FAST_RECONNECT, RecordingListener

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def brokers() -> AsyncIterator[list[RabbitMQBroker]]:
    """Brokers a test made; closed at the end whatever happened."""
    made: list[RabbitMQBroker] = []
    yield made
    for broker in made:
        await broker.close()


async def start(
    made: list[RabbitMQBroker],
    node: RabbitMQNode,
    cluster: str,
    *,
    settings: RabbitMQSettings = FAST_RECONNECT,
) -> tuple[RabbitMQBroker, RecordingListener]:
    broker = RabbitMQBroker((node.url,), cluster=cluster, pod=f"pod-{len(made)}", settings=settings)
    made.append(broker)
    listener = RecordingListener()
    await broker.start(listener)
    await listener.until(lambda: broker.connected)
    return broker, listener


def new_cluster() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.mark.slow
async def test_a_node_restart_loses_no_confirmed_record_and_repeats_none(
    rabbitmq_restartable: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    node, cluster = rabbitmq_restartable, new_cluster()
    reader, seen = await start(brokers, node, cluster)
    writer, writer_events = await start(brokers, node, cluster)
    await reader.follow("general")
    attempted: list[bytes] = []
    confirmed: list[bytes] = []
    done_writing = asyncio.Event()

    async def write() -> None:
        for i in range(2000):
            if done_writing.is_set():
                return
            body = b"m%d" % i
            attempted.append(body)
            try:
                await writer.append("general", body)
                confirmed.append(body)
            except BrokerUnavailable:
                await writer_events.until(lambda: writer.connected)

    writing = asyncio.create_task(write())
    await seen.until(lambda: len(seen.records) >= 20)
    await asyncio.to_thread(node.stop)
    await seen.until(lambda: seen.changes == [True, False])
    await asyncio.to_thread(node.start)
    await seen.until(lambda: seen.changes == [True, False, True])
    delivered_before = len(seen.records)
    await seen.until(lambda: len(seen.records) >= delivered_before + 20)
    done_writing.set()
    await writing
    await seen.until(lambda: set(confirmed) <= set(seen.bodies("general")))

    bodies = seen.bodies("general")
    assert len(bodies) == len(set(bodies)), "a record was delivered twice"
    assert set(bodies) <= set(attempted)
    offsets = seen.offsets("general")
    assert offsets == sorted(set(offsets))
    # A writer follows no room, so it may come up before the node has recovered its streams,
    # and flap until it has: what matters is that it went down and ended up.
    assert writer_events.changes[:2] == [True, False]
    assert writer_events.changes[-1] is True
    # The log itself survived the restart: a newcomer reads the same records at the same offsets.
    _, newcomer = await start(brokers, node, cluster)
    await brokers[-1].follow("general")
    assert newcomer.records[: len(seen.records)] == seen.records


async def test_history_survives_a_new_broker_instance(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    cluster = new_cluster()
    first, _ = await start(brokers, rabbitmq, cluster)
    for i in range(5):
        await first.append("general", b"m%d" % i)
    await first.close()

    second, listener = await start(brokers, rabbitmq, cluster)
    await second.follow("general")

    assert listener.bodies("general") == [b"m%d" % i for i in range(5)]


async def test_a_stream_whose_epoch_claim_retention_dropped_still_reads_the_same_epoch(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    small = replace(FAST_RECONNECT, retention_bytes=16_000, segment_bytes=4_000)
    cluster = new_cluster()
    writer, _ = await start(brokers, rabbitmq, cluster, settings=small)
    epoch = await writer.follow("general")
    for i in range(120):  # about 60 KB: several segments, the oldest (with the claim) dropped
        await writer.append("general", b"%03d" % i + b"x" * 500)

    reader, listener = await start(brokers, rabbitmq, cluster, settings=small)
    assert await reader.follow("general") == epoch
    offsets = listener.offsets("general")
    assert offsets[0] > 0  # the stream no longer starts at its first entry
    assert {r.epoch for r in listener.records} == {epoch}
    assert listener.bodies("general")[-1].startswith(b"119")


async def test_reading_back_stops_at_the_oldest_record_retention_kept(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    small = replace(FAST_RECONNECT, retention_bytes=16_000, segment_bytes=4_000)
    cluster = new_cluster()
    writer, seen = await start(brokers, rabbitmq, cluster, settings=small)
    epoch = await writer.follow("general")
    for i in range(120):  # about 60 KB: several segments, the oldest dropped
        await writer.append("general", b"%03d" % i + b"x" * 500)
    await seen.until_records(120)
    late, retained = await start(brokers, rabbitmq, cluster, settings=small)
    await late.follow("general")
    dropped, newest = seen.records[0], seen.records[-1]
    assert retained.records[0].offset > dropped.offset

    pages: list[bytes] = []
    page = await writer.read_before("general", epoch=epoch, before=newest.offset, limit=25)
    while page.records:
        pages[:0] = [r.body for r in page.records]
        if page.start:
            break
        before = page.records[0].offset
        page = await writer.read_before("general", epoch=epoch, before=before, limit=25)

    assert pages == retained.bodies("general")[:-1]
    gone = await writer.read_before("general", epoch=epoch, before=dropped.offset + 1, limit=25)
    assert (gone.records, gone.start) == ([], True)


async def test_a_consumer_cancelled_by_the_broker_is_a_failure_and_recovers(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    cluster = new_cluster()
    broker, listener = await start(brokers, rabbitmq, cluster)
    await broker.follow("general")
    await broker.append("general", b"before")
    bindings = await asyncio.to_thread(
        rabbitmq.ctl, "list_bindings", "--quiet", "--no-table-headers", "source_name",
        "destination_name",
    )  # fmt: skip
    presence_queue = next(
        line.split("\t")[1]
        for line in bindings.splitlines()
        if line.startswith(f"chat.{cluster}.presence\t")
    )

    # Deleting its queue makes RabbitMQ cancel the consumer (basic.cancel) on a live channel.
    await asyncio.to_thread(rabbitmq.ctl, "delete_queue", presence_queue)

    await reconnects_and_carries_on(broker, listener)


async def reconnects_and_carries_on(broker: RabbitMQBroker, listener: RecordingListener) -> None:
    """After a failure, the broker is down once and back, and room general (which holds one
    record, "before") reads on in order."""
    await listener.until(lambda: listener.changes == [True, False, True])
    await broker.append("general", b"after")
    await listener.until(lambda: len(listener.records) >= 2)
    assert listener.bodies("general") == [b"before", b"after"]


async def test_a_channel_closed_by_the_broker_is_a_failure_and_recovers(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    cluster = new_cluster()
    broker, listener = await start(brokers, rabbitmq, cluster)
    await broker.follow("general")
    await broker.append("general", b"before")
    admin = await aiormq.connect(rabbitmq.url)
    try:
        channel = await admin.channel()
        await channel.exchange_delete(Topology(cluster).rooms_exchange)
    finally:
        await admin.close()

    # Publishing to an exchange that is gone: NOT_FOUND closes the publisher's channel.
    with pytest.raises(BrokerUnavailable):
        await broker.append("general", b"refused")

    await reconnects_and_carries_on(broker, listener)


async def test_a_room_made_with_another_retention_is_used_as_it_is(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    # The stream of a room made before the retention changed keeps its arguments; declaring it
    # again with new ones would close the channel (PRECONDITION_FAILED) and take the link down.
    cluster = new_cluster()
    owner, _ = await start(brokers, rabbitmq, cluster)
    await owner.append("general", b"made with the old retention")
    other_retention = replace(FAST_RECONNECT, retention_bytes=FAST_RECONNECT.retention_bytes * 2)
    broker, listener = await start(brokers, rabbitmq, cluster, settings=other_retention)

    await broker.follow("general")
    await broker.append("general", b"written with the new one")
    await listener.until(lambda: len(listener.records) >= 2)

    assert listener.bodies("general") == [
        b"made with the old retention",
        b"written with the new one",
    ]
    assert listener.changes == [True]


async def test_backends_using_a_new_room_at_once_all_succeed_and_stay_connected(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    # RabbitMQ 3.10 declares-ok a stream another connection is still starting, and consuming
    # or publishing it then closes the whole connection: without the stream probe, the first
    # of these rooms already took a backend down (541 INTERNAL_ERROR, stream_not_found).
    cluster = new_cluster()
    followers = [await start(brokers, rabbitmq, cluster) for _ in range(3)]
    writer, writer_events = await start(brokers, rabbitmq, cluster)

    async with asyncio.timeout(60):
        for i in range(40):
            room = f"new-{i}"
            await asyncio.gather(
                writer.append(room, b"first"), *(broker.follow(room) for broker, _ in followers)
            )

    listeners = [listener for _, listener in followers] + [writer_events]
    assert [listener.changes for listener in listeners] == [[True]] * 4
    await asyncio.gather(*(listener.until_records(40) for _, listener in followers))
    for _, listener in followers:
        assert sorted((r.room, r.body) for r in listener.records) == sorted(
            (f"new-{i}", b"first") for i in range(40)
        )


async def test_one_backend_making_many_new_rooms_at_once_makes_them_all(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    # Every new room is asked about on the stream probe's connection first, and a missing one
    # answers 404, which closes the channel it was asked on. When the questions shared one
    # channel, that 404 failed every other question waiting on it, and joins of other new
    # rooms answered `unavailable` (seen at 48 joins in flight: "no queue ... idle-91" for
    # idle-106).
    broker, listener = await start(brokers, rabbitmq, new_cluster())
    rooms = [f"burst-{i}" for i in range(48)]

    async with asyncio.timeout(60):
        await asyncio.gather(*(broker.follow(room) for room in rooms))
        await asyncio.gather(*(broker.append(room, room.encode()) for room in rooms))
        await listener.until_records(len(rooms))

    assert sorted((r.room, r.body) for r in listener.records) == [
        (room, room.encode()) for room in sorted(rooms)
    ]
    assert listener.changes == [True]


async def test_held_back_acks_never_leave_a_room_without_credit(
    rabbitmq: RabbitMQNode, brokers: list[RabbitMQBroker]
) -> None:
    """Acks go out once `ack_every` deliveries of all rooms are unacked: rooms sent many times
    their prefetch, in a burst and one by one, reach the follower whole. Without an ack the
    consumer would stop at 8 deliveries."""
    cluster = new_cluster()
    tight = replace(FAST_RECONNECT, prefetch=8, ack_every=8)
    writer, _ = await start(brokers, rabbitmq, cluster)
    reader, listener = await start(brokers, rabbitmq, cluster, settings=tight)
    await reader.follow("burst")
    await reader.follow("trickle")

    await asyncio.gather(*(writer.append("burst", b"b%d" % i) for i in range(60)))
    for i in range(20):
        await writer.append("trickle", b"t%d" % i)
        await listener.until(lambda sent=i + 1: len(listener.bodies("trickle")) == sent)
    await listener.until(lambda: len(listener.bodies("burst")) == 60)

    assert sorted(listener.bodies("burst")) == sorted(b"b%d" % i for i in range(60))
    assert listener.bodies("trickle") == [b"t%d" % i for i in range(20)]
