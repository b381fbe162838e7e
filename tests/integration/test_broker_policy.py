"""The operator's room policy on a real RabbitMQ: put through the management API, it sets the
retention of rooms that already exist, where a stream's own arguments could not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from chatoperator.broker_admin import visit_broker
from chatoperator.builders.broker_policy import BrokerPolicy, build_room_policy, queue_limit
from chatoperator.builders.meta import chat_cluster_name
from chatoperator.status.observed import BrokerVisit
from chatserver.broker.amqp_wire import Topology
from chatserver.broker.rabbitmq import RabbitMQBroker
from chatserver.contract import MAX_ROOM_MAX_BYTES
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.integration.test_broker_contract import FAST_RECONNECT
from tests.integration.test_rabbitmq_broker import brokers, start  # noqa: F401 - a fixture
from tests.support.polling import eventually
from tests.unit.clusters import cluster_from_spec

pytestmark = pytest.mark.rabbitmq

SEGMENT = 4_000
"""Small segments, so retention (which drops whole segments) shows after a few records."""
RECORD = b"x" * 500
AS_THE_OPERATOR_DECLARES = replace(
    FAST_RECONNECT, retention_bytes=MAX_ROOM_MAX_BYTES, segment_bytes=SEGMENT
)


def room_policy(node: RabbitMQNode, namespace: str, max_bytes: str) -> BrokerPolicy:
    cluster = cluster_from_spec(
        {"rabbitmq": {"retention": {"maxBytes": max_bytes}}}, namespace=namespace
    )
    policy = build_room_policy(cluster)
    assert policy is not None
    return replace(policy, management_url=node.management_url)


def new_cluster(node: RabbitMQNode) -> tuple[BrokerPolicy, str]:
    """The policy of a ChatCluster of its own (default spec), and its backends' CHAT_CLUSTER."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    policy = room_policy(node, namespace, "2Mi")
    return policy, chat_cluster_name(cluster_from_spec({}, namespace=namespace))


