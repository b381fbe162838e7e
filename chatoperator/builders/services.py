"""The Services: backend and frontend, and the broker's three: its clients', its nodes' (headless)
and its administrator's (the management API, which the operator alone uses)."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.broker_config import headless_service_name
from chatoperator.builders.meta import (
    ADMIN,
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
    PROMETHEUS_PORT,
    STREAM_PORT,
)
from chatoperator.spec import Cluster


def _port(name: str, port: int, target: int | str | None = None) -> dict[str, Any]:
    return {"name": name, "port": port, "targetPort": target or port, "protocol": "TCP"}


def _service(
    cluster: Cluster, component: str, *, name: str, ports: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    """A Service selecting `component`'s pods; `spec` holds what tells them apart."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(cluster, name=name, component=component),
        "spec": {**spec, "selector": selector_labels(cluster, component), "ports": ports},
    }


def build_backend_service(cluster: Cluster) -> dict[str, Any]:
    return _service(
        cluster,
        BACKEND,
        name=child_name(cluster, BACKEND),
        type="ClusterIP",
        ports=[_port("http", BACKEND_PORT, "http")],
    )


def build_frontend_service(cluster: Cluster) -> dict[str, Any]:
    frontend = cluster.spec.frontend
    return _service(
        cluster,
        FRONTEND,
        name=child_name(cluster, FRONTEND),
        type=frontend.service_type,
        ports=[_port("http", frontend.service_port, "http")],
    )


def build_broker_service(cluster: Cluster) -> dict[str, Any]:
    return _service(
        cluster,
        RABBITMQ,
        name=child_name(cluster, RABBITMQ),
        type="ClusterIP",
        ports=[
            _port("amqp", AMQP_PORT),
            _port("stream", STREAM_PORT),
            _port("prometheus", PROMETHEUS_PORT),
        ],
    )


def broker_admin_service_name(cluster: Cluster) -> str:
    return f"{child_name(cluster, RABBITMQ)}-{ADMIN}"


def build_broker_admin_service(cluster: Cluster) -> dict[str, Any]:
    """The management API, apart from the clients' Service: what the backends are given names
    no administration port. It routes to ready nodes only (any answers for the cluster), and
    the broker's NetworkPolicy admits only the operator's pods to it."""
    return _service(
        cluster,
        RABBITMQ,
        name=broker_admin_service_name(cluster),
        type="ClusterIP",
        ports=[_port("management", MANAGEMENT_PORT)],
    )


def build_broker_headless_service(cluster: Cluster) -> dict[str, Any]:
    return _service(
        cluster,
        RABBITMQ,
        name=headless_service_name(cluster),
        clusterIP="None",
        # Nodes must resolve each other while still starting, before any is ready.
        publishNotReadyAddresses=True,
        ports=[
            _port("epmd", EPMD_PORT),
            _port("cluster-links", DISTRIBUTION_PORT),
            _port("amqp", AMQP_PORT),
        ],
    )
