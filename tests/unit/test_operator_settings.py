"""The operator's settings: defaults, values read, and a bad value named at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatoperator.settings import OperatorSettings, SettingsError


def test_defaults() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.images.chatserver == "chatcluster/chatserver:0.1.0"
    assert settings.images.rabbitmq == "rabbitmq:3.13-management"
    assert (settings.resync_seconds, settings.stats_timeout_seconds) == (30.0, 2.0)
    assert [settings.retry_delay(n) for n in (0, 1, 2, 20)] == [2.0, 4.0, 8.0, 300.0]


def test_values_are_read() -> None:
    settings = OperatorSettings.from_env(
        {
            "CHATCLUSTER_DEFAULT_IMAGE": "registry.example/chat:1",
            "CHATCLUSTER_RABBITMQ_IMAGE": "rabbitmq:3.12",
            "CHATCLUSTER_RESYNC_SECONDS": "5",
            "CHATCLUSTER_STATS_TIMEOUT_SECONDS": "0.5",
            "CHATCLUSTER_RETRY_DELAY_SECONDS": "1",
        }
    )
    assert (settings.images.chatserver, settings.images.rabbitmq) == (
        "registry.example/chat:1",
        "rabbitmq:3.12",
    )
    assert (settings.resync_seconds, settings.stats_timeout_seconds) == (5.0, 0.5)
    assert settings.retry_delay_seconds == 1.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHATCLUSTER_RESYNC_SECONDS", "soon"),
        ("CHATCLUSTER_RESYNC_SECONDS", "0"),
        ("CHATCLUSTER_STATS_TIMEOUT_SECONDS", "-1"),
        ("CHATCLUSTER_RETRY_DELAY_SECONDS", "inf"),
        ("CHATCLUSTER_DEFAULT_IMAGE", "two words"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}={value!r}"):
        OperatorSettings.from_env({name: value})


def test_the_cli_exits_2_with_the_variable_named() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatoperator.cli", "run"],
        env={"PATH": "/usr/bin:/bin", "CHATCLUSTER_RESYNC_SECONDS": "often"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 2
    assert "CHATCLUSTER_RESYNC_SECONDS='often'" in done.stderr


def test_the_allowlists_are_read_and_a_pattern_with_spaces_is_refused() -> None:
    settings = OperatorSettings.from_env(
        {
            "CHATCLUSTER_ALLOWED_IMAGES": " registry.example/chat/* , chatcluster/*",
            "CHATCLUSTER_SECRET_LABEL": "chatcluster.dev/usable",
        }
    )
    assert settings.allowed_images == ("registry.example/chat/*", "chatcluster/*")
    assert settings.secret_label == "chatcluster.dev/usable"
    assert OperatorSettings.from_env({}).allowed_images == ()
    with pytest.raises(SettingsError, match="CHATCLUSTER_ALLOWED_IMAGES"):
        OperatorSettings.from_env({"CHATCLUSTER_ALLOWED_IMAGES": "a b/*"})
