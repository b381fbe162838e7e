"""Backends on a three-node RabbitMQ cluster: a room's replicated stream outlives the node that
leads it, and a node restarted under load costs no acknowledged message and repeats none."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from chatserver.broker.amqp_wire import Topology
from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQCluster, RabbitMQNode
from tests.integration.test_backend_cluster import start_backends
from tests.support.chatclient import ChatClient

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

ROOM = "lobby"
MESSAGES_PER_SENDER = 60
SEND_INTERVAL = 0.05
"""Seconds between one sender's messages: a steady load, about 40 messages per second in all."""
RETRY_DELAY = 0.2
SEND_DEADLINE = 120.0
"""Seconds one message may take to be acknowledged, retries included, before the test fails."""
ANSWER_TIMEOUT = 5.0


@dataclass
class Sender:
    """One client's steady stream of sends, each retried with its own ref until acknowledged (a
    reply of `unavailable`, or none in time, is retried, as the UI does)."""

    client: ChatClient
    name: str
    acks: list[tuple[float, str]] = field(default_factory=list)
    """(monotonic time of the ack, id) in the order the sends were made."""
    retries: int = 0

    async def run(self) -> None:
        for k in range(MESSAGES_PER_SENDER):
            ref = f"{self.name}-{k}-{uuid.uuid4().hex[:6]}"
            deadline = time.monotonic() + SEND_DEADLINE
            while True:
                assert time.monotonic() < deadline, f"{ref} never acknowledged"
                await self.client.send(
                    {"type": "send", "room": ROOM, "text": f"{self.name} {k}", "ref": ref}
                )
                try:
                    answer = await self.client.expect_answer(ref, within=ANSWER_TIMEOUT)
                except TimeoutError:
                    answer = {"type": "error", "code": "no answer"}
                if answer["type"] == "ack":
                    self.acks.append((time.monotonic(), answer["id"]))
                    break
                assert answer["code"] in ("unavailable", "no answer"), answer
                self.retries += 1
                await asyncio.sleep(RETRY_DELAY)
            await asyncio.sleep(SEND_INTERVAL)


def stream_leader(cluster: RabbitMQCluster, stream: str) -> RabbitMQNode:
    node = next(n for n in cluster.nodes if n.running)
    queues = json.loads(node.ctl("list_queues", "name", "leader", "--formatter=json"))
    (leader,) = [q["leader"] for q in queues if q["name"] == stream]
    return cluster.node_named(leader)


async def test_losing_the_leading_node_then_restarting_another_loses_and_repeats_nothing(
    spawn_chat: SpawnChat,
    rabbitmq_cluster: RabbitMQCluster,
    chat_cluster_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    cluster = rabbitmq_cluster
    first, second, third = cluster.nodes
    # The room's stream is declared (and so led) by the node its first backend talks to.
    (creator,) = await start_backends(spawn_chat, first.url, chat_cluster_name, 1, prefix="creator")
    opener = await ChatClient.connect(creator.url, name="opener")
    await opener.join(ROOM)
    await opener.close()
    stream = Topology(chat_cluster_name).room_stream(ROOM)
    assert stream_leader(cluster, stream) is first
    await asyncio.to_thread(creator.stop)

    backends = [
        *await start_backends(spawn_chat, second.url, chat_cluster_name, 1, prefix="b"),
        *await start_backends(spawn_chat, third.url, chat_cluster_name, 1, prefix="c"),
    ]
    clients = [
        await ChatClient.connect(b.url, name=f"u{i}", client=f"client-{i}")
        for i, b in enumerate(backends)
    ]
    try:
        for client in clients:
            await client.join(ROOM)
        senders = [Sender(c, f"u{i}") for i, c in enumerate(clients)]
        load = asyncio.gather(*(s.run() for s in senders))

        await asyncio.sleep(1.0)
        lost_at = time.monotonic()
        await asyncio.to_thread(first.stop)
        await asyncio.sleep(2.0)
        # Another node restarted under the same load, one of the two the backends talk to.
        await asyncio.to_thread(second.stop)
        await asyncio.to_thread(second.start)
        await asyncio.wait_for(load, SEND_DEADLINE * 2)

        first_ack_after_loss = min(t for s in senders for t, _ in s.acks if t > lost_at)
        record_property("seconds_to_first_ack_after_leader_loss", first_ack_after_loss - lost_at)
        acked = {message_id for s in senders for _, message_id in s.acks}
        assert len(acked) == len(senders) * MESSAGES_PER_SENDER  # none acked twice
        for client in clients:
            await client.wait_messages(len(acked), within=60)
        orders = [[m["id"] for m in c.messages] for c in clients]
        assert orders[0] == orders[1]  # the same order and ids on every backend
        assert sorted(orders[0]) == sorted(acked)  # each acked message once, nothing else
        for backend in backends:
            reader = await ChatClient.connect(backend.url, name="reader")
            history = (await reader.join(ROOM))["history"]
            assert [m["id"] for m in history] == orders[0][-len(history) :]
            await reader.close()
        print(
            f"leader {first.nodename} stopped: first ack after {first_ack_after_loss - lost_at:.2f}"
            f" s; {sum(s.retries for s in senders)} retries; {len(acked)} acked, 0 lost, 0 repeated"
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def node_serving(cluster: RabbitMQCluster, connection_name: str) -> RabbitMQNode:
    """The node that holds the AMQP connection a backend named itself by (known by the AMQP
    port the connection came in on: each node listens on its own)."""
    node = next(n for n in cluster.nodes if n.running)
    connections = json.loads(
        node.ctl("list_connections", "port", "client_properties", "--formatter=json")
    )
    (port,) = {
        c["port"]
        for c in connections
        # rabbitmqctl gives the properties as [name, type, value] triples.
        if ["connection_name", "longstr", connection_name] in c["client_properties"]
    }
    return next(n for n in cluster.nodes if n.port == port)


async def test_a_backend_whose_node_dies_carries_on_through_another(
    spawn_chat: SpawnChat, rabbitmq_cluster: RabbitMQCluster, chat_cluster_name: str
) -> None:
    cluster = rabbitmq_cluster
    every_node = ",".join(cluster.urls)
    (backend,) = await start_backends(spawn_chat, every_node, chat_cluster_name, 1)
    client = await ChatClient.connect(backend.url, name="ada", client="ada")
    try:
        await client.join(ROOM)
        acked = [(await client.say(ROOM, f"before {k}"))["id"] for k in range(3)]
        serving = node_serving(cluster, f"chatserver {chat_cluster_name}/{backend.pod}")
        await asyncio.to_thread(serving.stop)
        # Ready again through one of the two other nodes, with the room followed again.
        await asyncio.to_thread(backend.wait_ready, 60)
        sender = Sender(client, "ada")
        await asyncio.wait_for(sender.run(), SEND_DEADLINE)
        acked += [message_id for _, message_id in sender.acks]
        assert node_serving(cluster, f"chatserver {chat_cluster_name}/{backend.pod}") is not serving
        await client.wait_messages(len(acked), within=30)
        assert [m["id"] for m in client.messages] == acked
    finally:
        await client.close()
