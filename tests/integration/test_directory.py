"""The room directory and direct messages (issue 13) through two real backends sharing a real
RabbitMQ node: what one backend knows of the other's rooms, and who may enter a pair's room."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest

from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.support.chatclient import ChatClient, Frame

pytestmark = pytest.mark.rabbitmq

SECRET = "integration-secret-0123456789abcdef"
FAST = {"CHAT_RATE_PER_SECOND": "1000", "CHAT_RATE_BURST": "1000"}


def token(sub: str, **claims: Any) -> str:
    body = {"sub": sub, "aud": "chatcluster", "exp": time.time() + 300, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


async def two_backends(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, cluster: str, **env: str
) -> list[ChatProcess]:
    backends = [
        spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=cluster, env={**FAST, **env})
        for _ in range(2)
    ]
    await asyncio.gather(*(asyncio.to_thread(b.wait_ready) for b in backends))
    return backends


async def directory(client: ChatClient, **fields: object) -> Frame:
    await client.send({"type": "rooms", **fields})
    return await client.expect_any("rooms", "error")


async def listed_until(
    client: ChatClient, wanted: dict[str, int], *, query: str = "", within: float = 15.0
) -> Frame:
    """Ask until the page lists these rooms with these counts (presence beats and the
    directory's cache make it a few seconds at most)."""
    deadline = time.monotonic() + within
    while True:
        page = await directory(client, query=query)
        counts = {r["room"]: r["members"] for r in page["rooms"]}
        if all(counts.get(room) == n for room, n in wanted.items()):
            return page
        if time.monotonic() > deadline:
            raise AssertionError(f"{wanted} not listed: {page}")
        await asyncio.sleep(0.5)


async def test_a_room_made_on_one_backend_is_listed_by_the_other_also_once_empty(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    first, second = await two_backends(spawn_chat, rabbitmq, chat_cluster_name)
    maker = await ChatClient.connect(first.url, name="maker")
    friend = await ChatClient.connect(first.url, name="friend")
    asker = await ChatClient.connect(second.url, name="asker")
    try:
        await maker.join("book-club")
        await friend.join("book-club")
        await maker.join("other-room")
        page = await listed_until(asker, {"book-club": 2}, query="BOOK")
        assert page["rooms"] == [{"room": "book-club", "members": 2}]
        assert (page["query"], page["total"], page["offset"]) == ("book", 1, 0)

        await maker.send({"type": "leave", "room": "book-club"})
        await friend.send({"type": "leave", "room": "book-club"})
        await listed_until(asker, {"book-club": 0, "other-room": 1, "general": 0})
        assert (await asker.join("book-club"))["members"] >= 0  # it still exists: joinable
    finally:
        await asyncio.gather(maker.close(), friend.close(), asker.close())


async def test_a_backend_started_after_a_room_emptied_lists_it_as_a_rolling_update_would(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    old = spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=FAST)
    await asyncio.to_thread(old.wait_ready)
    maker = await ChatClient.connect(old.url, name="maker")
    try:
        await maker.join("quiet-room")
        await maker.send({"type": "leave", "room": "quiet-room"})
        await maker.expect("left")
    finally:
        await maker.close()
    new = spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=FAST)
    await asyncio.to_thread(new.wait_ready)
    asker = await ChatClient.connect(new.url, name="asker")
    try:
        await listed_until(asker, {"quiet-room": 0})
    finally:
        await asker.close()


async def test_bad_directory_requests_get_errors_and_the_connection_stays(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backend, _ = await two_backends(spawn_chat, rabbitmq, chat_cluster_name)
    client = await ChatClient.connect(backend.url, name="prober")
    try:
        for bad in ({"query": 5}, {"query": "x" * 65}, {"offset": -1}, {"offset": "2"}):
            answer = await directory(client, **bad)
            assert (answer["type"], answer["code"]) == ("error", "bad_request"), bad
        assert (await directory(client))["type"] == "rooms"
    finally:
        await client.close()


async def connect(url: str, sub: str, name: str, **claims: Any) -> ChatClient:
    return await ChatClient.connect(url, params={"token": token(sub, name=name, **claims)})


async def test_the_two_people_of_a_dm_talk_across_backends_and_nobody_else_enters(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    jwt_env = {"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET": SECRET}
    first, second = await two_backends(spawn_chat, rabbitmq, chat_cluster_name, **jwt_env)
    ada = await connect(first.url, "user:ada@example.com", "Ada")
    bob = await connect(second.url, "user:bob@example.com", "Bob")
    eve = await connect(second.url, "user:eve", "Eve")
    try:
        await ada.send({"type": "dm", "with": "user:bob@example.com"})
        ada_joined = await ada.expect("joined")
        room = ada_joined["room"]
        assert room.startswith("dm-")
        assert ada_joined["with"] == "user:bob@example.com"
        call = await bob.expect("dm")  # across backends: Bob learns of the room
        assert call == {"type": "dm", "room": room, "with": "user:ada@example.com", "user": "Ada"}
        await bob.send({"type": "dm", "with": call["with"]})
        bob_joined = await bob.expect("joined", room=room)
        assert bob_joined["with"] == "user:ada@example.com"

        assert (await ada.say(room, "hi Bob"))["type"] == "ack"
        heard = await bob.expect("message", room=room, text="hi Bob")
        assert (heard["user"], heard["sub"]) == ("Ada", "user:ada@example.com")
        assert (await bob.say(room, "hi Ada"))["type"] == "ack"
        await ada.expect("message", room=room, text="hi Ada")

        await eve.send({"type": "join", "room": room})
        refused = await eve.expect("error")
        assert (refused["code"], refused["room"]) == ("forbidden", room)
        await eve.send({"type": "dm", "with": "user:bob@example.com"})
        elsewhere = await eve.expect("joined")
        assert elsewhere["room"] != room  # Eve's room with Bob, not Ada's
        assert (await eve.say(room, "let me in"))["code"] == "not_joined"
        assert (await eve.say(elsewhere["room"], "hello Bob"))["type"] == "ack"  # still works

        await eve.join("general")
        for client in (ada, eve):
            page = await listed_until(client, {"general": 1})
            assert not any(r["room"].startswith("dm-") for r in page["rooms"]), page
    finally:
        await asyncio.gather(ada.close(), bob.close(), eve.close())


async def test_open_mode_refuses_direct_messages(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backend, _ = await two_backends(spawn_chat, rabbitmq, chat_cluster_name)
    client = await ChatClient.connect(backend.url, name="anon")
    try:
        await client.send({"type": "dm", "with": "someone"})
        refused = await client.expect("error")
        assert refused["code"] == "forbidden"
        assert "token mode" in refused["message"]
        await client.join("general")  # the connection stays
    finally:
        await client.close()