@contextlib.contextmanager
def socket_nobody_listens_on() -> Iterator[int]:
    """A local port held (so no one else takes it) with no listener: connecting is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


async def visit(policy: BrokerPolicy, *, password: str = "guest") -> BrokerVisit:
    return await asyncio.to_thread(
        visit_broker, policy, username="guest", password=password, timeout=10
    )


async def apply(policy: BrokerPolicy, *, password: str = "guest") -> str:
    outcome = await visit(policy, password=password)
    return f"{outcome.reason} {outcome.message}".strip()


async def first_offset(
    made: list[RabbitMQBroker], node: RabbitMQNode, chat_cluster: str
) -> tuple[int, int]:
    """(offset of the first record a new reader gets, records it gets) of room general."""
    reader, listener = await start(made, node, chat_cluster, settings=AS_THE_OPERATOR_DECLARES)
    await reader.follow("general")
    offsets = listener.offsets("general")
    return offsets[0], len(offsets)


SMALL_RETENTION_KEEPS_AT_MOST = 16 * 1024 + SEGMENT
"""Bytes a room under a 16Ki retention can hold: retention drops whole segments."""


async def write_until(
    made: list[RabbitMQBroker],
    node: RabbitMQNode,
    chat_cluster: str,
    writer: RabbitMQBroker,
    shows: Callable[[int, int], bool],
    *,
    rounds: int = 12,
) -> tuple[int, int]:
    """Append 20 records at a time until `shows(first offset, records kept)` holds."""
    for _ in range(rounds):
        for _ in range(20):
            await writer.append("general", RECORD)
        first, kept = await first_offset(made, node, chat_cluster)
        if shows(first, kept):
            return first, kept
    raise AssertionError(f"after {rounds * 20} records: first offset {first}, {kept} kept")


async def test_the_policy_sets_the_retention_of_a_room_that_exists(
    rabbitmq_management: RabbitMQNode,
    brokers: list[RabbitMQBroker],  # noqa: F811
) -> None:
    node, namespace = rabbitmq_management, f"t{uuid.uuid4().hex[:10]}"
    chat_cluster = chat_cluster_name(cluster_from_spec({}, namespace=namespace))
    writer, _ = await start(brokers, node, chat_cluster, settings=AS_THE_OPERATOR_DECLARES)
    for _ in range(120):  # about 60 KB, before any policy: the stream keeps it all
        await writer.append("general", RECORD)
    assert (await first_offset(brokers, node, chat_cluster))[0] == 0

    # The management API answers before the stream coordinator has given each member its new
    # retention, so each phase writes in rounds until the new retention shows (bounded).
    assert await apply(room_policy(node, namespace, "16Ki")) == "Applied"
    _, kept = await write_until(brokers, node, chat_cluster, writer, lambda first, _: first > 0)
    assert kept * len(RECORD) <= SMALL_RETENTION_KEEPS_AT_MOST

    # Raised again, it keeps more than the small retention ever could.
    assert await apply(room_policy(node, namespace, "1Mi")) == "Applied"
    await write_until(
        brokers,
        node,
        chat_cluster,
        writer,
        lambda _, kept: kept * len(RECORD) > SMALL_RETENTION_KEEPS_AT_MOST,
    )


async def test_a_visit_keeps_what_the_operator_asks_and_counts_nodes_and_rooms(
    rabbitmq_management: RabbitMQNode,
    brokers: list[RabbitMQBroker],  # noqa: F811
) -> None:
    node = rabbitmq_management
    policy, chat_cluster = new_cluster(node)
    first = await visit(policy)
    assert first.reason == "Applied"
    assert first.running_nodes == (node.nodename,)
    assert first.rooms == 0
    (listed,) = json.loads(node.ctl("list_policies", "--formatter=json"))
    assert json.loads(listed["definition"]) == policy.body["definition"]
    limits = json.loads(node.ctl("list_vhost_limits", "--global", "--formatter=json"))
    by_vhost = {row["vhost"]: json.loads(row["limits"]) for row in limits}
    assert by_vhost["/"] == {"max-queues": queue_limit(policy, None)[1]}

    writer, _ = await start(brokers, node, chat_cluster, settings=AS_THE_OPERATOR_DECLARES)
    for room in ("general", "random"):
        await writer.append(room, RECORD)
    assert (await visit(policy)).rooms == 2


async def test_refused_and_unreachable_are_told_apart(rabbitmq_management: RabbitMQNode) -> None:
    policy = room_policy(rabbitmq_management, f"t{uuid.uuid4().hex[:10]}", "2Mi")

    refused = await apply(policy, password="wrong")
    assert refused.startswith("Refused the broker's management API answered 401")
    assert "wrong" not in refused

    with socket_nobody_listens_on() as port:
        unreachable = await apply(replace(policy, management_url=f"http://127.0.0.1:{port}"))
    assert unreachable.startswith(f"Unreachable no answer from http://127.0.0.1:{port}")


async def test_a_visit_reports_the_busiest_node_and_a_resource_alarm(
    rabbitmq_management: RabbitMQNode,
) -> None:
    node = rabbitmq_management
    policy = room_policy(node, f"t{uuid.uuid4().hex[:10]}", "2Mi")

    def visit_until(wanted: Callable[[BrokerVisit], bool]) -> Callable[[], BrokerVisit | None]:
        def check() -> BrokerVisit | None:
            found = visit_broker(policy, username="guest", password="guest", timeout=10)
            return found if wanted(found) else None

        return check

    # A node reports its figures a few seconds after it starts.
    calm = await eventually(
        visit_until(lambda v: v.headroom is not None), within=30, interval=1, what="figures"
    )
    assert calm.alarms == ()
    headroom = calm.headroom
    assert headroom is not None
    assert headroom.node == node.nodename
    assert 0 < headroom.file_descriptors_used < headroom.file_descriptors_limit
    assert headroom.memory_used_bytes > 0
    assert headroom.memory_limit_bytes > 0

    await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.0001")
    try:
        blocked = await eventually(
            visit_until(lambda v: bool(v.alarms)), within=30, interval=1, what="a memory alarm"
        )
        assert blocked.alarms == (f"memory on {node.nodename}",)
        # The cap follows the memory the node may use: none is left for a room.
        assert blocked.allowed_rooms == 0
    finally:
        await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.4")
        # The virtual host's limit is the node's, for every test after this one.
        await eventually(
            visit_until(lambda v: v.allowed_rooms == policy.max_rooms),
            within=30,
            interval=1,
            what="the room cap back",
        )


async def test_a_visit_reclaims_only_idle_rooms_that_are_still_unused_and_never_preset_ones(
    rabbitmq_management: RabbitMQNode,
    brokers: list[RabbitMQBroker],  # noqa: F811
) -> None:
    node = rabbitmq_management
    policy, chat_cluster = new_cluster(node)
    writer, _ = await start(brokers, node, chat_cluster, settings=AS_THE_OPERATOR_DECLARES)
    for room in ("general", "busy", "idle"):
        await writer.append(room, RECORD)
    reader, _ = await start(brokers, node, chat_cluster, settings=AS_THE_OPERATOR_DECLARES)
    await reader.follow("busy")
    topology = Topology(chat_cluster)
    streams = {room: topology.room_stream(room) for room in ("general", "busy", "idle")}

    def busy_counted() -> BrokerVisit | None:
        # The management API counts consumers from statistics it refreshes every 5 s.
        found = visit_broker(policy, username="guest", password="guest", timeout=10)
        return found if streams["busy"] not in found.unused_rooms else None

    seen = await eventually(busy_counted, within=30, interval=1, what="busy's consumer counted")
    # general is a room of chat.rooms (the default): never a candidate.
    assert seen.unused_rooms == (streams["idle"],)
    assert seen.rooms == 3

    reclaimed = await asyncio.to_thread(
        visit_broker, policy, username="guest", password="guest", timeout=10,
        reclaim=tuple(streams.values()),
    )  # fmt: skip
    assert reclaimed.reclaimed == (streams["idle"],)
    assert reclaimed.rooms == 2
    left = json.loads(node.ctl("list_queues", "name", "--formatter=json"))
    assert {q["name"] for q in left} >= {streams["general"], streams["busy"]}
    assert streams["idle"] not in {q["name"] for q in left}
