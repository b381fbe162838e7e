import pytest

from bench.killreport import figures, table
from bench.killrun import ClientRecord, KillResult
from bench.loadgen import CpuSample
from bench.scenarios import Scenario

MS = 1_000_000
KILL_NS = 1_000 * MS


def _client(
    index: int,
    received: list[int],
    *,
    victim: bool = False,
    back_ms: int | None = None,
    truncated: bool = False,
) -> ClientRecord:
    return ClientRecord(
        index=index,
        room="r",
        victim=victim,
        received=received,
        reconnect_attempts=1 if victim else 0,
        backoff_ns=0 if back_ms is None else (back_ms - 20) * MS,
        reconnected_ns=None if back_ms is None else (back_ms - 1) * MS,
        recovered_ns=None if back_ms is None else back_ms * MS,
        truncated=truncated,
        replayed=2 if victim else 0,
    )


def _result(clients: list[ClientRecord], *, recovers: bool = True) -> KillResult:
    return KillResult(
        recovers=recovers,
        sent=4,
        acked={"r": [10, 11, 12, 13]},
        clients=clients,
        kill_ns=KILL_NS,
        # Survivors: 2 ms before the kill; 50 ms 100 ms after it (inside the storm); 9 ms at
        # 900 ms, after the last victim rejoined.
        survivor_deliveries=[
            (KILL_NS - 500 * MS, 2 * MS),
            (KILL_NS + 100 * MS, 50 * MS),
            (KILL_NS + 900 * MS, 9 * MS),
        ],
        join_retries=0,
        wall_seconds=3.0,
        storm_cpu=CpuSample(servers=0.3, broker=0.1, generator=0.4),
        storm_cpu_seconds=0.5,
        listen_overflows=3,
    )


def test_victims_count_as_recovered_only_with_a_complete_untruncated_stream() -> None:
    full = [10, 11, 12, 13]
    row = figures(
        "chatcluster",
        _result(
            [
                _client(0, full),
                _client(1, full, victim=True, back_ms=200),
                _client(2, [10, 11, 11, 12, 13], victim=True, back_ms=300),  # a duplicate
                _client(3, full, victim=True, back_ms=400, truncated=True),
                _client(4, [10, 11], victim=True),  # never came back
            ]
        ),
    )
    assert (row.victims, row.reconnected, row.rejoined, row.recovered) == (4, 3, 3, 1)
    assert row.recovered_in_target == 1
    assert row.recovery_ratio == pytest.approx(0.25)
    assert row.recover_p50_ms == pytest.approx(300)
    assert row.recover_max_ms == pytest.approx(400)
    assert row.reconnect_p50_ms == pytest.approx(299)
    assert row.after_backoff_p99_ms == pytest.approx(20)
    assert (row.duplicates, row.missing, row.truncated_joins) == (1, 2, 1)
    assert row.incomplete_clients == 2
    assert row.storm_ms == pytest.approx(400)
    assert row.survivor_p99_before_ms == pytest.approx(2)
    assert row.survivor_p99_storm_ms == pytest.approx(50)
    assert row.recover_ms == [200, 300, 400]
    assert row.acked == 4
    assert (row.storm_survivor_cores, row.storm_generator_cores) == pytest.approx((0.6, 0.8))
    assert row.listen_overflows == 3


def test_table_says_why_a_system_is_not_measured() -> None:
    scenario = Scenario("kill", subscribers=2, senders=1, rooms=1, rate=1, duration=1)
    row = figures("chatcluster", _result([_client(0, [10, 11, 12, 13])]))
    lines = table(scenario, [row], skipped=["centrifugo-memory"]).splitlines()
    assert lines[2].split()[:4] == ["chatcluster", "0", "0", "0.000"]
    assert lines[3] == (
        "chatcluster: 0 of 0 victims back with nothing missed within 5 s of the kill: target missed"
    )
    assert lines[4].startswith("centrifugo-memory: not measured: one node")


def test_victims_of_a_system_without_history_never_count_as_recovered() -> None:
    full = [10, 11, 12, 13]
    clients = [
        _client(1, full, victim=True, back_ms=200),
        _client(2, [10], victim=True, back_ms=300),
    ]
    row = figures("python-socketio", _result(clients, recovers=False))
    assert (row.victims, row.rejoined, row.recovered, row.recovered_in_target) == (2, 2, 0, 0)
    assert row.missing == 3
    scenario = Scenario("storm", subscribers=2, senders=1, rooms=1, rate=1, duration=1)
    assert "python-socketio: keeps no history" in table(scenario, [row], skipped=[])


def test_a_victim_recovered_after_the_target_does_not_meet_it() -> None:
    full = [10, 11, 12, 13]
    row = figures(
        "chatcluster",
        _result(
            [
                _client(0, full, victim=True, back_ms=900),
                _client(1, full, victim=True, back_ms=5001),
            ]
        ),
    )
    assert (row.recovered, row.recovered_in_target) == (2, 1)
    scenario = Scenario("storm", subscribers=2, senders=1, rooms=1, rate=1, duration=1)
    assert table(scenario, [row], skipped=[]).endswith(
        "1 of 2 victims back with nothing missed within 5 s of the kill: target missed"
    )
