import dataclasses

import pytest

from bench import sweep
from bench.loadgen import CpuSample, LoadResult
from bench.report import Figures, figures
from bench.scenarios import DEFAULTS, LARGER

RATES = (10.0, 20.0, 40.0)


def row(system: str, *, p99_ms: float, lost: int = 0, refused: int = 0) -> Figures:
    result = LoadResult(
        sent=10,
        acked=10 - refused,
        refused=refused,
        expected=100,
        delivered=100 - lost,
        duplicates=0,
        latencies_ns=[round(p99_ms * 1e6)] * 10,
        wall_seconds=1.0,
        cpu=CpuSample(servers=0.5, broker=0.1, generator=0.2),
        closed_by_server=0,
        join_retries=0,
    )
    return figures(system, result, servers=2, server_peak_rss_bytes=0)


def step(rate: float, p99s: dict[str, float], *, failed: tuple[str, ...] = ()) -> sweep.Step:
    rows = {system: row(system, p99_ms=p99) for system, p99 in p99s.items()}
    return sweep.Step(rate=rate, rows=rows, failed=dict.fromkeys(failed, "timed out"), seconds=60)


def test_the_ladder_doubles_from_its_start() -> None:
    assert sweep.ladder(20.0, 4) == (20.0, 40.0, 80.0, 160.0)


def test_each_sweepable_scenario_starts_at_half_its_fixed_rate() -> None:
    fixed = {s.name: s.rate for s in (*DEFAULTS, *LARGER)}
    assert {name: plan.start for name, plan in sweep.PLANS.items()} == {
        name: fixed[name] / 2 for name in sweep.PLANS
    }


def test_a_rate_holds_at_the_limit_but_not_past_it() -> None:
    assert sweep.holds(row("a", p99_ms=100.0))
    assert not sweep.holds(row("a", p99_ms=100.5))
    assert not sweep.holds(None)


def test_a_lost_delivery_or_a_refused_send_does_not_hold() -> None:
    assert not sweep.holds(row("a", p99_ms=5.0, lost=1))
    assert not sweep.holds(row("a", p99_ms=5.0, refused=1))


CC, MEMORY, PSIO = "chatcluster", "centrifugo-memory", "python-socketio"


def test_the_sweep_goes_on_while_every_system_holds() -> None:
    assert sweep.stop_reason(RATES, [], budget_seconds=600) is None
    done = [step(10.0, {CC: 5.0, MEMORY: 90.0})]
    assert sweep.stop_reason(RATES, done, budget_seconds=600) is None


def test_the_rate_where_a_compared_system_passes_the_limit_is_the_last() -> None:
    done = [step(10.0, {CC: 5.0, MEMORY: 90.0}), step(20.0, {CC: 8.0, MEMORY: 140.0})]
    reason = sweep.stop_reason(RATES, done, budget_seconds=600)
    assert reason == "centrifugo-memory did not hold 20 msg/s"


def test_a_run_that_could_not_be_measured_stops_the_sweep() -> None:
    done = [step(10.0, {MEMORY: 5.0}, failed=(CC,))]
    assert sweep.stop_reason(RATES, done, budget_seconds=600) == "chatcluster did not hold 10 msg/s"


def test_a_peer_outside_the_comparison_that_falls_behind_is_left_out_not_the_end() -> None:
    done = [step(10.0, {CC: 5.0, PSIO: 400.0, MEMORY: 6.0})]
    assert sweep.stop_reason(RATES, done, budget_seconds=600) is None
    systems = [CC, PSIO, MEMORY]
    assert sweep.contenders(systems, done) == [CC, MEMORY]
    assert sweep.contenders(systems, [step(10.0, {CC: 5.0, PSIO: 40.0})]) == systems


def test_the_sweep_ends_with_its_ladder_or_max_steps() -> None:
    done = [step(rate, {"a": 5.0}) for rate in RATES]
    assert sweep.stop_reason(RATES, done, budget_seconds=600) == "every rate held (3 steps)"
    long = tuple(float(rate) for rate in range(1, 20))
    done = [step(rate, {"a": 5.0}) for rate in long[: sweep.MAX_STEPS]]
    assert sweep.stop_reason(long, done, budget_seconds=10_000) is not None


def test_no_step_starts_that_would_end_past_the_budget() -> None:
    done = [step(10.0, {"a": 5.0})]  # 60 s
    assert sweep.stop_reason(RATES, done, budget_seconds=120) is None
    reason = sweep.stop_reason(RATES, done, budget_seconds=119)
    assert reason is not None
    assert reason.startswith("time budget")


def test_the_subject_is_compared_only_where_both_hold() -> None:
    steps = [
        step(10.0, {"chatcluster": 5.0, "centrifugo-memory": 6.0, "centrifugo-redis": 4.0}),
        step(20.0, {"chatcluster": 50.0, "centrifugo-memory": 150.0, "centrifugo-redis": 50.0}),
    ]
    first, second = sweep.summarise(steps)
    assert first.subject_at_or_under == {"centrifugo-memory": True, "centrifugo-redis": False}
    assert second.subject_at_or_under == {"centrifugo-memory": None, "centrifugo-redis": True}
    assert second.held == {
        "chatcluster": True,
        "centrifugo-memory": False,
        "centrifugo-redis": True,
    }


def test_the_summary_keeps_each_systems_efficiency_and_a_failed_run_as_none() -> None:
    (summary,) = sweep.summarise([step(10.0, {"chatcluster": 5.0}, failed=("centrifugo-redis",))])
    assert summary.p99_ms == {"chatcluster": 5.0, "centrifugo-redis": None}
    assert summary.deliveries_per_server_cpu_second["chatcluster"] == pytest.approx(200.0)
    assert summary.deliveries_per_server_cpu_second["centrifugo-redis"] is None
    assert summary.subject_at_or_under == {"centrifugo-redis": None}


def test_the_summary_table_marks_what_did_not_hold_and_what_was_not_compared() -> None:
    steps = [
        step(10.0, {"chatcluster": 5.0, "centrifugo-redis": 6.0}),
        step(20.0, {"chatcluster": 120.0}, failed=("centrifugo-redis",)),
    ]
    systems = ["chatcluster", "centrifugo-redis"]
    lines = sweep.summary_table("one-room", sweep.summarise(steps), systems=systems).splitlines()
    assert lines[1].split()[:4] == ["msg/s", "chatcluster", "p99", "ms"]
    assert lines[2].split() == ["10", "5.0", "6.0", "yes", "200", "200"]
    assert lines[3].split() == ["20", "120.0", "x", "failed", "-", "200", "-"]


def test_the_chart_series_leave_unmeasured_runs_out() -> None:
    steps = [step(10.0, {"a": 5.0, "b": 6.0}), step(20.0, {"a": 7.0}, failed=("b",))]
    assert sweep.p99_series(steps) == {"a": [(10.0, 5.0), (20.0, 7.0)], "b": [(10.0, 6.0)]}


def test_a_step_is_plain_data_for_the_json() -> None:
    document = dataclasses.asdict(step(10.0, {"a": 5.0}, failed=("b",)))
    assert document["rows"]["a"]["latency_p99_ms"] == 5.0
    assert document["failed"] == {"b": "timed out"}
