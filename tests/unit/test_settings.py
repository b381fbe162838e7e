from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatserver.settings import (
    AuthSettings,
    SettingsError,
    auth_settings_from_env,
    backend_settings_from_env,
    frontend_settings_from_env,
)


def test_contract_defaults() -> None:
    backend = backend_settings_from_env({})
    assert (backend.port, backend.cluster, backend.rabbitmq_urls) == (3000, "chat", ())
    chat = backend.chat
    assert (chat.rooms, chat.history_size, chat.max_message_bytes) == (("general",), 100, 4096)
    assert (chat.rate_per_second, chat.rate_burst, chat.drain_seconds) == (10, 20, 10)
    assert (chat.max_rooms_per_connection, chat.max_rooms_per_client) == (100, 200)
    assert chat.room_creation == "anyone"
    frontend = frontend_settings_from_env({})
    assert (frontend.port, frontend.backend_urls) == (8080, ("http://localhost:3000",))


def test_values_are_read() -> None:
    backend = backend_settings_from_env(
        {
            "PORT": "4000",
            "POD_NAME": "b-1",
            "CHAT_CLUSTER": "demo",
            "RABBITMQ_URL": "amqp://u:p@rabbit:5672/",
            "CHAT_ROOMS": "general, random",
            "CHAT_ALLOWED_ORIGINS": "https://Chat.Example.com",
            "CHAT_MAX_ROOMS_PER_CONNECTION": "5",
            "CHAT_MAX_ROOMS_PER_CLIENT": "7",
            "CHAT_ROOM_CREATION": "preset",
            "CHAT_MEMORY_MAX_ROOMS": "50",
        }
    )
    assert (backend.port, backend.pod, backend.cluster) == (4000, "b-1", "demo")
    assert backend.rabbitmq_urls == ("amqp://u:p@rabbit:5672/",)
    assert backend.chat.rooms == ("general", "random")
    assert backend.chat.allowed_origins == {"https://chat.example.com"}
    assert (backend.chat.max_rooms_per_connection, backend.chat.max_rooms_per_client) == (5, 7)
    assert backend.chat.room_creation == "preset"
    assert backend.memory_max_rooms == 50


def test_the_older_page_size_defaults_to_the_history_size_within_its_bound() -> None:
    def page_max(env: dict[str, str]) -> int:
        return backend_settings_from_env(env).chat.history_page_max

    assert page_max({}) == 100
    assert page_max({"CHAT_HISTORY_SIZE": "40"}) == 40
    assert page_max({"CHAT_HISTORY_SIZE": "5000"}) == 1000
    assert page_max({"CHAT_HISTORY_SIZE": "40", "CHAT_HISTORY_PAGE_MAX": "25"}) == 25


def test_backend_url_may_list_several() -> None:
    settings = frontend_settings_from_env({"BACKEND_URL": "http://a:3000/, http://b:3000"})
    assert settings.backend_urls == ("http://a:3000", "http://b:3000")


def test_rabbitmq_url_may_list_the_nodes_of_a_cluster() -> None:
    settings = backend_settings_from_env(
        {"RABBITMQ_URL": "amqp://u:p@rabbit-0:5672/, amqps://u:p@rabbit-1/vhost,"}
    )
    assert settings.rabbitmq_urls == ("amqp://u:p@rabbit-0:5672/", "amqps://u:p@rabbit-1/vhost")


