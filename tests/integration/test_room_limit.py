"""The cluster-wide room cap, enforced by RabbitMQ itself (a virtual host's `max-queues`, which the
operator keeps from `chat.maxRooms`, lowered to what the broker's file descriptors hold): past
it a new room is refused with `room_limit`, on every backend, while every room that exists
keeps working."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from chatoperator.broker_admin import visit_broker
from chatoperator.builders.broker_capacity import NodeLimits, rooms_within
from chatoperator.builders.broker_policy import build_room_policy
from chatoperator.builders.meta import chat_cluster_name
from chatoperator.status.observed import BrokerVisit
from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode, running_node
from tests.integration.test_backend_cluster import start_backends
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually
from tests.unit.clusters import cluster_from_spec

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

BACKENDS = 2
ROOMS = 6
"""Rooms that may exist: the limit counts every queue of the virtual host, so it is set to this
plus one presence queue per backend (as the operator sets it, with room for more backends)."""


@pytest.fixture
def limited_vhost(rabbitmq: RabbitMQNode) -> Iterator[str]:
    """The URL of a virtual host of this test's own that holds at most ROOMS rooms."""
    vhost = f"limit-{uuid.uuid4().hex[:8]}"
    rabbitmq.ctl("add_vhost", vhost)
    try:
        rabbitmq.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        rabbitmq.ctl("set_vhost_limits", "-p", vhost, f'{{"max-queues": {ROOMS + BACKENDS}}}')
        yield f"{rabbitmq.url}{vhost}"
    finally:
        rabbitmq.ctl("delete_vhost", vhost)


async def test_rooms_past_the_cap_are_refused_and_rooms_that_exist_keep_working(
    spawn_chat: SpawnChat, limited_vhost: str, chat_cluster_name: str
) -> None:
    first, second = await start_backends(spawn_chat, limited_vhost, chat_cluster_name, BACKENDS)
    ada = await ChatClient.connect(first.url, name="Ada", client="ada")
    grace = await ChatClient.connect(second.url, name="Grace", client="grace")
    try:
        await ada.join("general")
        await ada.say("general", "before the cap")
        for n in range(ROOMS - 1):
            await ada.join(f"room-{n}")

        # Past the cap, on either backend: refused with the room named, the connection kept.
        for client in (ada, grace):
            await client.send({"type": "join", "room": "one-too-many"})
            refused = await client.expect("error", code="room_limit", room="one-too-many")
            assert "rooms" in refused["message"]

        # Every room that exists still joins with its history, on both backends, and talks.
        joined = await grace.join("general")
        assert [m["text"] for m in joined["history"]] == ["before the cap"]
        await grace.join("room-0")
        await grace.say("general", "after the cap")
        await ada.expect("message", text="after the cap")
        assert [b.readyz() for b in (first, second)] == [200, 200]
    finally:
        await asyncio.gather(ada.close(), grace.close())


@pytest.fixture
def small_broker() -> Iterator[RabbitMQNode]:
    """A node of this test's own with 256 file descriptors (the management API on)."""
    with running_node(management=True, nofile=FEW_DESCRIPTORS) as node:
        yield node


FEW_DESCRIPTORS = 256
"""At 1024 descriptors a broker with no cap stopped at 493 streams, and then failed every stream
read of every room (issue 17); this node would fail far sooner."""


async def test_a_broker_with_few_descriptors_gets_a_cap_it_can_hold_and_keeps_working(
    spawn_chat: SpawnChat, small_broker: RabbitMQNode
) -> None:
    cluster = cluster_from_spec({}, namespace=f"t{uuid.uuid4().hex[:8]}")
    policy = build_room_policy(cluster)
    assert policy is not None
    policy = replace(policy, management_url=small_broker.management_url)

    def visited() -> BrokerVisit | None:
        found = visit_broker(policy, username="guest", password="guest", timeout=10)
        return found if found.allowed_rooms is not None and found.headroom else None

    # As the operator does once the broker reports its limits.
    visit = await eventually(visited, within=30, interval=1, what="the node's descriptor limit")
    allowed = visit.allowed_rooms
    assert visit.headroom is not None
    limits = NodeLimits(FEW_DESCRIPTORS, visit.headroom.memory_limit_bytes)
    assert allowed == rooms_within(limits, policy.backends)
    backends = await start_backends(
        spawn_chat, small_broker.url, chat_cluster_name(cluster), policy.backends
    )
    ada = await ChatClient.connect(backends[0].url, name="Ada", client="ada")
    grace = await ChatClient.connect(backends[1].url, name="Grace", client="grace")
    try:
        await ada.join("general")
        await ada.say("general", "before the cap")
        made = 1
        for n in range(allowed + 2 * policy.backends + 1):  # bounded: the limit is below this
            await ada.send({"type": "join", "room": f"room-{n}"})
            answer = await ada.expect_any("joined", "error")
            if answer["type"] == "error":
                assert (answer["code"], answer["room"]) == ("room_limit", f"room-{n}")
                break
            made += 1
        else:
            raise AssertionError(f"{made} rooms made, and no room_limit")
        # Never fewer than allowed; more only by the backend slots left unused.
        assert allowed <= made <= allowed + 2 * policy.backends
        # The refusing backend says so, and stays ready: existing rooms work.
        refusing = backends[0]
        assert refusing.stats()["room_limit_reached"] is True
        assert "new rooms refused" in refusing.get("/readyz")
        assert "chat_room_limit_reached 1.0" in refusing.get("/metrics")
        assert backends[1].stats()["room_limit_reached"] is False

        joined = await grace.join("general")
        assert [m["text"] for m in joined["history"]] == ["before the cap"]
        await grace.join("room-0")
        await grace.say("general", "after the cap")
        await ada.expect("message", text="after the cap")
        assert [b.readyz() for b in backends] == [200, 200]
        assert all("INTERNAL_ERROR" not in b.log_text() for b in backends)
    finally:
        await asyncio.gather(ada.close(), grace.close())
