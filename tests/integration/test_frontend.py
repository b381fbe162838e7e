"""The frontend process: UI files, the /ws relay with failover, and `chatserver dev`."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import aiohttp
import pytest

from tests.fixtures.chatprocs import ChatProcess, SpawnChat, free_port
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually
from tests.support.rawws import join_unread, open_raw_websocket, read_close, text_frame


async def ready(*processes: ChatProcess) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in processes))


def fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.mark.rabbitmq
@pytest.mark.slow
async def test_relay_uses_the_first_backend_that_accepts_and_fails_over(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    first = spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, pod="a")
    second = spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, pod="b")
    front_ab = spawn_chat("frontend", backend_urls=[first.url, second.url])
    front_ba = spawn_chat("frontend", backend_urls=[second.url, first.url])
    await ready(first, second, front_ab, front_ba)
    one = await ChatClient.connect(front_ab.url, name="one", client="one")
    two = await ChatClient.connect(front_ba.url, name="two", client="two")
    try:
        assert (one.welcome["pod"], two.welcome["pod"]) == ("a", "b")
        await one.join("lobby")
        await two.join("lobby")
        assert (await one.say("lobby", "hello from a"))["type"] == "ack"
        await two.expect("message", text="hello from a")

        first.kill()
        assert await one.wait_closed() == 1012  # backend lost: the relay says "reconnect"
        missed = await two.say("lobby", "while one was away")
        again = await ChatClient.connect(front_ab.url, name="one", client="one")
        assert again.welcome["pod"] == "b"
        joined = await again.join("lobby", since=one.messages[-1]["id"])
        assert [m["id"] for m in joined["history"]] == [missed["id"]]
        await again.close()
    finally:
        await asyncio.gather(one.close(), two.close())


@pytest.mark.rabbitmq
async def test_backend_close_codes_pass_through_the_relay(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backend = spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name)
    front = spawn_chat("frontend", backend_urls=[backend.url])
    await ready(backend, front)
    abuser = await ChatClient.connect(front.url)
    for _ in range(50):
        await abuser.ws.send_str("not json")
    assert await abuser.wait_closed() == 1008
    await abuser.close()


async def test_frontend_serves_the_ui_and_refuses_foreign_origins(spawn_chat: SpawnChat) -> None:
    front = spawn_chat("frontend", backend_urls=[f"http://127.0.0.1:{free_port()}"])
    await ready(front)
    status, content_type, body = await asyncio.to_thread(fetch, f"{front.url}/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert "<html" in body.lower()
    status, _, _ = await asyncio.to_thread(fetch, f"{front.url}/static/app.css")
    assert status == 200
    assert (await asyncio.to_thread(fetch, f"{front.url}/healthz"))[0] == 200
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ChatClient.connect(front.url, headers={"Origin": "https://evil.example.net"})
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as no_backend:
        await ChatClient.connect(front.url)
    assert no_backend.value.status == 502


async def test_dev_serves_ui_and_chat_on_one_port(spawn_chat: SpawnChat) -> None:
    dev = spawn_chat("dev")
    await ready(dev)
    status, content_type, _ = await asyncio.to_thread(fetch, f"{dev.url}/")
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    alice = await ChatClient.connect(dev.url, name="alice")
    bob = await ChatClient.connect(dev.url, name="bob")
    try:
        await alice.join("general")
        await bob.join("general")
        ack = await alice.say("general", "hi bob")
        assert ack["type"] == "ack"
        message = await bob.expect("message", text="hi bob")
        assert (message["id"], message["user"]) == (ack["id"], "alice")
        assert dev.stats()["rooms"] == {"general": 2}
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_sigterm_closes_relayed_sessions_with_1012(spawn_chat: SpawnChat) -> None:
    backend = spawn_chat("dev")  # any /ws server will do; dev needs no RabbitMQ
    front = spawn_chat("frontend", backend_urls=[backend.url])
    await ready(backend, front)
    client = await ChatClient.connect(front.url)
    front.terminate()
    assert await client.wait_closed() == 1012
    assert await asyncio.to_thread(front.wait, 10) == 0
    await client.close()


async def test_a_resend_through_the_frontend_is_stored_once_whatever_the_name(
    spawn_chat: SpawnChat,
) -> None:
    backend = spawn_chat("backend")
    front = spawn_chat("frontend", backend_urls=[backend.url])
    await ready(backend, front)
    name = "C# & F# fans?=1"  # '#', '&', '?' and '=' must reach the backend as typed
    first = await ChatClient.connect(front.url, name=name, client="tab-1")
    await first.join("lobby")
    ack = await first.say("lobby", "only once", ref="r-1")
    await first.close()  # as if the connection dropped before the ack arrived
    again = await ChatClient.connect(front.url, name=name, client="tab-1")
    try:
        assert again.welcome["user"] == name
        joined = await again.join("lobby")
        assert await again.say("lobby", "only once", ref="r-1") == ack
        joined = await again.join("lobby")
        assert [m["text"] for m in joined["history"]] == ["only once"]
    finally:
        await again.close()


async def test_a_slow_browser_is_cut_with_4008_through_the_frontend(
    spawn_chat: SpawnChat,
) -> None:
    big = {
        "CHAT_MAX_MESSAGE_BYTES": "60000",
        "CHAT_MAX_FRAME_BYTES": "131072",
        "CHAT_RATE_PER_SECOND": "1000",
        "CHAT_RATE_BURST": "1000",
    }
    backend = spawn_chat("backend", env={**big, "CHAT_OUTBOX_BYTES": "65536"})
    front = spawn_chat("frontend", backend_urls=[backend.url], env={"CHAT_OUTBOX_BYTES": "65536"})
    await ready(backend, front)
    fast = await ChatClient.connect(backend.url, name="fast")
    await fast.join("lobby")
    reader, writer = await join_unread(front.port, "lobby")
    await eventually(lambda: backend.stats()["rooms"].get("lobby") == 2, what="sloth joined")
    try:
        # The sloth never reads, until it has been cut: then it reads what reached it, and
        # the close frame behind it.
        sent = 0
        while sent < 200 and backend.stats()["connections"] == 2:
            assert (await fast.say("lobby", f"{sent} " + "x" * 50_000))["type"] == "ack"
            sent += 1
        assert backend.stats()["connections"] == 1, f"not cut after {sent} messages of 50 kB"
        async with asyncio.timeout(10):
            assert await read_close(reader) == (4008, "slow consumer")
    finally:
        writer.close()
        await fast.close()


async def test_the_backends_close_reason_passes_through_the_relay(spawn_chat: SpawnChat) -> None:
    backend = spawn_chat("backend")
    front = spawn_chat("frontend", backend_urls=[backend.url])
    await ready(backend, front)
    reader, writer = await open_raw_websocket(front.port)
    try:
        writer.write(b"".join(text_frame(b"not json") for _ in range(50)))
        async with asyncio.timeout(10):
            assert await read_close(reader) == (1008, "too many bad frames")
    finally:
        writer.close()


def get_with_host(url: str, host: str) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


@pytest.mark.parametrize("command", ["frontend", "dev"])
async def test_the_ui_is_served_with_security_headers(spawn_chat: SpawnChat, command: str) -> None:
    process = spawn_chat(command)
    await ready(process)
    for path in ("/", "/static/js/main.js", "/static/app.css"):
        status, headers = await asyncio.to_thread(
            get_with_host, f"{process.url}{path}", "localhost"
        )
        assert status == 200, path
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


async def test_dev_answers_only_to_its_own_host_names(spawn_chat: SpawnChat) -> None:
    dev = spawn_chat("dev")
    await ready(dev)
    for host in ("localhost", f"localhost:{dev.port}", f"127.0.0.1:{dev.port}", "[::1]:8080"):
        assert (await asyncio.to_thread(get_with_host, f"{dev.url}/", host))[0] == 200, host
    for path in ("/", "/api/stats", "/ws"):
        url = f"{dev.url}{path}"
        status, _ = await asyncio.to_thread(get_with_host, url, f"rebound.example:{dev.port}")
        assert status == 421, path
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ChatClient.connect(dev.url, headers={"Host": "rebound.example"})
    assert refused.value.status == 421
