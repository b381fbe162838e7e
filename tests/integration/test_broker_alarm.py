"""A RabbitMQ resource alarm on a real node: the backend says it is blocked (/readyz, /api/stats,
/metrics), refuses what would publish at once, and recovers when the alarm clears."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.integration.test_backend_cluster import NO_RATE_LIMIT
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

PROMPT = 5.0
"""Seconds within which a refusal must come: half the 10 s publish timeout the backend would
otherwise wait, while the refusal itself takes milliseconds."""


async def test_a_memory_alarm_makes_the_backend_unready_and_refuse_writes_until_it_clears(
    spawn_chat: SpawnChat, rabbitmq_restartable: RabbitMQNode, chat_cluster_name: str
) -> None:
    node = rabbitmq_restartable
    chat = spawn_chat(
        "backend", rabbitmq_url=node.url, cluster=chat_cluster_name, env=NO_RATE_LIMIT
    )
    await asyncio.to_thread(chat.wait_ready)
    client = await ChatClient.connect(chat.url)
    try:
        await client.join("general")
        assert (await client.say("general", "before"))["type"] == "ack"
        await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.0001")
        # RabbitMQ blocks a connection when it next publishes: a presence beat, within 2 s.
        await asyncio.to_thread(chat.wait_readyz, 503)
        assert "broker blocked" in await asyncio.to_thread(readyz_text, chat.url)
        assert chat.stats()["broker_blocked"] is True
        assert "chat_broker_blocked 1.0" in chat.get("/metrics")
        await client.send({"type": "send", "room": "general", "text": "during", "ref": "during-1"})
        refused = await client.expect_answer("during-1", within=PROMPT)
        assert (refused["type"], refused["code"]) == ("error", "unavailable")
        await client.send({"type": "join", "room": "new-room"})
        error = await client.expect("error", room="new-room", within=PROMPT)
        assert error["code"] == "unavailable"

        await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.4")
        await asyncio.to_thread(chat.wait_readyz, 200)
        assert chat.stats()["broker_blocked"] is False
        await eventually(
            lambda: "chat_broker_blocked 0.0" in chat.get("/metrics"), what="gauge back to 0"
        )
        assert (await client.say("general", "after", ref="during-1"))["type"] == "ack"
        await client.join("new-room")
    finally:
        await client.close()


def readyz_text(url: str) -> str:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())
