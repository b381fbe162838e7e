"""The Deployment ``<name>-frontend``: the UI and the ``/ws`` proxy, ``chatserver frontend``."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.chatserver_pods import (
    DRAIN_SECONDS,
    ChatserverPods,
    chatserver_deployment,
    origins_env,
    plain_env,
)
from chatoperator.builders.meta import BACKEND, FRONTEND, child_name
from chatoperator.builders.network import BACKEND_PORT, FRONTEND_PORT
from chatoperator.spec import Cluster
from chatserver.contract import Env

DEFAULT_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}


def build_frontend_deployment(cluster: Cluster) -> dict[str, Any]:
    frontend = cluster.spec.frontend
    # Only what the relay reads (chatserver.contract.FRONTEND_ENV): no chat setting, no broker
    # URL and no token key.
    env = [
        plain_env(Env.PORT, FRONTEND_PORT),
        *origins_env(cluster),
        plain_env(Env.BACKEND_URL, f"http://{child_name(cluster, BACKEND)}:{BACKEND_PORT}"),
        plain_env(Env.CHAT_DRAIN_SECONDS, DRAIN_SECONDS),
        plain_env(Env.CHAT_MAX_CONNECTIONS, frontend.max_connections),
        plain_env(Env.CHAT_MAX_CONNECTIONS_PER_IP, frontend.max_connections_per_ip),
    ]
    pods = ChatserverPods(
        component=FRONTEND,
        command="frontend",
        port=FRONTEND_PORT,
        env=env,
        config_extra="",
        resources=frontend.resources or DEFAULT_RESOURCES,
        ephemeral_storage=frontend.ephemeral_storage,
    )
    return chatserver_deployment(cluster, pods, replicas=frontend.replicas)
