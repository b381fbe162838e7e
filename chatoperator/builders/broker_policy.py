"""What the operator keeps on its own broker: the RabbitMQ policy ``chatcluster-rooms``, the
retention and replica count of every room stream (``spec.rabbitmq.retention``,
``spec.rabbitmq.replicas``), and the virtual host's queue limit (``spec.chat.maxRooms``, or
fewer when the broker's file descriptors or memory cannot hold that many: ``broker_capacity``).

A policy, not the streams' own arguments: arguments are fixed when a stream is declared, while
RabbitMQ applies a changed policy to the streams that exist (measured on 3.10.8: raising and
lowering ``max-length-bytes`` both took effect at the stream's next segment). RabbitMQ keeps the
lesser of a stream's ``x-max-length-bytes`` and the policy's, so the backends declare streams
with the most the CRD allows (``backend_deployment.room_stream_max_bytes``) and this policy
decides. ``initial-cluster-size`` replicates each new stream on every broker node; a stream
keeps the replicas it was made with when nodes are added later.

Not a Kubernetes object: the operator puts it through the broker's management API
(``chatoperator/broker_admin.py``), and only on its own broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chatoperator.builders.broker_capacity import NodeLimits, rooms_within
from chatoperator.builders.broker_secret import VHOST
from chatoperator.builders.meta import chat_cluster_name, digest
from chatoperator.builders.network import MANAGEMENT_PORT
from chatoperator.builders.services import broker_admin_service_name
from chatoperator.spec import Cluster
from chatserver.contract import room_stream_prefix

POLICY_NAME = "chatcluster-rooms"


@dataclass(frozen=True)
class BrokerPolicy:
    """What the operator keeps on its broker: one policy, as the management API takes it
    (``PUT /api/policies/{vhost}/{name}``), and the virtual host's queue limit."""

    management_url: str
    """The broker's management API, through its admin Service: any node answers for the
    cluster."""
    vhost: str
    name: str
    body: dict[str, Any]
    max_rooms: int
    """``chat.maxRooms``; the broker may hold fewer (``rooms_within``)."""
    backends: int
    """The most backends the cluster runs (``autoscaling.maxReplicas``, else ``replicas``)."""
    kept_streams: frozenset[str]
    """The streams of ``chat.rooms``, which always exist: never reclaimed, however idle."""
    idle_room_seconds: int
    """``chat.idleRoomSeconds``: a room stream nobody follows for this long is deleted (0:
    never)."""


def build_room_policy(cluster: Cluster) -> BrokerPolicy | None:
    """The room streams' policy; None for an external broker, which the operator leaves alone."""
    if cluster.external_broker:
        return None
    broker = cluster.spec.rabbitmq
    definition: dict[str, Any] = {
        "max-length-bytes": broker.retention.max_bytes,
        "initial-cluster-size": broker.replicas,
    }
    if broker.retention.max_age is not None:
        definition["max-age"] = broker.retention.max_age
    host = f"{broker_admin_service_name(cluster)}.{cluster.namespace}.svc"
    prefix = room_stream_prefix(chat_cluster_name(cluster))
    return BrokerPolicy(
        management_url=f"http://{host}:{MANAGEMENT_PORT}",
        vhost=VHOST,
        name=POLICY_NAME,
        body={
            "pattern": "^" + re.escape(prefix),
            "apply-to": "queues",
            "definition": definition,
            "priority": 0,
        },
        max_rooms=cluster.spec.chat.max_rooms,
        backends=most_backends(cluster),
        kept_streams=frozenset(prefix + room for room in cluster.spec.chat.rooms),
        idle_room_seconds=cluster.spec.chat.idle_room_seconds,
    )


def settings_digest(policy: BrokerPolicy) -> str:
    """What a visit to the broker applies, in short: a visit for another digest is stale."""
    return digest([policy.body, policy.max_rooms, policy.backends])


def queue_limit(policy: BrokerPolicy, limits: NodeLimits | None) -> tuple[int, int]:
    """(rooms allowed, the virtual host's ``max-queues``), for the smallest limits the broker's
    nodes report (None: not reported yet). The limit counts every queue: the rooms, plus the
    presence queue of each backend connection, twice over for the surge of a rollout; so rooms
    exceed the rooms allowed by no more than the backend slots a cluster leaves unused."""
    rooms = policy.max_rooms
    if limits is not None:
        rooms = min(rooms, rooms_within(limits, policy.backends))
    return rooms, rooms + 2 * policy.backends


def most_backends(cluster: Cluster) -> int:
    backend = cluster.spec.backend
    return backend.autoscaling.max_replicas if backend.autoscaling.enabled else backend.replicas
