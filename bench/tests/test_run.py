"""Short real runs of `python -m bench`: RabbitMQ, the systems' servers, the generator."""

from pathlib import Path

import orjson
import pytest

from bench.cli import main
from bench.servers import SPECS


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_a_short_run_measures_every_system_and_writes_the_results(tmp_path: Path) -> None:
    argv = ["--scenario", "one-room", "--subscribers", "8", "--senders", "2"]
    argv += ["--rate", "10", "--duration", "2", "--output", str(tmp_path)]
    assert main(argv) == 0

    document = orjson.loads((tmp_path / "one-room.json").read_bytes())
    assert document["scenario"]["subscribers"] == 8
    assert document["context"]["command"].startswith("python -m bench --scenario one-room")
    for system in SPECS:
        row = document["results"][system]
        assert row["sent"] == row["acked"] == 20
        assert row["expected"] == 20 * 8
        assert 0 < row["delivered"] <= row["expected"]
        assert row["duplicates"] == 0
        assert row["latency_p50_ms"] > 0
        if SPECS[system].broker is None:
            assert row["broker_cpu_seconds"] == 0
    # CPU is read in clock ticks (10 ms): only the Python servers surely spend one on 160
    # deliveries, Centrifugo and redis-server may not.
    for system in ("chatcluster", "python-socketio"):
        assert document["results"][system]["server_cpu_seconds"] > 0
        assert document["results"][system]["broker_cpu_seconds"] > 0
    assert (tmp_path / "one-room.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.rabbitmq
@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["kill", "storm"])
def test_a_short_recovery_run_recovers_every_victim_completely(
    tmp_path: Path, scenario: str
) -> None:
    argv = ["--scenario", scenario, "--subscribers", "20", "--senders", "2", "--rate", "20"]
    argv += ["--duration", "3", "--output", str(tmp_path)]
    assert main(argv) == 0

    document = orjson.loads((tmp_path / f"{scenario}.json").read_bytes())
    for system in ("chatcluster", "centrifugo-redis"):
        row = document["results"][system]
        assert row["sent"] == row["acked"] == 60
        assert row["victims"] == row["recovered"] == 10
        assert row["recovery_ratio"] == 1.0
        assert row["missing"] == row["duplicates"] == row["late"] == row["unexpected"] == 0
        assert row["incomplete_clients"] == row["truncated_joins"] == 0
        assert 0 < row["recover_p50_ms"] <= row["recover_max_ms"] == max(row["recover_ms"])
        assert row["survivor_p99_before_ms"] > 0
        # 20 msg/s and first attempts up to 500 ms late: some victim missed something.
        assert row["replayed"] > 0
    # python-socketio's victims come back, but without history they recover nothing.
    row = document["results"]["python-socketio"]
    assert row["victims"] == row["rejoined"] == 10
    assert row["recovered"] == row["replayed"] == 0
    assert row["recovers"] is False
    assert row["missing"] > 0
    assert "one node" in document["results"]["centrifugo-memory"]["not_measured"]
    assert (tmp_path / f"{scenario}.png").read_bytes().startswith(b"\x89PNG")


def test_a_kill_run_without_a_server_to_recover_on_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--scenario", "kill", "--servers", "1", "--output", str(tmp_path)]
    assert main(argv) == 2
    assert "2 or more servers" in capsys.readouterr().err
    assert not (tmp_path / "kill.json").exists()


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_a_short_sweep_climbs_its_rates_and_writes_the_summary(tmp_path: Path) -> None:
    argv = ["--rates", "20", "10", "--subscribers", "8", "--senders", "2", "--duration", "1"]
    argv += ["--systems", "chatcluster", "centrifugo-memory", "--output", str(tmp_path)]
    assert main(argv) == 0

    document = orjson.loads((tmp_path / "one-room-sweep.json").read_bytes())
    assert document["results"]["rates"] == [10.0, 20.0]
    steps = document["results"]["steps"]
    assert [step["rate"] for step in steps] == [10.0, 20.0][: len(steps)]
    assert steps[0]["rows"]["chatcluster"]["sent"] == 10
    assert set(document["results"]["summary"][0]["p99_ms"]) == {"chatcluster", "centrifugo-memory"}
    assert (tmp_path / "one-room-sweep.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "one-room.json").exists()


def test_a_sweep_of_a_scenario_without_a_ladder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--sweep", "--scenario", "many-rooms", "--output", str(tmp_path)]) == 2
    assert "not many-rooms" in capsys.readouterr().err
