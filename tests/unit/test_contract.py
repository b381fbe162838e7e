"""The operator-server contract: what the operator writes into every chatserver pod is read back
by the chat server's own settings reader as the spec says, for every example and for specs at
the CRD's limits; and the UI's copy of the shared constants is current."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatoperator.builders import BuildInput
from chatoperator.builders.backend_deployment import build_backend_deployment
from chatoperator.builders.chatserver_pods import DRAIN_SECONDS, TERMINATION_GRACE_SECONDS
from chatoperator.builders.frontend_deployment import build_frontend_deployment
from chatoperator.builders.network import BACKEND_PORT, FRONTEND_PORT
from chatoperator.crd import render_crd
from chatoperator.spec import Cluster
from chatserver import contract
from chatserver.auth import TokenVerifier
from chatserver.settings import (
    SettingsError,
    backend_settings_from_env,
    chat_settings_from_env,
    frontend_settings_from_env,
)
from tests.unit.clusters import cluster_from_spec, example_bodies, example_cluster

CONTRACT_JS = Path(__file__).parents[2] / "chatserver" / "static" / "js" / "contract.js"
POD = "demo-backend-7c9d-x2x4q"
SECRETS = {"url": "amqp://chat:pw@demo-rabbitmq:5672/%2F", "secret": "k" * 32}
"""What a Secret key referenced by the env holds, by key."""


def chat_schema() -> dict[str, Any]:
    [version] = render_crd()["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["chat"])


def at_limits(schema: Mapping[str, Any], limit: str) -> dict[str, Any]:
    """Every bounded integer of ``schema`` (recursively) at its ``minimum`` or ``maximum``."""
    values: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object":
            values[name] = at_limits(sub, limit)
        elif sub.get("type") == "integer" and limit in sub:
            values[name] = sub[limit]
    return values


def longest_rooms(count: int) -> list[str]:
    return [f"{n:03d}".ljust(contract.MAX_ROOM_NAME_CHARS, "r") for n in range(count)]


def edge_clusters() -> Iterator[tuple[str, Cluster]]:
    rooms_schema = chat_schema()["properties"]["rooms"]
    yield "chat-minima", cluster_from_spec({"chat": at_limits(chat_schema(), "minimum")})
    yield "chat-maxima", cluster_from_spec({"chat": at_limits(chat_schema(), "maximum")})
    yield (
        "most-rooms-longest-names",
        cluster_from_spec({"chat": {"rooms": longest_rooms(rooms_schema["maxItems"])}}),
    )
    yield (
        "fewest-rooms",
        cluster_from_spec({"chat": {"rooms": ["r"] * rooms_schema["minItems"]}}),
    )
    yield (
        "preset-rooms",
        cluster_from_spec({"chat": {"roomCreation": "preset", "rooms": ["general", "news"]}}),
    )
    yield (
        "token-mode-and-origins",
        cluster_from_spec(
            {
                "auth": {
                    "mode": "jwt",
                    "secretRef": {"name": "jwt"},
                    "allowedOrigins": ["https://Chat.Example.com", "http://127.0.0.1:8080"],
                }
            }
        ),
    )
    # The longest names Kubernetes lets a cluster have: a namespace is a DNS label (63) and
    # the Service `<name>-frontend` must be one too; with an external broker no longer child
    # limits the name.
    yield (
        "longest-namespace-and-name",
        cluster_from_spec(
            {"rabbitmq": {"external": {"urlSecretRef": {"name": "amqp"}}}},
            name="c" * (63 - len("-frontend")),
            namespace="n" * 63,
        ),
    )


CLUSTERS = [(stem, example_cluster(stem)) for stem in sorted(example_bodies())]
CLUSTERS += list(edge_clusters())


class ReadRecorder(dict[str, str]):
    """An environment that remembers which names were looked up."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def container_env(deployment: Mapping[str, Any], root: Path) -> ReadRecorder:
    """The env the kubelet gives the container, with Secret keys and the pod name filled in, and
    its Secret volumes written under ``root`` (``*_FILE`` paths moved there with them)."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    moved = {}
    for volume in pod["volumes"]:
        if "secret" in volume:
            directory = root / mounts[volume["name"]].lstrip("/")
            directory.mkdir(parents=True)
            for item in volume["secret"]["items"]:
                (directory / item["path"]).write_text(SECRETS[item["key"]])
            moved[mounts[volume["name"]]] = str(directory)
    env = {}
    for item in container["env"]:
        source = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = item["value"]
            if item["name"].endswith("_FILE"):
                directory, _, file = item["value"].rpartition("/")
                env[item["name"]] = f"{moved[directory]}/{file}"
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = POD
        else:
            env[item["name"]] = SECRETS[source["secretKeyRef"]["key"]]
    return ReadRecorder(env)


@pytest.mark.parametrize(("label", "cluster"), CLUSTERS, ids=[label for label, _ in CLUSTERS])
def test_the_backend_reads_what_the_operator_writes_as_the_spec_says(
    label: str, cluster: Cluster, tmp_path: Path
) -> None:
    env = container_env(build_backend_deployment(BuildInput(cluster, "digest")), tmp_path)
    assert set(env) <= contract.BACKEND_ENV
    settings = backend_settings_from_env(env)  # what `chatserver backend` does at start
    TokenVerifier.from_settings(settings.auth)
    assert set(env) <= env.read, "written but never read"
    spec = cluster.spec
    assert (settings.port, settings.pod) == (BACKEND_PORT, POD)
    assert settings.cluster == f"{cluster.namespace}.{cluster.name}"
    assert settings.rabbitmq_urls == (SECRETS["url"],)
    chat = settings.chat
    assert chat.rooms == spec.chat.rooms
    assert (chat.history_size, chat.max_message_bytes) == (
        spec.chat.history_size,
        spec.chat.max_message_bytes,
    )
    assert (chat.rate_per_second, chat.rate_burst) == (
        spec.chat.rate_per_second,
        spec.chat.rate_burst,
    )
    assert (chat.max_rooms_per_connection, chat.max_rooms_per_client, chat.room_creation) == (
        spec.chat.max_rooms_per_connection,
        spec.chat.max_rooms_per_client,
        spec.chat.room_creation,
    )
    assert chat.allowed_origins == {origin.lower() for origin in spec.auth.allowed_origins}
    assert chat.drain_seconds == DRAIN_SECONDS < TERMINATION_GRACE_SECONDS
    assert settings.listen.max_connections == spec.backend.max_connections
    assert settings.listen.max_connections_per_ip == 0  # its clients are the frontends
    assert settings.auth.mode == spec.auth.mode
    assert settings.auth.secret == (SECRETS["secret"] if spec.auth.secret else None)


@pytest.mark.parametrize(("label", "cluster"), CLUSTERS, ids=[label for label, _ in CLUSTERS])
def test_the_frontend_reads_what_the_operator_writes_and_gets_nothing_else(
    label: str, cluster: Cluster, tmp_path: Path
) -> None:
    env = container_env(build_frontend_deployment(cluster), tmp_path)
    assert set(env) <= contract.FRONTEND_ENV
    settings = frontend_settings_from_env(env)
    assert set(env) <= env.read, "written but never read"
    assert settings.port == FRONTEND_PORT
    assert settings.backend_urls == (f"http://{cluster.name}-backend:{BACKEND_PORT}",)
    assert settings.allowed_origins == {o.lower() for o in cluster.spec.auth.allowed_origins}
    assert settings.drain_seconds == DRAIN_SECONDS < TERMINATION_GRACE_SECONDS
    assert settings.listen.max_connections == cluster.spec.frontend.max_connections
    assert settings.listen.max_connections_per_ip == cluster.spec.frontend.max_connections_per_ip


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        (("historySize",), contract.Env.CHAT_HISTORY_SIZE),
        (("maxMessageBytes",), contract.Env.CHAT_MAX_MESSAGE_BYTES),
        (("rateLimit", "burst"), contract.Env.CHAT_RATE_BURST),
        (("rateLimit", "messagesPerSecond"), contract.Env.CHAT_RATE_PER_SECOND),
        (("maxRoomsPerConnection",), contract.Env.CHAT_MAX_ROOMS_PER_CONNECTION),
        (("maxRoomsPerClient",), contract.Env.CHAT_MAX_ROOMS_PER_CLIENT),
    ],
)
def test_the_crds_least_values_are_the_servers_least(field: tuple[str, ...], variable: str) -> None:
    schema = chat_schema()
    for name in field:
        schema = schema["properties"][name]
    least = schema["minimum"]
    chat_settings_from_env({variable: str(least)})
    with pytest.raises(SettingsError, match=variable):
        chat_settings_from_env({variable: str(least - 1)})


def test_the_crds_room_creation_modes_are_the_servers() -> None:
    schema = chat_schema()["properties"]["roomCreation"]
    assert schema["default"] == contract.DEFAULT_ROOM_CREATION
    for mode in schema["enum"]:
        assert chat_settings_from_env({contract.Env.CHAT_ROOM_CREATION: mode}).room_creation == mode


def test_the_uis_copy_of_the_contract_is_current() -> None:
    # Regenerate with: .venv/bin/python -m chatserver.contract > chatserver/static/js/contract.js
    assert CONTRACT_JS.read_text() == contract.render_js()


def test_the_crds_greatest_message_size_fits_the_servers_frame_limit() -> None:
    greatest = chat_schema()["properties"]["maxMessageBytes"]["maximum"]
    chat_settings_from_env({contract.Env.CHAT_MAX_MESSAGE_BYTES: str(greatest)})
    with pytest.raises(SettingsError, match=contract.Env.CHAT_MAX_FRAME_BYTES):
        chat_settings_from_env({contract.Env.CHAT_MAX_MESSAGE_BYTES: str(greatest + 1)})
    # Even a text of only characters JSON escapes fits the frame of a send at that size.
    text = '"' * greatest
    frame = orjson.dumps({"type": "send", "room": "r" * 64, "ref": "f" * 128, "text": text})
    assert len(frame) <= contract.DEFAULT_MAX_FRAME_BYTES
