"""Reading a room back (`older`, issue 13) through real backends on a real RabbitMQ node."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.support.chatclient import ChatClient, Frame

pytestmark = pytest.mark.rabbitmq

SMALL_PAGES = {
    "CHAT_HISTORY_SIZE": "5",
    "CHAT_HISTORY_PAGE_MAX": "4",
    "CHAT_RATE_PER_SECOND": "1000",
    "CHAT_RATE_BURST": "1000",
}


async def older(client: ChatClient, room: str, before: str, **fields: object) -> Frame:
    await client.send({"type": "older", "room": room, "before": before, **fields})
    return await client.expect_any("older", "error")


async def test_paging_back_on_another_backend_reaches_the_first_message_in_bounded_pages(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backends = [
        spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=SMALL_PAGES)
        for _ in range(2)
    ]
    await asyncio.gather(*(asyncio.to_thread(b.wait_ready) for b in backends))
    writer = await ChatClient.connect(backends[0].url, name="writer")
    reader = await ChatClient.connect(backends[1].url, name="reader")
    try:
        await writer.join("lobby")
        acks = [await writer.say("lobby", f"m{n}") for n in range(12)]
        ids = [ack["id"] for ack in acks]
        shown = (await reader.join("lobby"))["history"]
        assert [m["id"] for m in shown] == ids[-5:]

        pages: list[list[Frame]] = []
        page = await older(reader, "lobby", shown[0]["id"], limit=10**9)
        while True:
            assert page["type"] == "older", page
            assert len(page["messages"]) <= 4  # the configured bound, whatever `limit` said
            pages.insert(0, page["messages"])
            if page["start"]:
                break
            page = await older(reader, "lobby", page["messages"][0]["id"], limit=10**9)

        read_back = [m for p in pages for m in p]
        assert [(m["id"], m["text"]) for m in read_back] == [(ids[n], f"m{n}") for n in range(7)]
        assert len(pages) >= 2
        assert all(m["type"] == "message" and m["room"] == "lobby" for m in read_back)
        past_the_start = await older(reader, "lobby", ids[0])
        assert (past_the_start["messages"], past_the_start["start"]) == ([], True)
    finally:
        await asyncio.gather(writer.close(), reader.close())


async def test_bad_reads_back_get_the_contract_errors_and_harm_no_one(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backend = spawn_chat(
        "backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=SMALL_PAGES
    )
    await asyncio.to_thread(backend.wait_ready)
    client = await ChatClient.connect(backend.url, name="prober")
    bystander = await ChatClient.connect(backend.url, name="bystander")
    try:
        await client.join("lobby")
        await bystander.join("lobby")
        last = (await client.say("lobby", "hello"))["id"]
        refusals = [
            ({"room": "elsewhere", "before": last}, "not_joined"),
            ({"room": "Not Valid", "before": last}, "invalid_room"),
            ({"room": "lobby", "before": "yesterday"}, "bad_request"),
            ({"room": "lobby", "before": last, "limit": 0}, "bad_request"),
            ({"room": "lobby", "before": last, "limit": "all"}, "bad_request"),
        ]
        for fields, code in refusals:
            await client.send({"type": "older", **fields})
            error = await client.expect("error")
            assert (error["code"], error.get("room"), error.get("ref")) == (code, None, None)
        other_log = await older(client, "lobby", "1-0")  # an id of another epoch
        assert (other_log["messages"], other_log["start"]) == ([], True)

        await client.send({"type": "ping"})
        await client.expect("pong")
        assert (await bystander.say("lobby", "still fine"))["type"] == "ack"
        await client.wait_messages(2)
        assert [f for f in bystander.frames if f["type"] == "error"] == []
    finally:
        await asyncio.gather(client.close(), bystander.close())


async def test_a_window_holds_its_configured_bytes_and_the_rest_is_read_back(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    # Large messages would make a backend hold historySize of them per followed room (2.3 MiB
    # per full room, measured by the hardening review): the window is bounded in bytes too.
    window_bytes = 64 * 1024
    env = {**SMALL_PAGES, "CHAT_HISTORY_SIZE": "100", "CHAT_HISTORY_PAGE_MAX": "100"}
    backend = spawn_chat(
        "backend",
        rabbitmq_url=rabbitmq.url,
        cluster=chat_cluster_name,
        env={**env, "CHAT_HISTORY_MAX_BYTES": str(window_bytes)},
    )
    await asyncio.to_thread(backend.wait_ready)
    writer = await ChatClient.connect(backend.url, name="writer")
    reader = await ChatClient.connect(backend.url, name="reader")
    try:
        await writer.join("big")
        text = "\u00e9" * 2000  # 4000 bytes, the default maxMessageBytes is 4096
        ids = [(await writer.say("big", f"{n} {text}"))["id"] for n in range(40)]

        shown = (await reader.join("big"))["history"]
        # Each message is kept twice (its frame and its WebSocket frame): about 8 KB.
        assert 1 <= len(shown) < window_bytes // 8000 + 1
        assert [m["id"] for m in shown] == ids[-len(shown) :]
        page = await older(reader, "big", shown[0]["id"], limit=100)
        assert [m["id"] for m in page["messages"]] == ids[: -len(shown)]
        assert page["start"]
    finally:
        await asyncio.gather(writer.close(), reader.close())
