"""Token mode (DESIGN section 7) on real processes: a backend with `CHAT_AUTH=jwt` and the
in-memory broker, and a frontend in front of it for the refusal the browser must see."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.fixtures.chatprocs import ChatProcess, SpawnChat, free_port
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually

SECRET = "integration-secret-0123456789abcdef"
Connect = Callable[..., Coroutine[Any, Any, ChatClient]]


def token(sub: str = "u-1", *, lifetime: float = 300, **claims: Any) -> str:
    body = {"sub": sub, "aud": "chatcluster", "exp": time.time() + lifetime, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


async def jwt_backend(spawn_chat: SpawnChat, **env: str) -> ChatProcess:
    process = spawn_chat("backend", env={"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET": SECRET, **env})
    await asyncio.to_thread(process.wait_ready)
    return process


async def handshake_status(url: str, **params: str) -> int:
    """The HTTP status of a refused /ws handshake (fails if the upgrade is accepted)."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{url}/ws", params=params)
    return refused.value.status


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Open /ws with a token and wait for `welcome`; every client is closed at the end."""
    clients: list[ChatClient] = []

    async def open_with(url: str, jwt_token: str, **params: str) -> ChatClient:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(f"{url}/ws", params={"token": jwt_token, **params})
        client = ChatClient(session, ws)
        clients.append(client)
        client.welcome = await client.expect("welcome")
        return client

    yield open_with
    await asyncio.gather(*(client.close() for client in clients))


async def test_a_missing_or_bad_token_gets_401_before_the_upgrade(
    spawn_chat: SpawnChat,
) -> None:
    server = await jwt_backend(spawn_chat)
    assert await handshake_status(server.url) == 401
    assert await handshake_status(server.url, token="not.a.jwt") == 401
    assert await handshake_status(server.url, token=token(lifetime=-60)) == 401
    forged = jwt.encode({"sub": "u-1", "aud": "chatcluster"}, "x" * 32, algorithm="HS256")
    assert await handshake_status(server.url, token=forged) == 401


async def test_the_origin_check_still_applies_in_token_mode(spawn_chat: SpawnChat) -> None:
    server = await jwt_backend(spawn_chat)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                f"{server.url}/ws",
                params={"token": token()},
                headers={"Origin": "https://evil.example.net"},
            )
    assert refused.value.status == 403


async def test_identity_and_room_claims_come_from_the_token(
    spawn_chat: SpawnChat, connect: Connect
) -> None:
    server = await jwt_backend(spawn_chat)
    ada = await connect(
        server.url,
        token(name="Ada", rooms=["general", "team-*"], post=["team-*"]),
        name="Mallory",
        client="tab-1",
    )
    assert ada.welcome["user"] == "Ada"  # the name its messages carry, not ?name=
    assert ada.welcome["sub"] == "u-1"  # what tells her messages from another Ada's

    await ada.send({"type": "join", "room": "secret"})
    refused_join = await ada.expect("error")
    assert (refused_join["code"], refused_join["room"]) == ("forbidden", "secret")
    await ada.join("general")  # the connection stays usable
    refused = await ada.say("general", "read-only here")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    await ada.join("team-red")
    assert (await ada.say("team-red", "hello"))["type"] == "ack"
    message = await ada.expect("message", text="hello")
    assert message["user"] == "Ada"


async def test_a_refresh_must_be_for_the_same_user(spawn_chat: SpawnChat, connect: Connect) -> None:
    server = await jwt_backend(spawn_chat)
    ada = await connect(server.url, token(name="Ada", rooms=["general"]))
    await ada.join("general")
    await ada.send({"type": "refresh", "token": token("u-2", name="Eve", rooms=["*"])})
    assert (await ada.expect("error"))["code"] == "forbidden"
    await ada.send({"type": "join", "room": "other"})  # the old claims still hold
    assert (await ada.expect("error"))["code"] == "forbidden"
    await ada.say("general", "still me")
    assert (await ada.expect("message", text="still me"))["user"] == "Ada"


@pytest.mark.slow
async def test_an_expired_token_ends_the_session_with_4001_unless_refreshed(
    spawn_chat: SpawnChat, connect: Connect
) -> None:
    server = await jwt_backend(spawn_chat, CHAT_AUTH_LEEWAY_SECONDS="0")
    lapsing = await connect(server.url, token("u-1", lifetime=2))
    refreshed = await connect(server.url, token("u-2", lifetime=2, rooms=["general"]))
    await refreshed.join("general")
    await refreshed.send({"type": "refresh", "token": token("u-2", lifetime=300, rooms=["x"])})
    assert (await refreshed.expect("left"))["room"] == "general"  # the new claims apply

    assert (await lapsing.expect("error", within=6))["code"] == "token_expired"
    assert await lapsing.wait_closed() == 4001
    await refreshed.join("x")  # past the first token's expiry, still open
    assert not refreshed.closed.done()


async def test_an_unknown_auth_mode_refuses_to_start(spawn_chat: SpawnChat) -> None:
    process = spawn_chat("backend", env={"CHAT_AUTH": "bogus"})
    assert await asyncio.to_thread(process.wait) == 2
    assert "CHAT_AUTH='bogus': must be 'none' or 'jwt'" in process.log_text()


async def test_the_401_reaches_the_client_through_the_frontend(
    spawn_chat: SpawnChat, connect: Connect
) -> None:
    server = await jwt_backend(spawn_chat)
    front = spawn_chat("frontend", backend_urls=[server.url])
    await asyncio.to_thread(front.wait_ready)
    assert await handshake_status(front.url) == 401
    assert await handshake_status(front.url, token="not.a.jwt") == 401
    ada = await connect(front.url, token())
    assert ada.welcome["user"] == "u-1"  # no `name` claim: the sub


async def raw_request(port: int, target: str) -> bytes:
    """Send one GET for `target` and return the status line of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        async with asyncio.timeout(10):
            return await reader.readline()
    finally:
        writer.close()


