"""The NetworkPolicies, one per component, each for ingress and (unless
``networkPolicy.egress`` is false) egress: ``<name>-rabbitmq`` (backends, the other broker
nodes and, on the management port, the operator in; the other broker nodes out),
``<name>-backend`` (frontends, the operator and a
metrics scraper in; the broker out) and ``<name>-frontend`` (anyone on its port in; the
backends out). Every egress policy also admits DNS."""

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
    AMQPS_PORT,
    BACKEND_PORT,
    DISTRIBUTION_PORT,
    EPMD_PORT,
    FRONTEND_PORT,
    MANAGEMENT_PORT,
    STREAM_PORT,
    STREAM_REPLICATION_PORTS,
)
from chatoperator.spec import Cluster

Rule = dict[str, Any]

CLUSTER_DNS_PODS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
"""The cluster DNS pods under their conventional labels (kubeadm, kind, the managed clouds)."""


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _pods(cluster: Cluster, component: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": selector_labels(cluster, component)}}


def _policy(
    cluster: Cluster, component: str, *, ingress: list[Rule], egress: list[Rule]
) -> dict[str, Any]:
    """The policy ``<name>-<component>``: the component's pods admit only ``ingress`` and, when
    the spec limits egress, connect only to ``egress`` and DNS."""
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(cluster, component)},
        "policyTypes": ["Ingress"],
        "ingress": ingress,
    }
    if cluster.spec.network_policy.egress:
        spec["policyTypes"] = ["Ingress", "Egress"]
        spec["egress"] = [
            *egress,
            # Every port of the DNS pods: the Service's port 53 may map to another (an
            # unprivileged CoreDNS), and policies see the pod's. Port 53 anywhere for a DNS
            # server that is no such pod (a node-local cache).
            {"to": [CLUSTER_DNS_PODS]},
            {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(cluster, name=child_name(cluster, component), component=component),
        "spec": spec,
    }


# Broker nodes talk to each other to form and keep the cluster, and leaders replicate each
# stream to its followers.
_BETWEEN_BROKER_NODES = [
    *_tcp(EPMD_PORT, DISTRIBUTION_PORT, AMQP_PORT, STREAM_PORT),
    {
        "protocol": "TCP",
        "port": STREAM_REPLICATION_PORTS[0],
        "endPort": STREAM_REPLICATION_PORTS[1],
    },
]


def build_broker_network_policy(inp: BuildInput) -> dict[str, Any]:
    cluster = inp.cluster
    peers = [_pods(cluster, RABBITMQ)]
    ingress = [
        {"from": [_pods(cluster, BACKEND)], "ports": _tcp(AMQP_PORT, STREAM_PORT)},
        {"from": peers, "ports": _BETWEEN_BROKER_NODES},
    ]
    # The operator keeps the room policy and the queue limit through the management API.
    operator = _operator_pods(inp)
    if operator:
        ingress.append({"from": operator, "ports": _tcp(MANAGEMENT_PORT)})
    return _policy(
        cluster, RABBITMQ, ingress=ingress, egress=[{"to": peers, "ports": _BETWEEN_BROKER_NODES}]
    )


def build_frontend_network_policy(cluster: Cluster) -> dict[str, Any]:
    """Browsers reach the frontends from anywhere (through the Service, a load balancer or a
    node port); the frontends reach only the backends."""
    return _policy(
        cluster,
        FRONTEND,
        ingress=[{"ports": _tcp(FRONTEND_PORT)}],
        egress=[{"to": [_pods(cluster, BACKEND)], "ports": _tcp(BACKEND_PORT)}],
    )


OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "chatcluster-operator"}
"""The labels of the operator's pods in deploy/base/operator.yaml."""


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
    namespace; ``networkPolicy.metricsScraper`` may read the metrics, which share the port. The
    kubelet's probes come from the node, which NetworkPolicy does not filter. Out, the backends
    reach only their broker: the operator's broker pods, or an external one anywhere on the
    AMQP ports (its address is in a Secret only the pods read)."""
    cluster = inp.cluster
    peers = [_pods(cluster, FRONTEND), *_operator_pods(inp)]
    ingress = [{"from": peers, "ports": _tcp(BACKEND_PORT)}]
    scraper = cluster.spec.network_policy.scraper
    if scraper is not None:
        peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(scraper.pod_labels)}}
        if scraper.namespace_labels is not None:
            peer["namespaceSelector"] = {"matchLabels": dict(scraper.namespace_labels)}
        ingress.append({"from": [peer], "ports": _tcp(BACKEND_PORT)})
    broker: Rule = (
        {"ports": _tcp(AMQP_PORT, AMQPS_PORT)}
        if cluster.external_broker
        # The ports the broker admits backends on (its policy above).
        else {"to": [_pods(cluster, RABBITMQ)], "ports": _tcp(AMQP_PORT, STREAM_PORT)}
    )
    return _policy(cluster, BACKEND, ingress=ingress, egress=[broker])
