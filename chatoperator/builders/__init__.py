"""Pure builders: one function per child object, from a ChatCluster to the desired object.

Belongs here: names, labels, pod templates, hashes. Not here: API calls, logging, randomness,
ownership decisions at runtime (``reconcile.py``). Builders never mutate their input.

The Secret ``<name>-rabbitmq`` is not in ``CHILDREN``: it is created once, never applied
(``broker_secret.py``, ``reconcile.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatoperator.builders.autoscaler import build_backend_autoscaler
from chatoperator.builders.backend_deployment import build_backend_deployment
from chatoperator.builders.broker_config import build_broker_config
from chatoperator.builders.broker_statefulset import build_broker_statefulset
from chatoperator.builders.disruption_budgets import (
    build_backend_budget,
    build_broker_budget,
    build_frontend_budget,
)
from chatoperator.builders.frontend_deployment import build_frontend_deployment
from chatoperator.builders.inputs import BuildInput
from chatoperator.builders.meta import ADMIN, BACKEND, FRONTEND, NODES, RABBITMQ, child_name
from chatoperator.builders.network_policy import (
    build_backend_network_policy,
    build_broker_network_policy,
    build_frontend_network_policy,
)
from chatoperator.builders.services import (
    build_backend_service,
    build_broker_admin_service,
    build_broker_headless_service,
    build_broker_service,
    build_frontend_service,
)
from chatoperator.spec import Cluster

__all__ = ["BY_ROLE", "CHILDREN", "BuildInput", "Child", "Role"]


class Role(enum.Enum):
    """What a child is for. Reconcile and status find children by role, never by name."""

    BROKER_CONFIG = "broker config"
    BROKER_NODES_SERVICE = "broker nodes service"
    BROKER_SERVICE = "broker service"
    BROKER_ADMIN_SERVICE = "broker admin service"
    BROKER = "broker"
    BROKER_BUDGET = "broker budget"
    BROKER_NETWORK_POLICY = "broker network policy"
    BACKEND_SERVICE = "backend service"
    BACKEND = "backend"
    BACKEND_AUTOSCALER = "backend autoscaler"
    BACKEND_BUDGET = "backend budget"
    BACKEND_NETWORK_POLICY = "backend network policy"
    FRONTEND_SERVICE = "frontend service"
    FRONTEND = "frontend"
    FRONTEND_BUDGET = "frontend budget"
    FRONTEND_NETWORK_POLICY = "frontend network policy"


_API_VERSIONS = {
    "ConfigMap": "v1",
    "Service": "v1",
    "StatefulSet": "apps/v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}


@dataclass(frozen=True)
class Child:
    role: Role
    kind: str
    suffix: str
    """The object is named ``<cluster>-<suffix>``: known without building it (a unit test checks
    every builder against it)."""
    build: Callable[[BuildInput], dict[str, Any]]
    wanted: Callable[[Cluster], bool]
    """False: the child must not exist (removed if an earlier spec made it)."""

    @property
    def api_version(self) -> str:
        return _API_VERSIONS[self.kind]

    def name(self, cluster: Cluster) -> str:
        return child_name(cluster, self.suffix)


def _always(cluster: Cluster) -> bool:
    return True


def _own_broker(cluster: Cluster) -> bool:
    return not cluster.external_broker


def _autoscaling(cluster: Cluster) -> bool:
    return cluster.spec.backend.autoscaling.enabled


def _of_cluster(
    build: Callable[[Cluster], dict[str, Any]],
) -> Callable[[BuildInput], dict[str, Any]]:
    def build_from_input(inp: BuildInput) -> dict[str, Any]:
        return build(inp.cluster)

    return build_from_input


_NODES = f"{RABBITMQ}-{NODES}"

# Dependencies first, so pods never start against objects that do not exist yet: the broker's
# config and Services before its StatefulSet (nodes resolve each other through the headless
# Service at boot), the broker before the backends, the backends before the frontend that
# proxies to them, and the backend Deployment before the HPA that targets it.
# Fields: role, kind, name suffix, builder, wanted.
CHILDREN: tuple[Child, ...] = (
    Child(Role.BROKER_CONFIG, "ConfigMap", RABBITMQ, _of_cluster(build_broker_config), _own_broker),
    Child(
        Role.BROKER_NODES_SERVICE,
        "Service",
        _NODES,
        _of_cluster(build_broker_headless_service),
        _own_broker,
    ),
    Child(Role.BROKER_SERVICE, "Service", RABBITMQ, _of_cluster(build_broker_service), _own_broker),
    Child(
        Role.BROKER_ADMIN_SERVICE,
        "Service",
        f"{RABBITMQ}-{ADMIN}",
        _of_cluster(build_broker_admin_service),
        _own_broker,
    ),
    Child(Role.BROKER, "StatefulSet", RABBITMQ, _of_cluster(build_broker_statefulset), _own_broker),
    Child(
        Role.BROKER_BUDGET,
        "PodDisruptionBudget",
        RABBITMQ,
        _of_cluster(build_broker_budget),
        _own_broker,
    ),
    Child(
        Role.BROKER_NETWORK_POLICY,
        "NetworkPolicy",
        RABBITMQ,
        build_broker_network_policy,
        _own_broker,
    ),
    Child(Role.BACKEND_SERVICE, "Service", BACKEND, _of_cluster(build_backend_service), _always),
    Child(Role.BACKEND, "Deployment", BACKEND, build_backend_deployment, _always),
    Child(
        Role.BACKEND_AUTOSCALER,
        "HorizontalPodAutoscaler",
        BACKEND,
        _of_cluster(build_backend_autoscaler),
        _autoscaling,
    ),
    Child(
        Role.BACKEND_BUDGET,
        "PodDisruptionBudget",
        BACKEND,
        _of_cluster(build_backend_budget),
        _always,
    ),
    Child(
        Role.BACKEND_NETWORK_POLICY,
        "NetworkPolicy",
        BACKEND,
        build_backend_network_policy,
        _always,
    ),
    Child(Role.FRONTEND_SERVICE, "Service", FRONTEND, _of_cluster(build_frontend_service), _always),
    Child(Role.FRONTEND, "Deployment", FRONTEND, _of_cluster(build_frontend_deployment), _always),
    Child(
        Role.FRONTEND_BUDGET,
        "PodDisruptionBudget",
        FRONTEND,
        _of_cluster(build_frontend_budget),
        _always,
    ),
    Child(
        Role.FRONTEND_NETWORK_POLICY,
        "NetworkPolicy",
        FRONTEND,
        _of_cluster(build_frontend_network_policy),
        _always,
    ),
)

BY_ROLE: dict[Role, Child] = {child.role: child for child in CHILDREN}
