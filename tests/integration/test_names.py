"""Display names on a real backend (memory broker): what a name may hold, and how two people
with one name are told apart in token mode."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt
import pytest

from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.support.chatclient import ChatClient


async def backend(spawn_chat: SpawnChat) -> ChatProcess:
    process = spawn_chat("backend")
    await asyncio.to_thread(process.wait_ready)
    return process


@pytest.mark.parametrize(
    ("asked", "shown"),
    [
        ("\u202eAda\u202c", "Ada"),  # bidi override
        ("A\u200bd\u200da\ufeff", "Ada"),  # zero-width space, joiner, BOM
        ("Ada\u2028Lovelace\u2029", "AdaLovelace"),  # line and paragraph separators
        ("Ada\x85\x9b", "Ada"),  # C1 controls
        ("Jose\u0301", "Jos\u00e9"),  # NFC
    ],
)
async def test_a_name_loses_what_cannot_be_seen(
    spawn_chat: SpawnChat, asked: str, shown: str
) -> None:
    server = await backend(spawn_chat)
    client = await ChatClient.connect(server.url, name=asked)
    try:
        assert client.welcome["user"] == shown
    finally:
        await client.close()


@pytest.mark.parametrize("asked", ["\u200b\u200c\u200d", "\u202e\u2066 \u2069", "\x85"])
async def test_a_name_of_nothing_visible_is_refused(spawn_chat: SpawnChat, asked: str) -> None:
    server = await backend(spawn_chat)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ChatClient.connect(server.url, name=asked)
    assert refused.value.status == 400


async def test_in_token_mode_messages_carry_the_senders_sub(spawn_chat: SpawnChat) -> None:
    secret = "names-secret-0123456789abcdef0123"
    server = spawn_chat("backend", env={"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET": secret})
    await asyncio.to_thread(server.wait_ready)

    def token(sub: str) -> str:
        claims = {"sub": sub, "name": "Ada", "aud": "chatcluster", "exp": time.time() + 300}
        return jwt.encode(claims, secret, algorithm="HS256")

    first = await ChatClient.connect(server.url, params={"token": token("ada-1")})
    second = await ChatClient.connect(server.url, params={"token": token("ada-2")})
    try:
        for client in (first, second):
            await client.join("lobby")
        await first.say("lobby", "one")
        await second.say("lobby", "two")
        history = (await first.join("lobby"))["history"]
        assert [(m["user"], m["sub"]) for m in history] == [("Ada", "ada-1"), ("Ada", "ada-2")]
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_in_open_mode_messages_carry_no_sub(spawn_chat: SpawnChat) -> None:
    server = await backend(spawn_chat)
    client = await ChatClient.connect(server.url, name="Ada")
    try:
        await client.join("lobby")
        await client.say("lobby", "hello")
        [message] = await client.wait_messages(1)
        assert "sub" not in message
    finally:
        await client.close()
