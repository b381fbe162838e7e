"""The Deployment ``<name>-backend``: the WebSocket tier, ``chatserver backend``."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.broker_secret import broker_url_ref
from chatoperator.builders.chatserver_pods import (
    DRAIN_SECONDS,
    ChatserverPods,
    chatserver_deployment,
    common_env,
)
from chatoperator.builders.inputs import BuildInput
from chatoperator.builders.meta import BACKEND
from chatoperator.builders.network import BACKEND_PORT

DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "256Mi"},
}


def backend_env(inp: BuildInput) -> list[dict[str, Any]]:
    cluster = inp.cluster
    chat = cluster.spec.chat
    url = broker_url_ref(cluster)
    return [
        *common_env(cluster, port=BACKEND_PORT),
        {"name": "RABBITMQ_URL", "valueFrom": {"secretKeyRef": {"name": url.name, "key": url.key}}},
        # Namespace-qualified: two clusters sharing an external broker must not share rooms.
        {"name": "CHAT_CLUSTER", "value": f"{cluster.namespace}.{cluster.name}"},
        {"name": "CHAT_ROOMS", "value": ",".join(chat.rooms)},
        {"name": "CHAT_HISTORY_SIZE", "value": str(chat.history_size)},
        {"name": "CHAT_MAX_MESSAGE_BYTES", "value": str(chat.max_message_bytes)},
        {"name": "CHAT_RATE_PER_SECOND", "value": str(chat.rate_per_second)},
        {"name": "CHAT_RATE_BURST", "value": str(chat.rate_burst)},
        {"name": "CHAT_DRAIN_SECONDS", "value": str(DRAIN_SECONDS)},
    ]


def build_backend_deployment(inp: BuildInput) -> dict[str, Any]:
    backend = inp.cluster.spec.backend
    pods = ChatserverPods(
        component=BACKEND,
        command="backend",
        port=BACKEND_PORT,
        env=backend_env(inp),
        config_extra=inp.broker_url_digest,
        resources=backend.resources or DEFAULT_RESOURCES,
    )
    # With autoscaling, replicas belong to the HPA: leaving the field out of the apply is what
    # keeps the operator from ever resetting them.
    replicas = None if backend.autoscaling.enabled else backend.replicas
    return chatserver_deployment(inp.cluster, pods, replicas=replicas)
