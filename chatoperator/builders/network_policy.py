"""The NetworkPolicies: only backend pods reach the broker's AMQP and stream ports, and only the
operator its management API (``<name>-rabbitmq``); only the frontend pods and the operator reach
the backends (``<name>-backend``)."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.inputs import BuildInput
from chatoperator.builders.meta import (
    BACKEND,
    FRONTEND,
    RABBITMQ,
    child_name,
    metadata,
    selector_labels,
)
from chatoperator.builders.network import (
    AMQP_PORT,
    BACKEND_PORT,
    DISTRIBUTION_PORT,
    EPMD_PORT,
    MANAGEMENT_PORT,
    STREAM_PORT,
    STREAM_REPLICATION_PORTS,
)
from chatoperator.spec import Cluster


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _ingress_policy(
    cluster: Cluster, component: str, ingress: list[dict[str, Any]]
) -> dict[str, Any]:
    """The policy ``<name>-<component>``: the component's pods admit only ``ingress``."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(cluster, name=child_name(cluster, component), component=component),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(cluster, component)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def build_broker_network_policy(inp: BuildInput) -> dict[str, Any]:
    cluster = inp.cluster
    rules: list[dict[str, Any]] = [
        {
            "from": [{"podSelector": {"matchLabels": selector_labels(cluster, BACKEND)}}],
            "ports": _tcp(AMQP_PORT, STREAM_PORT),
        },
        # Broker nodes talk to each other to form and keep the cluster, and leaders
        # replicate each stream to its followers.
        {
            "from": [{"podSelector": {"matchLabels": selector_labels(cluster, RABBITMQ)}}],
            "ports": [
                *_tcp(EPMD_PORT, DISTRIBUTION_PORT, AMQP_PORT, STREAM_PORT),
                {
                    "protocol": "TCP",
                    "port": STREAM_REPLICATION_PORTS[0],
                    "endPort": STREAM_REPLICATION_PORTS[1],
                },
            ],
        },
    ]
    # The operator keeps the room streams' policy through the management API.
    operator = _operator_pods(inp)
    if operator:
        rules.append({"from": operator, "ports": _tcp(MANAGEMENT_PORT)})
    return _ingress_policy(cluster, RABBITMQ, rules)


OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "chatcluster-operator"}
"""The labels of the operator's pods in deploy/operator.yaml."""


def _operator_pods(inp: BuildInput) -> list[dict[str, Any]]:
    """The operator's pods as a NetworkPolicy peer; none for an operator outside the cluster."""
    if inp.operator_namespace is None:
        return []
    return [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": inp.operator_namespace}
            },
            "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
        }
    ]


def build_backend_network_policy(inp: BuildInput) -> dict[str, Any]:
    """Clients reach the backends through the frontends only, and `/api/stats` (room names
    included) stays inside: the frontend pods may connect, and the operator's pods in their
    namespace. The kubelet's probes come from the node, which NetworkPolicy does not filter;
    anything else that should reach a backend (a metrics scraper) needs a policy of its own,
    since policies add up."""
    cluster = inp.cluster
    peers = [
        {"podSelector": {"matchLabels": selector_labels(cluster, FRONTEND)}},
        *_operator_pods(inp),
    ]
    return _ingress_policy(cluster, BACKEND, [{"from": peers, "ports": _tcp(BACKEND_PORT)}])
