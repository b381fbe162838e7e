"""Why a broker pod is not ready, as BrokerReady's message says it: short, stable, actionable."""

from __future__ import annotations

from typing import Any

from chatoperator.status.pods import MAX_DETAIL_CHARS, pod_problem, pod_problems


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


READY = {"type": "Ready", "status": "True"}


def test_a_ready_pod_has_no_problem() -> None:
    ready = pod(
        "b-0",
        phase="Running",
        conditions=[READY],
        containerStatuses=[{"name": "rabbitmq", "ready": True, "state": {"running": {}}}],
    )
    assert pod_problem(ready) is None


def test_an_unschedulable_pod_gives_the_schedulers_verdict() -> None:
    pending = pod(
        "b-1",
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }
        ],
    )
    assert pod_problem(pending) == (
        "b-1: Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."
    )


def test_a_failing_init_container_is_named_and_a_finished_one_is_not() -> None:
    failing = pod(
        "b-2",
        phase="Pending",
        initContainerStatuses=[
            {
                "name": "copy-erlang-cookie",
                "ready": False,
                "state": {
                    "terminated": {"exitCode": 1, "reason": "Error", "message": "cp: denied"}
                },
            }
        ],
    )
    assert pod_problem(failing) == "b-2: copy-erlang-cookie last exit 1 (Error), cp: denied"
    finished = pod(
        "b-3",
        phase="Running",
        initContainerStatuses=[
            {"name": "copy-erlang-cookie", "ready": False, "state": {"terminated": {"exitCode": 0}}}
        ],
        containerStatuses=[{"name": "rabbitmq", "ready": False, "state": {"running": {}}}],
    )
    assert pod_problem(finished) == "b-3: rabbitmq running, not ready"


def test_a_config_error_keeps_its_message_and_a_long_log_line_is_cut() -> None:
    config = pod(
        "b-4",
        phase="Pending",
        containerStatuses=[
            {
                "name": "rabbitmq",
                "ready": False,
                "state": {
                    "waiting": {
                        "reason": "CreateContainerConfigError",
                        "message": 'secret "b-rabbitmq" not found',
                    }
                },
                "lastState": {"terminated": {"exitCode": 2, "message": "x" * 1000}},
            }
        ],
    )
    line = pod_problem(config)
    assert line is not None
    assert line.startswith(
        'b-4: rabbitmq CreateContainerConfigError, secret "b-rabbitmq" not found, last exit 2'
    )
    assert line.endswith("x" * MAX_DETAIL_CHARS)
    assert "x" * (MAX_DETAIL_CHARS + 1) not in line


def test_problems_come_in_name_order_and_skip_ready_pods() -> None:
    ready = pod("b-0", phase="Running", conditions=[READY])
    terminating = {"metadata": {"name": "b-1", "deletionTimestamp": "now"}, "status": {}}
    unknown = pod("b-2")
    assert pod_problems([unknown, terminating, ready]) == (
        "b-1: terminating",
        "b-2: Unknown, not ready",
    )
