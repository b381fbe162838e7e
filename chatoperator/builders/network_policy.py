"""The NetworkPolicy ``<name>-rabbitmq``: only backend pods reach the broker."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.meta import BACKEND, RABBITMQ, child_name, metadata, selector_labels
from chatoperator.builders.network import (
    AMQP_PORT,
    DISTRIBUTION_PORT,
    EPMD_PORT,
    STREAM_PORT,
    STREAM_REPLICATION_PORTS,
)
from chatoperator.spec import Cluster


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def build_broker_network_policy(cluster: Cluster) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(cluster, name=child_name(cluster, RABBITMQ), component=RABBITMQ),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(cluster, RABBITMQ)},
            "policyTypes": ["Ingress"],
            "ingress": [
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
            ],
        },
    }
