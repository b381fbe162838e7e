"""The kopf handlers: each takes kopf's arguments and hands over to ``Runtime``.

No finalizers anywhere (no delete handlers, no timers or daemons): ownerReferences let the
garbage collector remove the children, so ``kubectl delete chatcluster`` never waits for the
operator.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

from chatoperator.builders.meta import MANAGED_BY, MANAGED_BY_LABEL
from chatoperator.errors import TransientError
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


@kopf.on.resume(*CLUSTERS)
@kopf.on.create(*CLUSTERS)
@kopf.on.update(*CLUSTERS)
def reconcile_cluster(
    namespace: str | None, name: str, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    runtime = _runtime(memo)
    try:
        result = runtime.run_pass((str(namespace), name))
    except TransientError as error:
        delay = runtime.settings.retry_delay(retry)
        raise kopf.TemporaryError(str(error), delay=delay) from error
    if result is not None and result.failure:
        # In status and events already; retried on the next spec change or resync, not here.
        raise kopf.PermanentError(result.failure)


@kopf.on.event(*CLUSTERS)
async def track_cluster(
    type: str, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    known = _runtime(memo).known
    key = (str(namespace), name)
    if type == "DELETED":
        known.discard(key)
    else:
        known.add(key)


async def requeue_owner(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child changed (or vanished): queue a pass of the ChatCluster that controls it."""
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("controller"):
            _runtime(memo).queue.add((str(body.metadata.namespace), str(ref["name"])))


for _group_version, _plural in CHILD_RESOURCES:
    kopf.on.event(
        _group_version, _plural, labels={MANAGED_BY_LABEL: MANAGED_BY}, id=f"child-{_plural}"
    )(requeue_owner)
