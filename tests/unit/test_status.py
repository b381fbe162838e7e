"""Status: conditions, phase and the printer-column fields, from what a pass observed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chatoperator.status import MISSING, Failure, Observed, WorkloadState, compute_status
from chatoperator.status.conditions import compute_ready
from chatoperator.status.observed import BrokerVisit, RoomRetention, workload_state

APPLIED = BrokerVisit(body_digest="d1", reason="Applied", message="", running_nodes=("rabbit@0",))
EARLIER = "2026-01-01T00:00:00Z"
NOW = "2026-01-01T00:05:00Z"


def ready(n: int) -> WorkloadState:
    return WorkloadState(exists=True, desired=n, replicas=n, ready=n, updated=n, current=True)


def observed(**changes: Any) -> Observed:
    base = Observed(
        generation=3,
        paused=False,
        backend=ready(2),
        frontend=ready(1),
        broker=ready(1),
        failure=None,
        users_online=None,
        backend_selector="app.kubernetes.io/instance=demo",
        url="http://demo-frontend.chat.svc:80",
        retention=RoomRetention(summary="2Mi", policy_digest=APPLIED.body_digest),
        broker_visit=APPLIED,
    )
    return replace(base, **changes)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_all_workloads_ready_is_phase_ready() -> None:
    status = compute_status(observed(), {}, NOW)
    assert status["phase"] == "Ready"
    assert {t: c["status"] for t, c in conditions(status).items()} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
        "BrokerReady": "True",
        "RoomRetention": "True",
    }
    assert status["observedGeneration"] == 3
    assert status["backends"] == "2/2"
    assert status["backend"] == {
        "replicas": 2,
        "readyReplicas": 2,
        "selector": "app.kubernetes.io/instance=demo",
    }
    assert status["rabbitmq"] == {"readyReplicas": 1}


def test_nothing_created_yet_is_pending() -> None:
    status = compute_status(observed(backend=MISSING, frontend=MISSING, broker=MISSING), {}, NOW)
    assert status["phase"] == "Pending"


def test_pods_not_ready_is_progressing_and_says_which() -> None:
    starting = WorkloadState(exists=True, desired=2, replicas=2, ready=1, updated=2, current=True)
    status = compute_status(observed(backend=starting), {}, NOW)
    assert status["phase"] == "Progressing"
    assert "backend 1/2 ready" in conditions(status)["Ready"]["message"]
    assert status["backends"] == "1/2"


def test_broker_not_ready_is_reported() -> None:
    booting = WorkloadState(exists=True, desired=3, replicas=3, ready=1, updated=3, current=True)
    broker = conditions(compute_status(observed(broker=booting), {}, NOW))["BrokerReady"]
    assert (broker["status"], broker["reason"]) == ("False", "NodesNotReady")
    assert broker["message"] == "rabbitmq 1/3 ready"


def test_external_broker_is_ready_and_has_no_broker_counts() -> None:
    status = compute_status(observed(broker=None), {}, NOW)
    assert conditions(status)["BrokerReady"]["reason"] == "ExternalBroker"
    assert "rabbitmq" not in status


def test_failure_is_degraded_with_its_reason_and_message() -> None:
    failure = Failure(reason="InvalidSpec", message="Secret shared-broker has no key 'url'")
    status = compute_status(observed(failure=failure), {}, NOW)
    degraded = conditions(status)["Degraded"]
    assert status["phase"] == "Degraded"
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert degraded["message"] == failure.message
    assert conditions(status)["Ready"]["status"] == "False"


def test_paused_wins_over_everything() -> None:
    assert compute_status(observed(paused=True), {}, NOW)["phase"] == "Paused"


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = compute_status(observed(), {}, EARLIER)
    again = compute_status(observed(), first, NOW)
    assert again == first


def test_transition_time_moves_when_the_status_flips() -> None:
    previous = {"type": "Ready", "status": "True", "lastTransitionTime": EARLIER}
    starting = WorkloadState(exists=True, desired=2, replicas=2, ready=0, updated=2, current=True)
    flipped = compute_ready(observed(backend=starting), previous, NOW)
    assert flipped["lastTransitionTime"] == NOW


@pytest.mark.parametrize("users", [None, 7])
def test_users_online_is_kept_when_unknown(users: int | None) -> None:
    status = compute_status(observed(users_online=users), {"usersOnline": 4}, NOW)
    assert status["usersOnline"] == (4 if users is None else 7)


def test_users_online_is_absent_until_first_read() -> None:
    assert "usersOnline" not in compute_status(observed(), {}, NOW)


def test_workload_state_reads_a_deployment() -> None:
    deployment = {
        "metadata": {"generation": 4},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 3,
            "replicas": 3,
            "readyReplicas": 3,
            "updatedReplicas": 3,
        },
    }
    state = workload_state(deployment)
    assert (state.desired, state.ready, state.current) == (3, 3, False)
    assert not state.all_ready
    assert workload_state(None) == MISSING
