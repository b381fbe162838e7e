"""The operator's broker users on a real RabbitMQ: the node boots with the definitions its init
container writes from the Secret the operator makes; the backends chat as the backend user, which
can reach nothing of another cluster's and no management API, and the operator still keeps its
policy as the administrator."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiormq
import pytest

from chatoperator.broker_admin import visit_broker
from chatoperator.builders.broker_policy import build_room_policy
from chatoperator.builders.broker_secret import BrokerCredentials, build_broker_secret
from chatoperator.builders.broker_users import UserFiles, write_users_script
from chatoperator.builders.meta import chat_cluster_name
from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode, running_node
from tests.integration.test_backend_cluster import start_backends
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually
from tests.unit.clusters import cluster_from_spec

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

CREDENTIALS = BrokerCredentials(
    username=f"chat-{uuid.uuid4().hex[:8]}",
    password=uuid.uuid4().hex,
    backend_username=f"backend-{uuid.uuid4().hex[:8]}",
    backend_password=uuid.uuid4().hex,
    erlang_cookie="unused",
)


OTHER_CLUSTERS_ROOM = "chat.team-a.other.room.general"
"""A room of ChatCluster ``other`` in the same namespace, on the same broker."""


async def admin_declares(url: str, queue: str) -> None:
    connection = await aiormq.connect(url)
    try:
        await (await connection.channel()).queue_declare(queue, durable=True)
    finally:
        await connection.close()


def prepared(secret: dict[str, str], tmp_path: Path) -> Path:
    """What the init container leaves for the broker, from the Secret's files: the directory
    ``RABBITMQ_CONFIG_FILES`` names."""
    files = UserFiles(credentials=str(tmp_path / "credentials"), directory=str(tmp_path / "users"))
    for directory in (files.credentials, files.directory):
        Path(directory).mkdir()
    for key, value in secret.items():
        (Path(files.credentials) / key).write_text(value)
    cluster = cluster_from_spec({}, namespace="team-a")
    subprocess.run(["sh", "-euc", write_users_script(cluster, files)], check=True, timeout=10)
    return Path(files.config_files)


def on_node(url: str, node: RabbitMQNode) -> str:
    """The Secret's URL (the broker's Service name) pointed at the test's node."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{node.port}"))


def management_status(node: RabbitMQNode, username: str, password: str) -> int:
    request = urllib.request.Request(f"{node.management_url}/api/overview")
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


async def test_backends_chat_as_a_user_confined_to_their_cluster(
    spawn_chat: SpawnChat, tmp_path: Path
) -> None:
    cluster = cluster_from_spec({}, namespace="team-a")
    secret = build_broker_secret(cluster, CREDENTIALS)["stringData"]
    with running_node(management=True, config_files=prepared(secret, tmp_path)) as node:
        url = on_node(secret["url"], node)
        assert CREDENTIALS.backend_username in url
        backends = await start_backends(spawn_chat, url, chat_cluster_name(cluster), 2)
        ada = await ChatClient.connect(backends[0].url, name="Ada", client="ada")
        grace = await ChatClient.connect(backends[1].url, name="Grace", client="grace")
        try:
            for client in (ada, grace):
                await client.join("general")
            await eventually(
                lambda: all(b.stats()["users_online"] == 2 for b in backends),
                what="presence across both backends",
            )
            await ada.send({"type": "typing", "room": "general"})
            await grace.expect("typing", room="general", user="Ada")
            assert (await grace.say("general", "hello"))["type"] == "ack"
            await ada.wait_messages(1)
            assert ada.messages[0]["text"] == "hello"
        finally:
            await asyncio.gather(ada.close(), grace.close())

        # The backend user reaches nothing outside its cluster's names, on AMQP or HTTP.
        admin_url = url.replace(
            f"{CREDENTIALS.backend_username}:{CREDENTIALS.backend_password}",
            f"{CREDENTIALS.username}:{CREDENTIALS.password}",
        )
        await admin_declares(admin_url, OTHER_CLUSTERS_ROOM)
        connection = await aiormq.connect(url)
        try:
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await (await connection.channel()).basic_get(OTHER_CLUSTERS_ROOM)
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await (await connection.channel()).queue_declare("chat.team-a.other.room.new")
        finally:
            await connection.close()
        backend_login = (CREDENTIALS.backend_username, CREDENTIALS.backend_password)
        assert await asyncio.to_thread(management_status, node, *backend_login) == 401
        # Nor does the broker have a guest any more.
        assert await asyncio.to_thread(management_status, node, "guest", "guest") == 401

        # The operator, as the administrator, still keeps its policy.
        policy = build_room_policy(cluster)
        assert policy is not None
        visit = await asyncio.to_thread(
            visit_broker,
            replace(policy, management_url=node.management_url),
            username=CREDENTIALS.username,
            password=CREDENTIALS.password,
            timeout=10,
        )
        assert visit.reason == "Applied", visit.message
        assert visit.rooms == 1
