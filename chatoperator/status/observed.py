"""What a pass saw of the world, reduced to the facts the conditions are computed from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkloadState:
    """A Deployment's or StatefulSet's progress, read from its status."""

    exists: bool
    desired: int
    replicas: int
    ready: int
    updated: int
    current: bool
    """The workload controller has seen the latest spec (observedGeneration caught up)."""

    @property
    def all_ready(self) -> bool:
        return (
            self.exists
            and self.current
            and self.ready >= self.desired
            and (self.updated >= self.desired)
        )


MISSING = WorkloadState(exists=False, desired=0, replicas=0, ready=0, updated=0, current=False)


def workload_state(obj: Mapping[str, Any] | None) -> WorkloadState:
    if obj is None:
        return MISSING
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation", 0)
    return WorkloadState(
        exists=True,
        desired=int(spec.get("replicas", 1)),
        replicas=int(status.get("replicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        updated=int(status.get("updatedReplicas", 0)),
        current=int(status.get("observedGeneration", 0)) >= int(generation),
    )


@dataclass(frozen=True)
class Failure:
    """Why the last pass could not apply the desired state."""

    reason: str
    """``InvalidSpec`` (the spec, or an object the API refused) or ``NotPermitted`` (the
    operator's RBAC lacks a permission)."""
    message: str


@dataclass(frozen=True)
class BrokerHeadroom:
    """What one broker node uses of what it may: every stream holds file descriptors and memory
    on every node with a replica of it, idle or not."""

    node: str
    file_descriptors_used: int
    file_descriptors_limit: int
    memory_used_bytes: int
    memory_limit_bytes: int
    """The memory high watermark: past it the node raises a memory alarm."""


@dataclass(frozen=True)
class BrokerVisit:
    """What the operator's last visit to its broker's management API came to: the room policy
    put in place (or why not), and the cluster's nodes as the node that answered saw them."""

    body_digest: str
    """Digest of what the visit applied (``broker_policy.settings_digest``): a visit for an
    older spec says nothing of this one."""
    reason: str
    """``Applied``, or why not: ``Unreachable`` (no answer from the management API) or
    ``Refused`` (it answered with an error)."""
    message: str
    running_nodes: tuple[str, ...] = ()
    """The broker nodes the answering node lists as running (none when it did not answer)."""
    rooms: int | None = None
    """Room streams on the broker (None when it did not answer)."""
    allowed_rooms: int | None = None
    """The rooms the broker may hold: ``chat.maxRooms``, or fewer when its nodes' descriptor
    limit cannot hold that many (None when it did not answer)."""
    alarms: tuple[str, ...] = ()
    """Resource alarms in force (``memory on rabbit@...``): RabbitMQ blocks every publisher."""
    headroom: BrokerHeadroom | None = None
    """The busiest node's file descriptors and memory (None until the node has reported them)."""
    unused_rooms: tuple[str, ...] = ()
    """Room streams nobody follows (those of ``chat.rooms`` left out): candidates to reclaim."""
    reclaimed: tuple[str, ...] = ()
    """Room streams this visit deleted, idle for ``chat.idleRoomSeconds``."""

    @property
    def applied(self) -> bool:
        return self.reason == "Applied"


@dataclass(frozen=True)
class RoomRetention:
    """The room streams' retention: what the spec asks, and how far it got."""

    summary: str
    """What each room keeps, for people: ``2Mi, 7D``."""
    policy_digest: str | None
    """Digest of the policy the operator keeps on its broker; None for an external broker,
    where each new stream's own argument is all the operator sets."""


@dataclass(frozen=True)
class Observed:
    generation: int
    paused: bool
    backend: WorkloadState
    frontend: WorkloadState
    broker: WorkloadState | None
    """None when the cluster uses an external broker."""
    failure: Failure | None
    users_online: int | None
    """From the backends' /api/stats; None when they could not be asked (keeps the old value)."""
    backend_selector: str
    url: str
    retention: RoomRetention
    broker_visit: BrokerVisit | None
    """The operator's last visit to its own broker's management API; None before the first (and
    with an external broker)."""
    broker_pod_problems: tuple[str, ...] = ()
    """Why each not-ready broker pod is not ready (`status.pods`); read only while the broker is
    not all ready."""
