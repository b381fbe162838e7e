"""The Deployment ``<name>-frontend``: the UI and the ``/ws`` proxy, ``chatserver frontend``."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.chatserver_pods import ChatserverPods, chatserver_deployment, common_env
from chatoperator.builders.meta import BACKEND, FRONTEND, child_name
from chatoperator.builders.network import BACKEND_PORT, FRONTEND_PORT
from chatoperator.spec import Cluster

DEFAULT_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}


def build_frontend_deployment(cluster: Cluster) -> dict[str, Any]:
    frontend = cluster.spec.frontend
    env = [
        *common_env(cluster, port=FRONTEND_PORT),
        {"name": "BACKEND_URL", "value": f"http://{child_name(cluster, BACKEND)}:{BACKEND_PORT}"},
    ]
    pods = ChatserverPods(
        component=FRONTEND,
        command="frontend",
        port=FRONTEND_PORT,
        env=env,
        config_extra="",
        resources=frontend.resources or DEFAULT_RESOURCES,
    )
    return chatserver_deployment(cluster, pods, replicas=frontend.replicas)
