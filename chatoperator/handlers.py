"""The kopf handlers: each takes kopf's arguments and hands over to ``Runtime``.

Only watch-event handlers: whatever happens to a ChatCluster or a child it owns queues a pass,
and ``Runtime``'s workers run every pass (one retry policy, whatever the trigger). kopf therefore
keeps no progress of its own on the objects, and there are no finalizers anywhere (no delete
handlers, no timers or daemons): ownerReferences let the garbage collector remove the children,
so ``kubectl delete chatcluster`` never waits for the operator.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

from chatoperator.builders.meta import MANAGED_BY, MANAGED_BY_LABEL
from chatoperator.runtime import Runtime
from chatoperator.spec import GROUP, KIND, PLURAL, VERSION

CLUSTERS = (GROUP, VERSION, PLURAL)

# Every kind the operator creates: an event on any of them is a reason to look at the owner.
CHILD_RESOURCES = (
    ("v1", "configmaps"),
    ("v1", "services"),
    ("apps/v1", "deployments"),
    ("apps/v1", "statefulsets"),
    ("policy/v1", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("autoscaling/v2", "horizontalpodautoscalers"),
)


def _runtime(memo: Any) -> Runtime:
    return cast(Runtime, memo["runtime"])


@kopf.on.startup()
async def start_loops(memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime(memo)
    memo["loops"] = [asyncio.create_task(runtime.work()), asyncio.create_task(runtime.resync())]


@kopf.on.cleanup()
async def stop_loops(memo: kopf.Memo, **_: Any) -> None:
    loops: list[asyncio.Task[None]] = memo.get("loops", [])
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)


@kopf.on.event(*CLUSTERS)
async def cluster_event(
    type: str | None, body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """The ChatCluster appeared, changed or went: queue a pass, or forget it."""
    key = (str(namespace), name)
    if type == "DELETED":
        _runtime(memo).forget(key)
    else:
        _runtime(memo).cluster_seen(key, event_type=type, body=body)


async def requeue_owner(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child changed (or vanished): queue a pass of the ChatCluster that controls it."""
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("controller"):
            _runtime(memo).queue.add((str(body.metadata.namespace), str(ref["name"])))


for _group_version, _plural in CHILD_RESOURCES:
    kopf.on.event(
        _group_version, _plural, labels={MANAGED_BY_LABEL: MANAGED_BY}, id=f"child-{_plural}"
    )(requeue_owner)
