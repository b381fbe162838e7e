"""One pure function per condition type, in the shape of ``metav1.Condition``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chatoperator.builders.broker_policy import POLICY_NAME
from chatoperator.status.observed import Observed, WorkloadState

Condition = dict[str, Any]

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
BROKER_READY = "BrokerReady"
ROOM_RETENTION = "RoomRetention"


def _condition(
    kind: str,
    ok: bool | None,
    reason: str,
    message: str,
    *,
    observed: Observed,
    previous: Mapping[str, Any] | None,
    now: str,
) -> Condition:
    status = "Unknown" if ok is None else "True" if ok else "False"
    # lastTransitionTime moves only when the status flips, so an unchanged condition is an
    # unchanged status and the pass writes nothing.
    unchanged = previous is not None and previous.get("status") == status
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": previous["lastTransitionTime"] if unchanged and previous else now,
        "observedGeneration": observed.generation,
    }


def _count(name: str, state: WorkloadState) -> str:
    return f"{name} {state.ready}/{state.desired} ready"


def compute_broker_ready(
    observed: Observed, previous: Mapping[str, Any] | None, now: str
) -> Condition:
    broker = observed.broker
    if broker is None:
        ok, reason, message = True, "ExternalBroker", "using the broker of rabbitmq.external"
    elif broker.all_ready and (split := _split(observed)):
        ok, reason, message = False, "NotClustered", split
    elif observed.broker_visit is not None and observed.broker_visit.alarms:
        ok, reason = False, "ResourceAlarm"
        message = (
            "RabbitMQ blocks every publisher while a resource alarm is in force: "
            + ", ".join(observed.broker_visit.alarms)
        )
    elif broker.all_ready:
        ok, reason, message = True, "AllNodesReady", _count("rabbitmq", broker)
    else:
        ok, reason, message = False, "NodesNotReady", _count("rabbitmq", broker)
        if observed.broker_pod_problems:
            message += ": " + "; ".join(observed.broker_pod_problems)
    return _condition(
        BROKER_READY, ok, reason, message, observed=observed, previous=previous, now=now
    )


def compute_room_retention(
    observed: Observed, previous: Mapping[str, Any] | None, now: str
) -> Condition:
    retention, visit = observed.retention, observed.broker_visit
    ok: bool | None
    if retention.policy_digest is None:
        ok, reason, message = (
            True,
            "StreamArguments",
            f"each new room stream keeps {retention.summary} (its own arguments); rooms made"
            " before a change keep theirs unless a policy on the broker says otherwise",
        )
    elif visit is None or visit.body_digest != retention.policy_digest:
        waiting = observed.broker is not None and not observed.broker.all_ready
        ok = None
        reason = "BrokerNotReady" if waiting else "Applying"
        message = f"{retention.summary} per room, waiting for " + (
            "the broker" if waiting else "the policy to be applied"
        )
    elif visit.applied:
        ok, reason = True, "Applied"
        message = f"every room stream keeps {retention.summary} (policy {POLICY_NAME})"
    else:
        ok, reason, message = False, visit.reason, visit.message
    return _condition(
        ROOM_RETENTION, ok, reason, message, observed=observed, previous=previous, now=now
    )


def _split(observed: Observed) -> str:
    """Why the broker's pods, though up, do not form one cluster; empty when they do (or when
    nothing says otherwise). A node that booted while it could not reach its peers forms a
    cluster of its own, which a TCP probe cannot tell: only a visit that got an answer can."""
    visit, broker = observed.broker_visit, observed.broker
    if broker is None or visit is None or not visit.running_nodes:
        return ""
    if len(visit.running_nodes) >= broker.desired:
        return ""
    return (
        f"every rabbitmq pod is ready, but the node that answered lists"
        f" {len(visit.running_nodes)} of {broker.desired} running: {', '.join(visit.running_nodes)}"
    )


def compute_progressing(
    observed: Observed, previous: Mapping[str, Any] | None, now: str
) -> Condition:
    rolling = [
        name
        for name, state in _workloads(observed)
        if not (
            state.current and state.updated >= state.desired and state.replicas <= state.desired
        )
    ]
    if rolling:
        ok, reason, message = True, "RollingOut", "rolling out: " + ", ".join(rolling)
    else:
        ok, reason, message = False, "RolloutComplete", "every workload runs the current spec"
    return _condition(
        PROGRESSING, ok, reason, message, observed=observed, previous=previous, now=now
    )


def compute_degraded(observed: Observed, previous: Mapping[str, Any] | None, now: str) -> Condition:
    failure = observed.failure
    if failure is not None:
        ok, reason, message = True, failure.reason, failure.message
    else:
        ok, reason, message = False, "Reconciled", "the desired state is applied"
    return _condition(DEGRADED, ok, reason, message, observed=observed, previous=previous, now=now)


def compute_ready(observed: Observed, previous: Mapping[str, Any] | None, now: str) -> Condition:
    not_ready = [name for name, state in _workloads(observed) if not state.all_ready]
    if observed.failure is not None:
        ok, reason, message = False, observed.failure.reason, observed.failure.message
    elif not_ready:
        details = ", ".join(_count(name, state) for name, state in _workloads(observed))
        ok, reason, message = False, "ReplicasNotReady", details
    elif split := _split(observed):
        ok, reason, message = False, "BrokerNotClustered", split
    else:
        ok, reason, message = True, "AllReplicasReady", "every workload is ready"
    return _condition(READY, ok, reason, message, observed=observed, previous=previous, now=now)


def _workloads(observed: Observed) -> list[tuple[str, WorkloadState]]:
    workloads = [("rabbitmq", observed.broker)] if observed.broker is not None else []
    return [*workloads, ("backend", observed.backend), ("frontend", observed.frontend)]


ConditionFunction = Callable[[Observed, Mapping[str, Any] | None, str], Condition]

CONDITIONS: tuple[tuple[str, ConditionFunction], ...] = (
    (READY, compute_ready),
    (PROGRESSING, compute_progressing),
    (DEGRADED, compute_degraded),
    (BROKER_READY, compute_broker_ready),
    (ROOM_RETENTION, compute_room_retention),
)
"""Every condition the operator sets, in the order they appear in ``status.conditions``."""
