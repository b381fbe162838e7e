"""The ConfigMap ``<name>-rabbitmq``: rabbitmq.conf, advanced.config and enabled_plugins for the
broker pods (mounted as /etc/rabbitmq, where RabbitMQ looks for all three)."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.broker_capacity import MEMORY_HIGH_WATERMARK_PERCENT
from chatoperator.builders.meta import NODES, RABBITMQ, child_name, metadata
from chatoperator.builders.network import AMQP_PORT, STREAM_REPLICATION_PORTS
from chatoperator.spec import Cluster

# Streams hold the chat history; the stream plugin adds their native protocol on 5552 (the chat
# server itself reads streams over AMQP 0.9.1, which needs no plugin).
ENABLED_PLUGINS = "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_stream].\n"


def headless_service_name(cluster: Cluster) -> str:
    return f"{child_name(cluster, RABBITMQ)}-{NODES}"


def node_name(cluster: Cluster, ordinal: int) -> str:
    """The Erlang node name of StatefulSet pod ``ordinal``: stable across restarts."""
    pod = f"{child_name(cluster, RABBITMQ)}-{ordinal}"
    return f"rabbit@{pod}.{headless_service_name(cluster)}.{cluster.namespace}"


def node_settings(cluster: Cluster) -> str:
    """What a running node reads only at boot: a change restarts the nodes (the StatefulSet's
    config hash covers it).

    RabbitMQ 3.10 does not read a cgroup v1 memory limit: it took the host's memory (10 GB of a
    24 GiB machine, measured in a 512Mi pod), so it would be OOM-killed long before any alarm.
    The container's memory is therefore given (``total_memory_available_override_value``),
    with the watermark ``broker_capacity`` sizes the rooms against."""
    return "\n".join(
        [
            f"listeners.tcp.default = {AMQP_PORT}",
            "log.console = true",
            "log.file = false",
            "cluster_formation.peer_discovery_backend = classic_config",
            "queue_leader_locator = balanced",
            f"total_memory_available_override_value = {cluster.spec.rabbitmq.memory_bytes}",
            f"vm_memory_high_watermark.relative = {MEMORY_HIGH_WATERMARK_PERCENT / 100}",
            "",
        ]
    )


def advanced_config() -> str:
    """Erlang terms for what rabbitmq.conf cannot say (read at boot, like `node_settings`)."""
    low, high = STREAM_REPLICATION_PORTS
    return f"[{{osiris, [{{port_range, {{{low}, {high}}}}}]}}].\n"


def peer_nodes(cluster: Cluster) -> str:
    """Every node by its stable name, so forming the cluster needs no Kubernetes API access (and
    no RBAC) from the broker pods. Only a booting node reads the list, to find a peer to join;
    nodes already clustered ignore it. So it stays out of the config hash: scaling 1 -> 3 only
    starts the new nodes, which join the running one, and restarts no existing node (whose
    history, on an emptyDir, a restart would wipe)."""
    return "".join(
        f"cluster_formation.classic_config.nodes.{i + 1} = {node_name(cluster, i)}\n"
        for i in range(cluster.spec.rabbitmq.replicas)
    )


def rabbitmq_conf(cluster: Cluster) -> str:
    return node_settings(cluster) + peer_nodes(cluster)


def build_broker_config(cluster: Cluster) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(cluster, name=child_name(cluster, RABBITMQ), component=RABBITMQ),
        "data": {
            "rabbitmq.conf": rabbitmq_conf(cluster),
            "advanced.config": advanced_config(),
            "enabled_plugins": ENABLED_PLUGINS,
        },
    }
