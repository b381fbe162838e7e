"""Pure status computation: from what a pass observed to the ChatCluster's ``status``.

Belongs here: conditions, phase, the printer-column summaries. Not here: reading or writing the
API (``reconcile.py`` gathers ``Observed`` and writes the result once per pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatoperator.status.conditions import CONDITIONS, DEGRADED, READY
from chatoperator.status.observed import (
    MISSING,
    Failure,
    Observed,
    WorkloadState,
    workload_state,
)

__all__ = [
    "MISSING",
    "Failure",
    "Observed",
    "WorkloadState",
    "compute_phase",
    "compute_status",
    "workload_state",
]


def compute_phase(observed: Observed, conditions: Mapping[str, Mapping[str, Any]]) -> str:
    if observed.paused:
        return "Paused"
    if conditions[DEGRADED]["status"] == "True":
        return "Degraded"
    if conditions[READY]["status"] == "True":
        return "Ready"
    if observed.backend.exists or observed.frontend.exists:
        return "Progressing"
    return "Pending"


def compute_status(observed: Observed, previous: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The whole status for this pass; ``previous`` is the status the object has now."""
    before = {c["type"]: c for c in previous.get("conditions") or [] if "type" in c}
    computed = [compute(observed, before.get(kind), now) for kind, compute in CONDITIONS]
    by_type = {c["type"]: c for c in computed}
    status: dict[str, Any] = {
        "observedGeneration": observed.generation,
        "phase": compute_phase(observed, by_type),
        "conditions": computed,
        "backend": {
            "replicas": observed.backend.replicas,
            "readyReplicas": observed.backend.ready,
            "selector": observed.backend_selector,
        },
        "frontend": {
            "replicas": observed.frontend.replicas,
            "readyReplicas": observed.frontend.ready,
        },
        "backends": f"{observed.backend.ready}/{observed.backend.desired}",
        "url": observed.url,
    }
    if observed.broker is not None:
        status["rabbitmq"] = {"readyReplicas": observed.broker.ready}
        headroom = observed.broker_visit.headroom if observed.broker_visit else None
        if headroom is not None:
            status["rabbitmq"]["busiestNode"] = {
                "name": headroom.node,
                "fileDescriptors": (
                    f"{headroom.file_descriptors_used}/{headroom.file_descriptors_limit}"
                ),
                "memoryBytes": f"{headroom.memory_used_bytes}/{headroom.memory_limit_bytes}",
            }
    users = (
        observed.users_online if observed.users_online is not None else previous.get("usersOnline")
    )
    if users is not None:
        status["usersOnline"] = users
    visit = observed.broker_visit
    if visit is not None and visit.rooms is not None:
        status["rooms"] = f"{visit.rooms}/{visit.allowed_rooms}"
    elif observed.broker is not None and "rooms" in previous:
        status["rooms"] = previous["rooms"]  # the last count stays until a visit gets another
    return status