async def test_no_log_line_carries_a_token(
    spawn_chat: SpawnChat, connect: Connect, tmp_path: Path
) -> None:
    server = await jwt_backend(spawn_chat)
    # A stand-in for a backend answering the upgrade with neither 101 nor 401/403 (a draining
    # backend's 503; this one answers 404): the frontend logs it and tries the next backend.
    odd_port = free_port()
    odd = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(odd_port)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        front = spawn_chat("frontend", backend_urls=[f"http://127.0.0.1:{odd_port}", server.url])
        await asyncio.to_thread(front.wait_ready)
        await eventually(lambda: "ok" in _status_or_empty(f"http://127.0.0.1:{odd_port}/"))
        secret = token(name="Ada")
        ada = await connect(front.url, secret)
        assert ada.welcome["user"] == "Ada"
        assert await handshake_status(front.url, token=secret + "x") == 401
        too_long = f"/ws?token={secret}&pad={'p' * 9000}"
        for process in (server, front):
            assert b" 400 " in await raw_request(process.port, too_long)
        await eventually(lambda: "backend refused /ws" in front.log_text(), what="odd logged")
    finally:
        odd.terminate()
        await asyncio.wait_for(odd.wait(), 10)
    # The claims identify the user and the signature makes the token: neither, nor a start.
    _, claims, signature = secret.split(".")
    for process in (server, front):
        lines = process.log_text().splitlines()
        leaks = [line for line in lines if claims[:16] in line or signature[:16] in line]
        assert not leaks, process.command


def _status_or_empty(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return "ok" if response.status == 200 else ""
    except OSError:
        return ""


async def test_stats_list_no_room_names_in_token_mode(
    spawn_chat: SpawnChat, connect: Connect
) -> None:
    server = await jwt_backend(spawn_chat)
    ada = await connect(server.url, token())
    await ada.join("secret-plans")
    stats = await eventually(lambda: (s := server.stats())["users_online"] == 1 and s)
    assert stats["rooms"] == {}
    assert "secret-plans" not in server.get("/api/stats")
    assert stats["connections"] == 1


async def test_a_resend_is_recognised_by_who_sent_it_not_only_by_client_and_ref(
    spawn_chat: SpawnChat, connect: Connect
) -> None:
    server = await jwt_backend(spawn_chat)
    # Client ids are the clients' own choice: two people may use the same one, and refs too.
    alice = await connect(server.url, token("alice", name="Alice"), client="tab-1")
    bob = await connect(server.url, token("bob", name="Bob"), client="tab-1")
    await alice.join("lobby")
    await bob.join("lobby")
    from_alice = await alice.say("lobby", "alice's words", ref="r-1")
    from_bob = await bob.say("lobby", "bob's words", ref="r-1")
    assert from_bob["type"] == "ack"
    assert from_bob["id"] != from_alice["id"]
    assert await alice.say("lobby", "alice's words", ref="r-1") == from_alice  # a real resend
    history = (await bob.join("lobby"))["history"]
    assert [(m["user"], m["text"]) for m in history] == [
        ("Alice", "alice's words"),
        ("Bob", "bob's words"),
    ]


async def test_a_rotated_key_file_is_used_without_a_restart(
    spawn_chat: SpawnChat, connect: Connect, tmp_path: Path
) -> None:
    """The operator mounts the token key from a Secret; rotating the Secret replaces the file
    (a new file renamed over the old, as a Secret volume does) under the running backend."""
    key_file = tmp_path / "secret"
    key_file.write_text(SECRET)
    process = spawn_chat(
        "backend", env={"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET_FILE": str(key_file)}
    )
    await asyncio.to_thread(process.wait_ready)
    await connect(process.url, token())
    rotated = "rotated-secret-0123456789abcdefghij"
    fresh = tmp_path / "secret.new"
    fresh.write_text(rotated)
    fresh.replace(key_file)
    body = {"sub": "u-2", "aud": "chatcluster", "exp": time.time() + 300}
    client = await connect(process.url, jwt.encode(body, rotated, algorithm="HS256"))
    assert client.welcome["user"] == "u-2"
    assert await handshake_status(process.url, token=token()) == 401
