import pytest

from bench.loadgen import CpuSample, LoadResult
from bench.report import figures, percentile, table
from bench.scenarios import Scenario


def test_percentile_is_nearest_rank() -> None:
    values = list(range(100, 0, -1))  # unsorted on purpose
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7], 0.99) == 7
    assert percentile([], 0.5) == 0


def _result(*, delivered: int, server_cpu: float) -> LoadResult:
    return LoadResult(
        sent=10,
        acked=10,
        expected=100,
        delivered=delivered,
        latencies_ns=[2_000_000] * delivered,
        wall_seconds=2.0,
        cpu=CpuSample(servers=server_cpu, broker=0.5, generator=0.25),
        closed_by_server=0,
        join_retries=0,
    )


def test_figures_derive_rates_loss_and_efficiency() -> None:
    row = figures("x", _result(delivered=98, server_cpu=0.5), server_peak_rss_bytes=3 * 2**20)
    assert row.lost == 2
    assert row.deliveries_per_second == pytest.approx(49.0)
    assert row.deliveries_per_server_cpu_second == pytest.approx(196.0)
    assert row.latency_p99_ms == pytest.approx(2.0)
    assert row.server_peak_rss_mib == pytest.approx(3.0)


def test_table_states_the_efficiency_ratio_of_the_first_system() -> None:
    scenario = Scenario("s", subscribers=10, senders=1, rooms=1, rate=5, duration=2)
    fast = figures("fast", _result(delivered=100, server_cpu=0.5), server_peak_rss_bytes=0)
    slow = figures("slow", _result(delivered=100, server_cpu=2.0), server_peak_rss_bytes=0)
    text = table(scenario, [fast, slow])
    assert "fast / slow, deliveries per server CPU-second: 4.0x" in text
    assert text.splitlines()[2].split()[0] == "fast"
