"""The one way into a pass: the work queue, the retry policy and the per-cluster state, with the
pass itself replaced by a script (no API server)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatoperator.errors import InvalidSpec, NotPermitted, TransientError
from chatoperator.reconcile import PassResult
from chatoperator.runtime import Key, Runtime, WorkQueue, needs_pass
from chatoperator.settings import OperatorSettings
from chatoperator.spec import Images

KEY: Key = ("ns", "demo")
SETTINGS = OperatorSettings(
    images=Images(chatserver="c", rabbitmq="r"),
    retry_delay_seconds=0.01,
    max_retry_delay_seconds=0.04,
)
OK = PassResult(phase="Ready", writes=0)


class ScriptedRuntime(Runtime):
    """Each pass takes the next outcome of a script: a PassResult, None or an exception."""

    def __init__(self, outcomes: list[Any]) -> None:
        super().__init__(kube=None, settings=SETTINGS)  # type: ignore[arg-type]
        self.outcomes = outcomes
        self.passes: list[tuple[Key, int | None]] = []
        self.handled = 0
        self.handled_event = asyncio.Event()

    def run_pass(self, key: Key, *, users_online: int | None = None) -> PassResult | None:
        self.passes.append((key, users_online))
        outcome = self.outcomes.pop(0) if self.outcomes else OK
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    async def _pass(self, key: Key, users_online: int | None) -> None:
        await super()._pass(key, users_online)
        self.handled += 1
        self.handled_event.set()

    async def until_passes(self, count: int) -> None:
        """Until the ``count``th pass has run and the worker has dealt with its outcome."""
        async with asyncio.timeout(5):
            while self.handled < count:
                self.handled_event.clear()
                await self.handled_event.wait()


@pytest.fixture
async def working() -> AsyncIterator[Callable[[list[Any]], ScriptedRuntime]]:
    tasks: list[asyncio.Task[None]] = []

    def start(outcomes: list[Any]) -> ScriptedRuntime:
        runtime = ScriptedRuntime(outcomes)
        tasks.append(asyncio.create_task(runtime.work()))
        return runtime

    yield start
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_key_queued_twice_before_its_pass_runs_once() -> None:
    queue = WorkQueue()
    queue.add(KEY)
    queue.add(KEY, users_online=3)
    assert await queue.get() == (KEY, 3)
    queue.done(KEY)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await queue.get()


async def test_a_key_queued_during_its_pass_runs_once_more_after_it() -> None:
    queue = WorkQueue()
    queue.add(KEY)
    await queue.get()
    queue.add(KEY)
    queue.add(KEY, users_online=5)
    with pytest.raises(TimeoutError):  # never twice at once
        async with asyncio.timeout(0.05):
            await queue.get()
    queue.done(KEY)
    assert await queue.get() == (KEY, 5)


@pytest.mark.parametrize(
    ("event_type", "body", "expected"),
    [
        (None, {"metadata": {"generation": 3}, "status": {"observedGeneration": 3}}, True),
        ("ADDED", {"metadata": {"generation": 1}}, True),
        ("MODIFIED", {"metadata": {"generation": 2}, "status": {"observedGeneration": 1}}, True),
        ("MODIFIED", {"metadata": {"generation": 2}, "status": {"observedGeneration": 2}}, False),
    ],
    ids=["initial-listing", "added", "spec-changed", "own-status-write"],
)
def test_a_pass_follows_a_new_cluster_or_spec_not_a_status_write(
    event_type: str | None, body: dict[str, Any], expected: bool
) -> None:
    assert needs_pass(event_type, body) is expected


@pytest.mark.parametrize(
    "failure",
    [
        TransientError("HTTP 503"),
        NotPermitted("forbidden"),
        PassResult(phase="Degraded", writes=1, failure="may not", retry=True),
    ],
    ids=["transient", "not-permitted-before-status", "not-permitted-in-status"],
)
async def test_a_failure_the_spec_cannot_fix_is_retried_with_backoff(
    working: Callable[[list[Any]], ScriptedRuntime], failure: Any
) -> None:
    runtime = working([failure, failure, OK])
    runtime.queue.add(KEY)
    await runtime.until_passes(3)
    assert runtime._failures == {}
    assert runtime._retries == {}


@pytest.mark.parametrize(
    "outcome",
    [InvalidSpec("malformed"), PassResult(phase="Degraded", writes=1, failure="bad spec")],
    ids=["unparseable", "in-status"],
)
async def test_an_invalid_spec_waits_for_the_next_change(
    working: Callable[[list[Any]], ScriptedRuntime], outcome: Any
) -> None:
    runtime = working([outcome])
    runtime.queue.add(KEY)
    await runtime.until_passes(1)
    await asyncio.sleep(0.1)  # several retry delays
    assert len(runtime.passes) == 1
    assert runtime._retries == {}


async def test_a_bug_is_retried_at_the_longest_delay(
    working: Callable[[list[Any]], ScriptedRuntime],
) -> None:
    runtime = working([RuntimeError("bug")])
    runtime.queue.add(KEY)
    await runtime.until_passes(1)
    retry = runtime._retries[KEY]
    delay = retry.when() - asyncio.get_running_loop().time()
    assert 0 < delay <= SETTINGS.max_retry_delay_seconds
    await runtime.until_passes(2)


async def test_a_deleted_cluster_leaves_no_state(
    working: Callable[[list[Any]], ScriptedRuntime],
) -> None:
    slow = OperatorSettings(images=SETTINGS.images, retry_delay_seconds=60)
    runtime = working([TransientError("HTTP 503")])
    runtime.settings = slow
    runtime.cluster_seen(KEY, event_type=None, body={"metadata": {}})
    await runtime.until_passes(1)
    assert (KEY in runtime.known, KEY in runtime._failures, KEY in runtime._retries) == (
        True,
        True,
        True,
    )
    runtime.forget(KEY)
    assert (runtime.known, runtime._failures, runtime._retries) == (set(), {}, {})


async def test_a_pass_that_finds_the_cluster_gone_forgets_it(
    working: Callable[[list[Any]], ScriptedRuntime],
) -> None:
    runtime = working([None])
    runtime.cluster_seen(KEY, event_type="ADDED", body={"metadata": {}})
    await runtime.until_passes(1)
    assert runtime.known == set()
