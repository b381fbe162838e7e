"""Pure builders: one function per child object, from a ChatCluster to the desired object.

Belongs here: names, labels, pod templates, hashes. Not here: API calls, logging, randomness,
ownership decisions at runtime (``reconcile.py``). Builders never mutate their input.

The Secret ``<name>-rabbitmq`` is not in ``CHILDREN``: it is created once, never applied
(``broker_secret.py``, ``reconcile.py``).
"""

from __future__ import annotations

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
from chatoperator.builders.network_policy import build_broker_network_policy
from chatoperator.builders.services import (
    build_backend_service,
    build_broker_headless_service,
    build_broker_service,
    build_frontend_service,
)
from chatoperator.spec import Cluster

__all__ = ["CHILDREN", "BuildInput", "Child"]


@dataclass(frozen=True)
class Child:
    build: Callable[[BuildInput], dict[str, Any]]
    wanted: Callable[[Cluster], bool]
    """False: the child must not exist (removed if an earlier spec made it)."""


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


# Dependencies first, so pods never start against objects that do not exist yet: the broker's
# config and Services before its StatefulSet (nodes resolve each other through the headless
# Service at boot), the broker before the backends, the backends before the frontend that
# proxies to them, and the backend Deployment before the HPA that targets it.
CHILDREN: tuple[Child, ...] = (
    Child(_of_cluster(build_broker_config), _own_broker),
    Child(_of_cluster(build_broker_headless_service), _own_broker),
    Child(_of_cluster(build_broker_service), _own_broker),
    Child(_of_cluster(build_broker_statefulset), _own_broker),
    Child(_of_cluster(build_broker_budget), _own_broker),
    Child(_of_cluster(build_broker_network_policy), _own_broker),
    Child(_of_cluster(build_backend_service), _always),
    Child(build_backend_deployment, _always),
    Child(_of_cluster(build_backend_autoscaler), _autoscaling),
    Child(_of_cluster(build_backend_budget), _always),
    Child(_of_cluster(build_frontend_service), _always),
    Child(_of_cluster(build_frontend_deployment), _always),
    Child(_of_cluster(build_frontend_budget), _always),
)
