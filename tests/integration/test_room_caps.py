"""Who may hold and create how many rooms (DESIGN sections 4 and 7), on real backend processes:
the in-memory broker for the caps and the creation rules, a real RabbitMQ node for what a
refusal must not create."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from chatserver.broker.amqp_wire import Topology
from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.integration.test_backend_auth import jwt_backend, token
from tests.integration.test_backend_cluster import NO_RATE_LIMIT
from tests.support.chatclient import ChatClient

Opener = Callable[..., Coroutine[Any, Any, ChatClient]]


@pytest.fixture
async def open_client() -> AsyncIterator[Opener]:
    """ChatClient.connect, every client closed at the end."""
    clients: list[ChatClient] = []

    async def open_to(url: str, **kwargs: Any) -> ChatClient:
        client = await ChatClient.connect(url, **kwargs)
        clients.append(client)
        return client

    yield open_to
    await asyncio.gather(*(client.close() for client in clients))


async def backend(spawn_chat: SpawnChat, **env: str) -> ChatProcess:
    process = spawn_chat("backend", env={**NO_RATE_LIMIT, **env})
    await asyncio.to_thread(process.wait_ready)
    return process


async def refused(client: ChatClient, room: str) -> str:
    """The code of the `error` that answers a join of `room`; the connection stays usable."""
    await client.send({"type": "join", "room": room})
    error = await client.expect("error", room=room)
    await client.send({"type": "ping"})
    await client.expect("pong")
    return str(error["code"])


async def test_a_connection_over_its_room_cap_is_refused_and_kept(
    spawn_chat: SpawnChat, open_client: Opener
) -> None:
    chat = await backend(spawn_chat, CHAT_MAX_ROOMS_PER_CONNECTION="3")
    client = await open_client(chat.url)
    for room in ("r1", "r2", "r3"):
        await client.join(room)
    assert await refused(client, "r4") == "too_many_rooms"
    await client.send({"type": "leave", "room": "r1"})
    await client.expect("left", room="r1")
    await client.join("r4")


async def test_a_client_cannot_multiply_its_rooms_with_more_connections(
    spawn_chat: SpawnChat, open_client: Opener
) -> None:
    chat = await backend(
        spawn_chat, CHAT_MAX_ROOMS_PER_CONNECTION="3", CHAT_MAX_ROOMS_PER_CLIENT="4"
    )
    tabs = [await open_client(chat.url, client="tab-owner") for _ in range(3)]
    for room in ("a", "b", "c"):
        await tabs[0].join(room)
    await tabs[1].join("a")  # a room the client is in already costs nothing more
    await tabs[1].join("d")
    assert await refused(tabs[2], "e") == "too_many_rooms"
    stranger = await open_client(chat.url, client="someone-else")
    await stranger.join("e")


async def test_preset_creation_refuses_rooms_that_do_not_exist(
    spawn_chat: SpawnChat, open_client: Opener
) -> None:
    chat = await backend(spawn_chat, CHAT_ROOM_CREATION="preset", CHAT_ROOMS="general,news")
    client = await open_client(chat.url)
    await client.join("news")
    assert await refused(client, "brand-new") == "room_not_found"
    assert set(chat.stats()["rooms"]) == {"general", "news"}


async def test_a_create_claim_decides_who_may_create_a_room(
    spawn_chat: SpawnChat, open_client: Opener
) -> None:
    preset = await jwt_backend(spawn_chat, CHAT_ROOM_CREATION="preset", **NO_RATE_LIMIT)
    anyone = await jwt_backend(spawn_chat, **NO_RATE_LIMIT)

    async def as_user(chat: ChatProcess, sub: str, **claims: Any) -> ChatClient:
        return await open_client(chat.url, params={"token": token(sub, **claims)})

    maker = await as_user(preset, "maker", create=["team-*"])
    member = await as_user(preset, "member")
    assert await refused(member, "team-a") == "room_not_found"
    assert await refused(maker, "elsewhere") == "room_not_found"
    await maker.join("team-a")
    await member.join("team-a")  # it exists now
    barred = await as_user(anyone, "barred", create=[])
    assert await refused(barred, "brand-new") == "room_not_found"


def streams(node: RabbitMQNode, cluster: str, *rooms: str) -> set[str]:
    """Which of `rooms` have a stream on the node."""
    listed = set(node.ctl("list_queues", "name", "--quiet", "--no-table-headers").split())
    return {room for room in rooms if Topology(cluster).room_stream(room) in listed}


@pytest.mark.rabbitmq
async def test_over_rabbitmq_a_refused_join_declares_no_stream_and_old_rooms_stay_joinable(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str, open_client: Opener
) -> None:
    common = {"rabbitmq_url": rabbitmq.url, "cluster": chat_cluster_name}
    anyone = spawn_chat(
        "backend", **common, env={**NO_RATE_LIMIT, "CHAT_MAX_ROOMS_PER_CONNECTION": "2"}
    )
    preset = spawn_chat("backend", **common, env={**NO_RATE_LIMIT, "CHAT_ROOM_CREATION": "preset"})
    await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in (anyone, preset)))
    creator = await open_client(anyone.url)
    await creator.join("made-before")
    await creator.join("second")
    assert await refused(creator, "over-the-cap") == "too_many_rooms"
    latecomer = await open_client(preset.url)
    await latecomer.join("made-before")
    assert await refused(latecomer, "never-made") == "room_not_found"
    named = ("made-before", "second", "over-the-cap", "never-made")
    assert streams(rabbitmq, chat_cluster_name, *named) == {"made-before", "second"}


async def test_the_memory_broker_forgets_idle_rooms_beyond_its_bound(
    spawn_chat: SpawnChat, open_client: Opener
) -> None:
    chat = await backend(spawn_chat, CHAT_MEMORY_MAX_ROOMS="3")
    client = await open_client(chat.url)
    await client.join("first")
    first_id = (await client.say("first", "remember me"))["id"]
    for room in ("first", "r2", "r3", "r4"):
        if room != "first":
            await client.join(room)
        await client.send({"type": "leave", "room": room})
        await client.expect("left", room=room)
    rejoined = await client.join("first", since=first_id)
    assert (rejoined["reset"], rejoined["history"]) == (True, [])
