"""One real backend process: bad input, Origin, slow consumers and the SIGTERM drain."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually
from tests.support.rawws import join_unread, open_raw_websocket, text_frame

pytestmark = [pytest.mark.rabbitmq]


async def backend(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, cluster: str, **env: str
) -> ChatProcess:
    process = spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=cluster, env=env)
    await asyncio.to_thread(process.wait_ready)
    return process


async def test_bad_input_gets_an_error_and_harms_no_one(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    server = await backend(
        spawn_chat, rabbitmq, chat_cluster_name, CHAT_RATE_PER_SECOND="5", CHAT_RATE_BURST="10"
    )
    good = await ChatClient.connect(server.url, name="good")
    peer = await ChatClient.connect(server.url, name="peer")
    bad = await ChatClient.connect(server.url, name="bad")
    for client in (good, peer, bad):
        await client.join("lobby")

    async def conversation_goes_on(n: int) -> None:
        speaker, listener = (peer, good) if n % 2 else (good, peer)
        ack = await speaker.say("lobby", f"still here {n}")
        assert ack["type"] == "ack", ack
        await listener.expect("message", text=f"still here {n}")

    battery = [
        ("{not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('"a string"', "bad_request"),
        ('{"type": "dance"}', "bad_request"),
        ('{"room": "lobby"}', "bad_request"),
        ('{"type": "join", "room": 5}', "bad_request"),
        ('{"type": "join", "room": "Not A Room"}', "invalid_room"),
        ('{"type": "send", "room": "lobby", "text": ["x"], "ref": "r1"}', "bad_request"),
        (
            orjson.dumps(
                {"type": "send", "room": "lobby", "text": "x" * 5000, "ref": "big"}
            ).decode(),
            "too_large",
        ),
        ('{"type": "send", "room": "elsewhere", "text": "hi", "ref": "r2"}', "not_joined"),
    ]
    try:
        for n, (raw, code) in enumerate(battery, start=1):
            await bad.ws.send_str(raw)
            error = await bad.expect("error")
            assert error["code"] == code, (raw, error)
            await conversation_goes_on(n)
        await bad.ws.send_bytes(b"\x00\x01binary")
        assert (await bad.expect("error"))["code"] == "bad_request"

        answers = [await bad.say("lobby", f"flood {k}") for k in range(30)]
        assert "rate_limited" in [a.get("code") for a in answers]
        assert all(a["type"] == "ack" or a["code"] == "rate_limited" for a in answers), answers

        await bad.ws.send_str("x" * (64 * 1024 + 1))
        assert await bad.wait_closed() == 1009
        await conversation_goes_on(len(battery) + 1)

        abuser = await ChatClient.connect(server.url, name="abuser")
        for _ in range(50):
            await abuser.ws.send_str("nope")
        assert await abuser.wait_closed() == 1008
        await conversation_goes_on(len(battery) + 2)
        assert server.stats()["connections"] == 2
    finally:
        await asyncio.gather(good.close(), peer.close(), bad.close())


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("same", True),
        ("https://chat.example.com", True),
        ("https://evil.example.net", False),
        ("null", False),
    ],
)
async def test_origin_check(
    spawn_chat: SpawnChat,
    rabbitmq: RabbitMQNode,
    chat_cluster_name: str,
    origin: str | None,
    allowed: bool,
) -> None:
    server = await backend(
        spawn_chat, rabbitmq, chat_cluster_name, CHAT_ALLOWED_ORIGINS="https://chat.example.com"
    )
    if origin == "same":
        origin = server.url
    headers = {} if origin is None else {"Origin": origin}
    if allowed:
        client = await ChatClient.connect(server.url, headers=headers)
        assert client.welcome["pod"] == server.pod
        await client.close()
    else:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await ChatClient.connect(server.url, headers=headers)
        assert refused.value.status == 403


async def test_a_slow_consumer_is_cut_and_others_keep_up(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    server = await backend(
        spawn_chat,
        rabbitmq,
        chat_cluster_name,
        CHAT_OUTBOX_BYTES="65536",
        CHAT_MAX_MESSAGE_BYTES="60000",
        CHAT_MAX_FRAME_BYTES="131072",
        CHAT_RATE_PER_SECOND="1000",
        CHAT_RATE_BURST="1000",
    )
    fast = await ChatClient.connect(server.url, name="fast")
    await fast.join("lobby")
    _, writer = await join_unread(server.port, "lobby")
    await eventually(lambda: server.stats()["rooms"].get("lobby") == 2, what="sloth joined")
    try:
        # The sloth never reads: the kernel buffers fill, then its outbox, then it is cut.
        def sloth_cut() -> bool:
            return "chat_slow_consumers_dropped_total 1.0" in server.get("/metrics")

        sent = 0
        while sent < 200 and not sloth_cut():
            ack = await fast.say("lobby", f"{sent} " + "x" * 50_000)
            assert ack["type"] == "ack", ack
            sent += 1
        assert sloth_cut(), f"not cut after {sent} messages of 50 kB"
        await fast.wait_messages(sent)
        await eventually(lambda: server.stats()["connections"] == 1, what="sloth's session ended")
    finally:
        writer.close()
        await fast.close()


@pytest.mark.slow
async def test_sigterm_drains_then_exits(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    server = await backend(
        spawn_chat,
        rabbitmq,
        chat_cluster_name,
        CHAT_DRAIN_SECONDS="6",
        CHAT_MAX_MESSAGE_BYTES="60000",
        CHAT_MAX_FRAME_BYTES="131072",
        CHAT_OUTBOX_BYTES=str(64 * 1024 * 1024),
        CHAT_RATE_BURST="1000",
    )
    clients = [await ChatClient.connect(server.url, name=f"u{i}") for i in range(3)]
    await clients[0].join("lobby")
    # A member that never reads, with more queued than the kernel's socket buffers hold (up to
    # 4 MiB on Linux): its outbox cannot be flushed, so the drain runs to its budget.
    _, stuck = await open_raw_websocket(server.port, receive_buffer=4096)
    stuck.write(text_frame(b'{"type": "join", "room": "lobby"}'))
    await eventually(lambda: server.stats()["rooms"].get("lobby") == 2, what="stuck joined")
    for k in range(120):
        assert (await clients[0].say("lobby", f"{k} " + "x" * 50_000))["type"] == "ack"
    await clients[0].wait_messages(120)
    try:
        signalled = time.monotonic()
        server.terminate()
        for client in clients:
            reconnect = await client.expect("reconnect", within=1.0)
            assert reconnect["reason"]
        assert time.monotonic() - signalled < 1.0
        assert server.readyz() == 503
        for client in clients:
            assert await client.wait_closed() == 1012
        assert await asyncio.to_thread(server.wait, 10) == 0
        took = time.monotonic() - signalled
        assert took < 6 + 1, took
        print(f"\nSIGTERM to exit with a client that never closes: {took:.2f}s")
    finally:
        stuck.close()
        await asyncio.gather(*(c.close() for c in clients))
