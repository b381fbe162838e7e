import dataclasses

import pytest

from bench.loadgen import CpuSample, IdleResult, LoadResult
from bench.report import figures, idle_figures, percentile, table
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
        refused=0,
        expected=100,
        delivered=delivered,
        duplicates=1,
        latencies_ns=[2_000_000] * delivered,
        wall_seconds=2.0,
        cpu=CpuSample(servers=server_cpu, broker=0.5, generator=0.25),
        closed_by_server=0,
        join_retries=0,
    )


def test_figures_derive_rates_loss_and_efficiency() -> None:
    result = _result(delivered=98, server_cpu=0.5)
    row = figures("x", result, servers=2, server_peak_rss_bytes=3 * 2**20)
    assert row.lost == 2
    assert row.duplicates == 1
    assert row.deliveries_per_second == pytest.approx(49.0)
    assert row.deliveries_per_server_cpu_second == pytest.approx(196.0)
    assert row.deliveries_per_total_cpu_second == pytest.approx(98.0)  # broker 0.5 s too
    assert row.latency_p99_ms == pytest.approx(2.0)
    assert row.latency_p999_ms == pytest.approx(2.0)
    assert row.server_peak_rss_mib == pytest.approx(3.0)


def test_table_states_the_efficiency_ratio_of_the_first_system() -> None:
    scenario = Scenario("s", subscribers=10, senders=1, rooms=1, rate=5, duration=2)
    fast = figures(
        "fast", _result(delivered=100, server_cpu=0.5), servers=1, server_peak_rss_bytes=0
    )
    slow = figures(
        "slow", _result(delivered=100, server_cpu=2.0), servers=2, server_peak_rss_bytes=0
    )
    text = table(scenario, [fast, slow])
    assert "fast / slow, deliveries per server CPU-second: 4.0x" in text
    assert text.splitlines()[2].split()[:2] == ["fast", "1"]


def test_a_system_without_broker_cpu_has_the_same_efficiency_either_way() -> None:
    result = _result(delivered=100, server_cpu=0.5)
    row = figures(
        "memory",
        dataclasses.replace(result, cpu=CpuSample(0.5, 0.0, 0.25)),
        servers=1,
        server_peak_rss_bytes=0,
    )
    assert row.deliveries_per_total_cpu_second == row.deliveries_per_server_cpu_second == 200.0


def test_no_cpu_measured_gives_no_efficiency_rather_than_a_division_by_zero() -> None:
    result = dataclasses.replace(_result(delivered=5, server_cpu=0.0), cpu=CpuSample(0, 0, 0))
    row = figures("idle", result, servers=1, server_peak_rss_bytes=0)
    assert row.deliveries_per_server_cpu_second == row.deliveries_per_total_cpu_second == 0.0


def test_idle_memory_is_divided_over_the_connections_held() -> None:
    result = IdleResult(
        connections=1000,
        connect_seconds=2.0,
        server_rss_bytes=10 * 2**20,
        tcp_buffer_bytes=-4096,  # machine wide: other work may free buffers meanwhile
        socket_slab_bytes=6 * 1024 * 1000,
        idle_seconds=30.0,
        idle_server_cpu_seconds=1.5,
        join_retries=0,
    )
    row = idle_figures("x", result, servers=2)
    assert row.idle_server_cpu_percent == pytest.approx(5.0)  # 1.5 s of 30: 5 % of one core
    assert row.server_rss_mib == pytest.approx(10.0)
    assert row.server_kib_per_connection == pytest.approx(10.24)
    assert row.kernel_buffer_kib_per_connection == pytest.approx(-0.004)
    assert row.kernel_socket_kib_per_connection == pytest.approx(6.0)
