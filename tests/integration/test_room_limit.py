"""The cluster-wide room cap, enforced by RabbitMQ itself (a virtual host's `max-queues`, which the
operator keeps from `chat.maxRooms`): past it a new room is refused with `room_limit`, on every
backend, while every room that exists keeps working."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.integration.test_backend_cluster import start_backends
from tests.support.chatclient import ChatClient

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
