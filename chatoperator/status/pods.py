"""Why a pod is not ready, in one short line a user can act on (pure: pods as the API returns them).

Only stable facts go into the line (waiting reasons, exit codes, the scheduler's verdict, the
last log line a crashed container left), never counters or back-off delays, so the status a pass
computes stays the same while nothing changes, and the pass writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_DETAIL_CHARS = 200
"""A termination message (a log tail) is cut to its last line, and that line to this length."""


def pod_problem(pod: Mapping[str, Any]) -> str | None:
    """`<pod>: <why>` for a pod that is not ready, None for a ready one."""
    name = pod.get("metadata", {}).get("name", "?")
    status = pod.get("status") or {}
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return f"{name}: terminating"
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False":
        return f"{name}: {scheduled.get('reason', 'not scheduled')}: {scheduled.get('message', '')}"
    containers = [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]
    for container in containers:
        finished = container.get("state", {}).get("terminated", {}).get("exitCode") == 0
        if container.get("ready") or finished:
            continue  # a ready container, or an init container that did its job
        why = _container_problem(container)
        if why:
            return f"{name}: {container.get('name', '?')} {why}"
    if conditions.get("Ready", {}).get("status") == "True":
        return None
    return f"{name}: {status.get('phase', 'Unknown')}, not ready"


def pod_problems(pods: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """One line per pod that is not ready, in name order."""
    ordered = sorted(pods, key=lambda p: str(p.get("metadata", {}).get("name", "")))
    return tuple(line for line in map(pod_problem, ordered) if line is not None)


def _container_problem(container: Mapping[str, Any]) -> str:
    state = container.get("state", {})
    waiting = state.get("waiting")
    last = state.get("terminated") or container.get("lastState", {}).get("terminated")
    parts = []
    if waiting:
        parts.append(str(waiting.get("reason", "waiting")))
        if waiting.get("reason") not in (
            "CrashLoopBackOff",
            "ContainerCreating",
            "PodInitializing",
        ):
            parts.append(_short(waiting.get("message", "")))
    elif "running" in state:
        parts.append("running, not ready")
    if last:
        parts.append(f"last exit {last.get('exitCode', '?')} ({last.get('reason', 'terminated')})")
        parts.append(_short(last.get("message", "")))
    return ", ".join(p for p in parts if p)


def _short(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1][:MAX_DETAIL_CHARS] if lines else ""
