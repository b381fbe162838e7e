"""Several real backend processes fanning out through a real RabbitMQ node."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from chatserver.broker.amqp_wire import Topology
from chatserver.ids import parse_id
from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.integration.test_broker_contract import delete_stream
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

NO_RATE_LIMIT = {"CHAT_RATE_PER_SECOND": "1000", "CHAT_RATE_BURST": "1000"}
"""These tests talk as fast as they can; the rate limit has its own test."""


async def start_backends(
    spawn_chat: SpawnChat, url: str, cluster: str, count: int, *, prefix: str = "backend"
) -> list[ChatProcess]:
    backends = [
        spawn_chat(
            "backend",
            rabbitmq_url=url,
            cluster=cluster,
            pod=f"{prefix}-{i}",
            env=NO_RATE_LIMIT,
        )
        for i in range(count)
    ]
    await asyncio.gather(*(asyncio.to_thread(b.wait_ready) for b in backends))
    return backends


async def test_every_member_gets_every_message_once_in_the_same_order(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backends = await start_backends(spawn_chat, rabbitmq.url, chat_cluster_name, 3)
    clients = [
        await ChatClient.connect(b.url, name=f"u{i}{j}", client=f"c{i}{j}")
        for i, b in enumerate(backends)
        for j in range(3)
    ]
    try:
        for client in clients:
            await client.join("lobby")

        def everyone_counted() -> bool:
            stats = [backend.stats() for backend in backends]
            return all(s["users_online"] == 9 and s["rooms"].get("lobby") == 9 for s in stats)

        await eventually(everyone_counted, what="9 users in lobby on every backend")

        async def talk(client: ChatClient, n: int) -> list[str]:
            acks = [await client.say("lobby", f"{client.welcome['user']}-{k}") for k in range(n)]
            assert all(ack["type"] == "ack" for ack in acks), acks
            return [ack["id"] for ack in acks]

        started = time.monotonic()
        acked = [i for ids in await asyncio.gather(*(talk(c, 4) for c in clients)) for i in ids]
        for client in clients:
            await client.wait_messages(len(acked), within=15)
        elapsed = time.monotonic() - started
        orders = [[m["id"] for m in client.messages] for client in clients]
        assert sorted(orders[0], key=parse_id) == orders[0]  # type: ignore[arg-type]
        assert set(orders[0]) == set(acked)
        assert len(orders[0]) == len(acked)
        assert all(order == orders[0] for order in orders)
        print(
            f"\n{len(acked)} messages x {len(clients)} members on 3 backends: "
            f"{len(acked) * len(clients)} deliveries in {elapsed:.2f}s"
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_clients_of_a_killed_backend_recover_every_message_elsewhere(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    doomed, survivor = await start_backends(spawn_chat, rabbitmq.url, chat_cluster_name, 2)
    speaker = await ChatClient.connect(survivor.url, name="speaker")
    victims = [await ChatClient.connect(doomed.url, name=f"v{i}", client=f"v{i}") for i in range(3)]
    everyone = [speaker, *victims]
    try:
        for client in everyone:
            await client.join("lobby")
        acked = [(await speaker.say("lobby", f"before-{k}"))["id"] for k in range(5)]
        for victim in victims:
            await victim.wait_messages(5)

        async def keep_talking() -> list[str]:
            ids = []
            for k in range(20):
                ack = await speaker.say("lobby", f"during-{k}")
                assert ack["type"] == "ack", ack
                ids.append(ack["id"])
                await asyncio.sleep(0.02)
            return ids

        talking = asyncio.create_task(keep_talking())
        await speaker.wait_messages(8)
        killed_at = time.monotonic()
        doomed.kill()

        async def recover(victim: ChatClient) -> tuple[ChatClient, float]:
            await victim.wait_closed()
            seen = [m["id"] for m in victim.messages]
            fresh = await ChatClient.connect(
                survivor.url, name=victim.welcome["user"], client=f"{victim.welcome['user']}"
            )
            joined = await fresh.join("lobby", since=seen[-1])
            recovered_after = time.monotonic() - killed_at
            assert joined["truncated"] is False
            fresh.messages[:0] = [*victim.messages, *joined["history"]]
            return fresh, recovered_after

        recovered = await asyncio.gather(*(recover(v) for v in victims))
        acked += await talking
        for fresh, _ in recovered:
            await fresh.wait_messages(len(acked))
            assert [m["id"] for m in fresh.messages] == acked
        worst = max(after for _, after in recovered)
        print(f"\nkill -9 to every client recovered on the other backend: {worst:.3f}s")
        await eventually(
            lambda: survivor.stats()["users_online"] == survivor.stats()["connections"],
            within=10,
            what="the killed backend's sessions leave the counts",
        )
        for fresh, _ in recovered:
            await fresh.close()
    finally:
        await asyncio.gather(*(c.close() for c in everyone), return_exceptions=True)


async def test_history_survives_a_restart_of_every_backend(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    first = await start_backends(spawn_chat, rabbitmq.url, chat_cluster_name, 2)
    writer = await ChatClient.connect(first[0].url, name="writer")
    await writer.join("lobby")
    acked = [(await writer.say("lobby", f"kept-{k}"))["id"] for k in range(5)]
    await writer.close()
    for backend in first:
        backend.terminate()
    for backend in first:
        assert backend.wait(timeout=15) == 0
    second = await start_backends(spawn_chat, rabbitmq.url, chat_cluster_name, 2, prefix="again")
    for backend in second:
        reader = await ChatClient.connect(backend.url, name="reader")
        joined = await reader.join("lobby")
        assert [m["id"] for m in joined["history"]] == acked
        assert [m["text"] for m in joined["history"]] == [f"kept-{k}" for k in range(5)]
        await reader.close()


async def test_backends_ride_out_a_rabbitmq_restart_without_losing_acked_messages(
    spawn_chat: SpawnChat, rabbitmq_restartable: RabbitMQNode, chat_cluster_name: str
) -> None:
    node = rabbitmq_restartable
    backends = await start_backends(spawn_chat, node.url, chat_cluster_name, 2)
    clients = [await ChatClient.connect(b.url, name=f"u{i}") for i, b in enumerate(backends)]
    try:
        for client in clients:
            await client.join("lobby")
        acked = [(await clients[0].say("lobby", f"before-{k}"))["id"] for k in range(3)]

        await asyncio.to_thread(node.stop)
        for backend in backends:
            await asyncio.to_thread(backend.wait_readyz, 503, timeout=30)
        during = await clients[1].say("lobby", "while down", ref=f"down-{uuid.uuid4().hex}")
        assert (during["type"], during["code"]) == ("error", "unavailable")

        await asyncio.to_thread(node.start)
        for backend in backends:
            await asyncio.to_thread(backend.wait_ready, 60)
        retried = await clients[1].say("lobby", "while down", ref=during["ref"])
        assert retried["type"] == "ack", retried
        acked.append(retried["id"])
        acked += [(await clients[0].say("lobby", f"after-{k}"))["id"] for k in range(3)]

        for client in clients:
            await client.wait_messages(len(acked), within=20)
            assert [m["id"] for m in client.messages] == acked
        for backend in backends:
            reader = await ChatClient.connect(backend.url, name="reader")
            joined = await reader.join("lobby")
            assert [m["id"] for m in joined["history"]] == acked
            await reader.close()
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_a_deleted_room_stream_starts_a_new_log_that_reaches_everyone_and_resets_old_ids(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backends = await start_backends(spawn_chat, rabbitmq.url, chat_cluster_name, 2)
    ada, bob = [
        await ChatClient.connect(b.url, name=name, client=name)
        for b, name in zip(backends, ("ada", "bob"), strict=True)
    ]
    try:
        for client in (ada, bob):
            await client.join("general")
        before = [(await ada.say("general", f"before-{k}"))["id"] for k in range(4)]
        for client in (ada, bob):
            await client.wait_messages(4)

        await delete_stream(rabbitmq.url, Topology(chat_cluster_name).room_stream("general"))
        # Each backend notices (its consumer is cancelled), reconnects and reads the new log;
        # meanwhile a send may be answered `unavailable`, and is retried as a client does.
        for _ in range(60):
            after = await ada.say("general", "after the stream was deleted", ref="after")
            if after["type"] == "ack":
                break
            assert after["code"] == "unavailable", after
            await asyncio.sleep(0.5)
        assert after["type"] == "ack", after
        assert after["id"] not in before
        assert parse_id(after["id"]) > parse_id(before[-1])  # type: ignore[operator]
        for client in (ada, bob):
            messages = await client.wait_messages(5, within=20)
            assert [m["id"] for m in messages] == [*before, after["id"]]
            assert messages[-1]["text"] == "after the stream was deleted"

        for backend in backends:
            carol = await ChatClient.connect(backend.url, name="carol", client="carol")
            for since in (before[-1], "3"):  # an id of the deleted log; one from before epochs
                joined = await carol.join("general", since=since)
                assert joined["reset"] is True, joined
                assert [m["id"] for m in joined["history"]] == [after["id"]]
                await carol.send({"type": "leave", "room": "general"})
                await carol.expect("left", room="general")
            await carol.close()
        # Dedupe goes on in the new log: the same ref, resent through the other backend.
        again = await bob.say("general", "after the stream was deleted", ref=after["ref"])
        assert again["id"] != after["id"]  # bob is another client: a message of his own
        retried = await ada.say("general", "after the stream was deleted", ref=after["ref"])
        assert retried["id"] == after["id"]
    finally:
        await asyncio.gather(ada.close(), bob.close(), return_exceptions=True)


async def test_members_and_typing_cross_backends_and_a_typing_flood_is_one_signal(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    first, second = await start_backends(spawn_chat, rabbitmq.url, chat_cluster_name, 2)
    ada = await ChatClient.connect(first.url, name="Ada", client="a")
    bob = await ChatClient.connect(second.url, name="Bob", client="b")
    try:
        await ada.send({"type": "typing", "room": "lobby"})
        await ada.expect("error", code="not_joined")
        for client in (ada, bob):
            await client.join("lobby")
        for client in (ada, bob):
            await client.expect("members", people=[{"user": "Ada"}, {"user": "Bob"}], total=2)

        for _ in range(200):  # well within one 2 s interval
            await ada.send({"type": "typing", "room": "lobby"})
        await bob.expect("typing", room="lobby", user="Ada")
        ack = await ada.say("lobby", "the flood cost nothing")
        assert ack["type"] == "ack", ack
        await bob.wait_messages(1)
        # One relayed for the 200: the rest were dropped, unanswered and not counted as abuse.
        assert [f for f in bob.frames if f["type"] == "typing"] == []
        assert [f for f in ada.frames if f["type"] in ("typing", "error")] == []
    finally:
        await asyncio.gather(ada.close(), bob.close())
