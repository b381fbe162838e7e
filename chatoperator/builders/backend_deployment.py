"""The Deployment ``<name>-backend``: the WebSocket tier, ``chatserver backend``."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.broker_secret import broker_url_ref
from chatoperator.builders.chatserver_pods import (
    DRAIN_SECONDS,
    ChatserverPods,
    SecretFile,
    chatserver_deployment,
    origins_env,
    plain_env,
)
from chatoperator.builders.inputs import BuildInput
from chatoperator.builders.meta import BACKEND, chat_cluster_name
from chatoperator.builders.network import BACKEND_PORT
from chatoperator.spec import Cluster, quantity_bytes
from chatserver import contract
from chatserver.contract import MAX_ROOM_MAX_BYTES, Env

DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "256Mi"},
}


def backend_secret_files(inp: BuildInput) -> list[SecretFile]:
    """The broker URL and, in token mode, the token key: files, never environment variables."""
    cluster = inp.cluster
    files = [SecretFile(Env.RABBITMQ_URL, broker_url_ref(cluster), "broker", "url")]
    if cluster.spec.auth.secret is not None:
        files.append(SecretFile(Env.CHAT_AUTH_SECRET, cluster.spec.auth.secret, "auth", "secret"))
    return files


def backend_env(inp: BuildInput) -> list[dict[str, Any]]:
    """Everything ``chatserver backend`` reads (``chatserver.contract.BACKEND_ENV``) that the
    spec sets. (The order is part of the config hash: reordering rolls every backend.)"""
    cluster = inp.cluster
    chat, auth = cluster.spec.chat, cluster.spec.auth
    return [
        plain_env(Env.PORT, BACKEND_PORT),
        {"name": Env.POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        plain_env(Env.CHAT_AUTH, auth.mode),
        *(secret.env() for secret in backend_secret_files(inp)),
        *origins_env(cluster),
        plain_env(Env.CHAT_CLUSTER, chat_cluster_name(cluster)),
        plain_env(Env.CHAT_ROOM_MAX_BYTES, room_stream_max_bytes(cluster)),
        plain_env(Env.CHAT_ROOMS, ",".join(chat.rooms)),
        plain_env(Env.CHAT_HISTORY_SIZE, chat.history_size),
        plain_env(Env.CHAT_HISTORY_MAX_BYTES, window_max_bytes(cluster)),
        plain_env(Env.CHAT_MAX_MESSAGE_BYTES, chat.max_message_bytes),
        plain_env(Env.CHAT_RATE_PER_SECOND, chat.rate_per_second),
        plain_env(Env.CHAT_RATE_BURST, chat.rate_burst),
        plain_env(Env.CHAT_MAX_ROOMS_PER_CONNECTION, chat.max_rooms_per_connection),
        plain_env(Env.CHAT_MAX_ROOMS_PER_CLIENT, chat.max_rooms_per_client),
        plain_env(Env.CHAT_ROOM_CREATION, chat.room_creation),
        plain_env(Env.CHAT_DRAIN_SECONDS, DRAIN_SECONDS),
        plain_env(Env.CHAT_MAX_CONNECTIONS, cluster.spec.backend.max_connections),
        # A backend's clients are the frontend pods, each relaying many browsers from one
        # address: a cap per address would cap a whole frontend.
        plain_env(Env.CHAT_MAX_CONNECTIONS_PER_IP, 0),
    ]


BACKEND_OWN_MEMORY = 64 * 1024**2
"""A backend's memory before any room or connection (about 50 MiB idle, measured)."""


def window_max_bytes(cluster: Cluster) -> int:
    """``CHAT_HISTORY_MAX_BYTES``: half of the backend's memory limit above its own, shared out
    among ``chat.maxRooms`` windows (the other half is for connections and their outboxes), so
    a backend that follows every room the cluster may hold, each window full of the largest
    messages, stays within its limit. Between the server's least and its default; without a
    memory limit, the default."""
    resources = cluster.spec.backend.resources or DEFAULT_RESOURCES
    limit = resources.get("limits", {}).get("memory")
    if limit is None:
        return contract.DEFAULT_HISTORY_MAX_BYTES
    share = (quantity_bytes(limit) - BACKEND_OWN_MEMORY) // 2 // cluster.spec.chat.max_rooms
    return max(contract.MIN_HISTORY_MAX_BYTES, min(contract.DEFAULT_HISTORY_MAX_BYTES, share))


def room_stream_max_bytes(cluster: Cluster) -> int:
    """The ``x-max-length-bytes`` of each new room stream. RabbitMQ keeps the lesser of it and
    a policy's, so on the operator's own broker, whose policy sets the retention of every room
    (``broker_policy.py``), it is the CRD's maximum: the policy alone decides, and a change
    reaches old rooms too. An external broker has no such policy: there it is the retention."""
    if cluster.external_broker:
        return cluster.spec.rabbitmq.retention.max_bytes
    return MAX_ROOM_MAX_BYTES


def build_backend_deployment(inp: BuildInput) -> dict[str, Any]:
    backend = inp.cluster.spec.backend
    pods = ChatserverPods(
        component=BACKEND,
        command="backend",
        port=BACKEND_PORT,
        env=backend_env(inp),
        config_extra=inp.broker_url_digest,
        resources=backend.resources or DEFAULT_RESOURCES,
        ephemeral_storage=backend.ephemeral_storage,
        secret_files=backend_secret_files(inp),
    )
    # With autoscaling, replicas belong to the HPA: leaving the field out of the apply is what
    # keeps the operator from ever resetting them.
    replicas = None if backend.autoscaling.enabled else backend.replicas
    return chatserver_deployment(inp.cluster, pods, replicas=replicas)