@pytest.mark.parametrize(
    "value",
    [
        "http://u:hunter2@rabbit:5672/",
        "amqp://u:hunter2@rabbit:5672/,amqp://u:hunter2@:5672/",
        "amqp://u:hunter2@rabbit:port/",
        ",",
    ],
)
def test_a_bad_rabbitmq_url_is_refused_without_repeating_its_password(value: str) -> None:
    with pytest.raises(SettingsError, match="RABBITMQ_URL") as refused:
        backend_settings_from_env({"RABBITMQ_URL": value})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("CHAT_HISTORY_SIZE", "0"),
        ("CHAT_HISTORY_PAGE_MAX", "0"),
        ("CHAT_HISTORY_PAGE_MAX", "1001"),
        ("CHAT_RATE_PER_SECOND", "-1"),
        ("CHAT_ROOMS", "general,Bad Room"),
        ("CHAT_ALLOWED_ORIGINS", "https://x.example/path"),
        ("CHAT_CLUSTER", "has space"),
        ("CHAT_AUTH", "jwt-ish"),
        ("CHAT_AUTH", "JWT "),
        ("CHAT_AUTH_LEEWAY_SECONDS", "-1"),
        ("CHAT_MAX_ROOMS_PER_CONNECTION", "0"),
        ("CHAT_MAX_ROOMS_PER_CLIENT", "-3"),
        ("CHAT_ROOM_CREATION", "nobody"),
        ("CHAT_MEMORY_MAX_ROOMS", "0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        backend_settings_from_env({name: value})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHAT_HISTORY_SIZE": "lots"}, "CHAT_HISTORY_SIZE='lots'"),
        ({"CHAT_AUTH": "bogus"}, "CHAT_AUTH='bogus': must be 'none' or 'jwt'"),
    ],
)
def test_the_cli_exits_2_with_a_clear_message_on_bad_settings(
    env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatserver", "backend"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 2
    assert message in done.stderr


SECRET = "s" * 32


def test_open_mode_is_the_default() -> None:
    assert backend_settings_from_env({}).auth == AuthSettings(mode="none")


def test_token_mode_reads_one_key_and_the_leeway() -> None:
    auth = auth_settings_from_env(
        {"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET": SECRET, "CHAT_AUTH_LEEWAY_SECONDS": "2"}
    )
    assert (auth.mode, auth.secret, auth.public_key, auth.leeway_seconds) == (
        "jwt",
        SECRET,
        None,
        2.0,
    )
    assert SECRET not in repr(auth)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "exactly one"),
        ({"CHAT_AUTH_SECRET": SECRET, "CHAT_AUTH_PUBLIC_KEY": "pem"}, "exactly one"),
        ({"CHAT_AUTH_SECRET": "short"}, "at least 32 bytes"),
    ],
)
def test_token_mode_needs_exactly_one_usable_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        auth_settings_from_env({"CHAT_AUTH": "jwt", **env})


def test_a_room_cap_below_the_preset_rooms_is_refused() -> None:
    env = {"CHAT_ROOMS": "general,news,sport", "CHAT_MAX_ROOMS_PER_CONNECTION": "2"}
    with pytest.raises(SettingsError, match="CHAT_MAX_ROOMS_PER_CONNECTION"):
        backend_settings_from_env(env)
    backend_settings_from_env({**env, "CHAT_MAX_ROOMS_PER_CONNECTION": "3"})


def test_secrets_are_read_from_the_files_their_file_variables_name(tmp_path: Path) -> None:
    url, key = tmp_path / "url", tmp_path / "secret"
    url.write_text("amqp://u:p@broker:5672/%2F\n")  # a trailing newline is not part of a URL
    key.write_text(SECRET)
    backend = backend_settings_from_env(
        {"RABBITMQ_URL_FILE": str(url), "CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET_FILE": str(key)}
    )
    assert backend.rabbitmq_urls == ("amqp://u:p@broker:5672/%2F",)
    assert (backend.auth.secret, backend.auth.key_file) == (SECRET, str(key))


def test_a_secret_given_twice_or_unreadable_stops_the_server(tmp_path: Path) -> None:
    url = tmp_path / "url"
    url.write_text("amqp://u:secret-pass@broker/")
    with pytest.raises(SettingsError, match="RABBITMQ_URL and RABBITMQ_URL_FILE"):
        backend_settings_from_env({"RABBITMQ_URL": "amqp://b/", "RABBITMQ_URL_FILE": str(url)})
    with pytest.raises(SettingsError, match=r"CHAT_AUTH_SECRET_FILE=.*cannot read it"):
        auth_settings_from_env(
            {"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET_FILE": str(tmp_path / "absent")}
        )
