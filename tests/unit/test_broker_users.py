"""The users' definitions the broker's init container writes: run with the same `sh`, on files
like the Secret's, and read back as RabbitMQ would read them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chatoperator.builders.broker_users import UserFiles, backend_permissions, write_users_script
from tests.unit.clusters import cluster_from_spec

CLUSTER = cluster_from_spec({}, namespace="team-a")


def write_users(tmp_path: Path, secret: dict[str, str]) -> subprocess.CompletedProcess[str]:
    files = UserFiles(credentials=str(tmp_path / "credentials"), directory=str(tmp_path / "users"))
    for directory in (files.credentials, files.directory):
        Path(directory).mkdir()
    for key, value in secret.items():
        (Path(files.credentials) / key).write_text(value)
    script = write_users_script(CLUSTER, files)
    return subprocess.run(
        ["sh", "-euc", script], capture_output=True, text=True, timeout=10, check=False
    )


def definitions(tmp_path: Path) -> Any:
    # RabbitMQ parses every file of its config directory as rabbitmq.conf: the JSON is beside it.
    assert [p.name for p in (tmp_path / "users" / "conf.d").iterdir()] == ["10-definitions.conf"]
    conf = (tmp_path / "users" / "conf.d" / "10-definitions.conf").read_text()
    assert conf == f"load_definitions = {tmp_path}/users/definitions.json\n"
    return json.loads((tmp_path / "users" / "definitions.json").read_text())


SECRET = {
    "username": "chat-1a2b3c4d",
    "password": 'a"quote\\and backslash',
    "backend-username": "backend-5e6f7a8b",
    "backend-password": "plain-token_value",
}


def test_both_users_are_defined_and_the_backends_reach_only_their_clusters_names(
    tmp_path: Path,
) -> None:
    done = write_users(tmp_path, SECRET)
    assert done.returncode == 0, done.stderr
    loaded = definitions(tmp_path)
    assert loaded["users"] == [
        {"name": "chat-1a2b3c4d", "password": SECRET["password"], "tags": "administrator"},
        {"name": "backend-5e6f7a8b", "password": "plain-token_value", "tags": ""},
    ]
    assert loaded["vhosts"] == [{"name": "/"}]
    admin, backend = loaded["permissions"]
    assert admin == {
        "user": "chat-1a2b3c4d", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"
    }  # fmt: skip
    pattern = backend_permissions(CLUSTER)
    assert backend == {
        "user": "backend-5e6f7a8b",
        "vhost": "/",
        "configure": pattern,
        "write": pattern,
        "read": pattern,
    }
    if (tmp_path / "users" / "definitions.json").stat().st_mode & 0o077:
        pytest.fail("the definitions file, which holds passwords, is readable by others")


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("chat.team-a.demo.rooms", True),
        ("chat.team-a.demo.room.general", True),
        ("chat.team-a.demo.presence", True),
        ("amq.gen-JzTY20BRgKO-HjmUJj0wLg", True),
        ("chat.team-a.demo2.room.general", False),
        ("chat.team-b.demo.room.general", False),
        ("chat.team-aXdemo.room.general", False),
        ("amq.default", False),
        ("other", False),
    ],
)
def test_the_backend_pattern_matches_this_clusters_names_only(name: str, allowed: bool) -> None:
    # RabbitMQ matches the pattern anywhere in the name; it is anchored at both ends.
    assert bool(re.search(backend_permissions(CLUSTER), name)) is allowed


def test_a_secret_from_before_the_backend_user_defines_the_administrator_only(
    tmp_path: Path,
) -> None:
    done = write_users(tmp_path, {"username": "chat-1a2b3c4d", "password": "pw"})
    assert done.returncode == 0, done.stderr
    loaded = definitions(tmp_path)
    assert [user["name"] for user in loaded["users"]] == ["chat-1a2b3c4d"]
    assert [grant["user"] for grant in loaded["permissions"]] == ["chat-1a2b3c4d"]


def test_a_secret_without_the_administrator_stops_the_pod_with_the_reason(tmp_path: Path) -> None:
    done = write_users(tmp_path, {"username": "chat-1a2b3c4d"})
    assert done.returncode != 0
    assert "the broker Secret has no password" in done.stderr
    assert not (tmp_path / "users" / "conf.d").exists()
