"""PodDisruptionBudgets: voluntary evictions (node drains) take one pod of a tier at a time."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.meta import (
    BACKEND,
    FRONTEND,
    RABBITMQ,
    child_name,
    metadata,
    selector_labels,
)
from chatoperator.spec import Cluster


def _budget(cluster: Cluster, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(cluster, name=child_name(cluster, component), component=component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(cluster, component)},
        },
    }


def build_backend_budget(cluster: Cluster) -> dict[str, Any]:
    return _budget(cluster, BACKEND)


def build_frontend_budget(cluster: Cluster) -> dict[str, Any]:
    return _budget(cluster, FRONTEND)


def build_broker_budget(cluster: Cluster) -> dict[str, Any]:
    return _budget(cluster, RABBITMQ)
