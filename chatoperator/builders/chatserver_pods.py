"""The shared shape of the two chatserver Deployments (backend and frontend, one image)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatoperator.builders.meta import (
    CONFIG_HASH_ANNOTATION,
    child_name,
    container_resources,
    container_security_context,
    digest,
    empty_dir,
    labels,
    metadata,
    pod_security_context,
    prefer_other_nodes,
    selector_labels,
    spread_across_nodes,
)
from chatoperator.spec import Cluster, EphemeralStorage, Resources, SecretKeyRef
from chatserver.contract import Env

CHATSERVER_UID = 10001
"""The unprivileged user the chatserver image runs as (deploy/chatserver.Dockerfile)."""

DRAIN_SECONDS = 10
"""``CHAT_DRAIN_SECONDS``: how long a backend lets clients reconnect elsewhere on SIGTERM."""

PRESTOP_SECONDS = 5
"""Delay before SIGTERM, so endpoints drop the pod before it starts refusing connections."""

TERMINATION_GRACE_SECONDS = PRESTOP_SECONDS + DRAIN_SECONDS + 10
"""preStop plus the drain plus a margin for the process to exit after its last close."""


@dataclass(frozen=True)
class ChatserverPods:
    component: str
    command: str
    """The ``chatserver`` subcommand: ``backend`` or ``frontend``."""
    port: int
    env: Sequence[dict[str, Any]]
    """Everything the process reads at start; its digest is the config hash."""
    config_extra: str
    """Config the env does not show (a digest of a referenced Secret's value)."""
    resources: Resources
    ephemeral_storage: EphemeralStorage
    secret_files: Sequence[SecretFile] = ()
    """Credentials the process reads from files (their ``*_FILE`` variables are in ``env``)."""


def plain_env(name: str, value: str | int) -> dict[str, Any]:
    return {"name": name, "value": str(value)}


SECRETS_DIR = "/etc/chatcluster"
SECRET_FILE_MODE = 0o440
"""Read-only, for the pod's user and its group (``fsGroup``): files hold credentials."""


@dataclass(frozen=True)
class SecretFile:
    """A Secret key mounted read-only as ``/etc/chatcluster/<volume>/<file>``, its path in the
    ``<variable>_FILE`` the process reads: a credential in a file stays out of the environment
    (which every process of the pod inherits), and a rotated one reaches the file in place."""

    variable: str
    """The setting, e.g. ``CHAT_AUTH_SECRET`` (the env var is ``CHAT_AUTH_SECRET_FILE``)."""
    ref: SecretKeyRef
    volume: str
    file: str

    @property
    def path(self) -> str:
        return f"{SECRETS_DIR}/{self.volume}/{self.file}"

    def env(self) -> dict[str, Any]:
        return plain_env(f"{self.variable}_FILE", self.path)

    def pod_volume(self) -> dict[str, Any]:
        items = [{"key": self.ref.key, "path": self.file}]
        return {
            "name": self.volume,
            "secret": {
                "secretName": self.ref.name,
                "items": items,
                "defaultMode": SECRET_FILE_MODE,
            },
        }

    def mount(self) -> dict[str, Any]:
        return {"name": self.volume, "mountPath": f"{SECRETS_DIR}/{self.volume}", "readOnly": True}


def origins_env(cluster: Cluster) -> list[dict[str, Any]]:
    """``CHAT_ALLOWED_ORIGINS``, which both processes check on ``/ws``, when the spec sets it."""
    origins = cluster.spec.auth.allowed_origins
    return [plain_env(Env.CHAT_ALLOWED_ORIGINS, ",".join(origins))] if origins else []


def chatserver_deployment(
    cluster: Cluster, pods: ChatserverPods, *, replicas: int | None
) -> dict[str, Any]:
    """A Deployment of ``chatserver <command>``; ``replicas=None`` leaves them to an HPA."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(cluster, pods.component)},
        # Surge first: a WebSocket tier must not lose capacity while clients reconnect.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": labels(cluster, pods.component),
                "annotations": {
                    CONFIG_HASH_ANNOTATION: digest([list(pods.env), pods.config_extra])
                },
            },
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(CHATSERVER_UID),
                "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                "topologySpreadConstraints": spread_across_nodes(cluster, pods.component),
                "affinity": prefer_other_nodes(cluster, pods.component),
                "containers": [
                    {
                        "name": pods.component,
                        "image": cluster.spec.image,
                        "command": ["chatserver", pods.command],
                        "env": list(pods.env),
                        "ports": [{"name": "http", "containerPort": pods.port, "protocol": "TCP"}],
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 10,
                            "timeoutSeconds": 2,
                            "failureThreshold": 3,
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/readyz", "port": "http"},
                            "periodSeconds": 5,
                            "timeoutSeconds": 2,
                            "failureThreshold": 2,
                        },
                        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
                        "resources": container_resources(pods.resources, pods.ephemeral_storage),
                        "securityContext": container_security_context(),
                        "volumeMounts": [
                            {"name": "tmp", "mountPath": "/tmp"},
                            *(secret.mount() for secret in pods.secret_files),
                        ],
                    }
                ],
                "volumes": [
                    empty_dir("tmp", pods.ephemeral_storage),
                    *(secret.pod_volume() for secret in pods.secret_files),
                ],
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    name = child_name(cluster, pods.component)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(cluster, name=name, component=pods.component),
        "spec": spec,
    }
