"""One short real run of `python -m bench`: RabbitMQ, both systems' servers, the generator."""

from pathlib import Path

import orjson
import pytest

from bench.cli import main

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def test_a_short_run_measures_both_systems_and_writes_the_results(tmp_path: Path) -> None:
    argv = ["--scenario", "one-room", "--subscribers", "8", "--senders", "2"]
    argv += ["--rate", "10", "--duration", "2", "--output", str(tmp_path)]
    assert main(argv) == 0

    document = orjson.loads((tmp_path / "one-room.json").read_bytes())
    assert document["scenario"]["subscribers"] == 8
    assert document["context"]["command"].startswith("python -m bench --scenario one-room")
    for system in ("chatcluster", "python-socketio"):
        row = document["results"][system]
        assert row["sent"] == row["acked"] == 20
        assert row["expected"] == 20 * 8
        assert 0 < row["delivered"] <= row["expected"]
        assert row["server_cpu_seconds"] > 0
        assert row["broker_cpu_seconds"] > 0
        assert row["latency_p50_ms"] > 0
    assert (tmp_path / "one-room.png").read_bytes().startswith(b"\x89PNG")
