"""``chatoperator render``: the operator's objects for a manifest, with no cluster."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatoperator.builders import CHILDREN, BuildInput
from chatoperator.builders.broker_secret import broker_url_digest
from chatoperator.builders.meta import CONFIG_HASH_ANNOTATION
from chatoperator.cli import main
from chatoperator.errors import InvalidSpec
from chatoperator.render import GENERATED, UID_PLACEHOLDER, RenderSettings, render
from chatoperator.spec import parse_cluster
from tests.unit.clusters import EXAMPLES, IMAGES, example_cluster

SETTINGS = RenderSettings(images=IMAGES)
VALID_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))


def documents(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


def chat(spec: dict[str, Any], **metadata: str) -> dict[str, Any]:
    return {
        "apiVersion": "chatcluster.dev/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": "demo", **metadata},
        "spec": spec,
    }


def by_key(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


def backend_hash(objects: list[dict[str, Any]]) -> str:
    template = by_key(objects)["Deployment/demo-backend"]["spec"]["template"]
    return str(template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])


@pytest.mark.parametrize("path", VALID_EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_the_secret_then_the_wanted_children_in_order(path: Path) -> None:
    objects = render(documents(path), SETTINGS)
    cluster = example_cluster(path.stem)
    own_broker = not cluster.external_broker
    kinds = [o["kind"] for o in objects]
    assert (kinds[0] == "Secret") == own_broker
    expected = [c.kind for c in CHILDREN if c.wanted(cluster)]
    assert kinds[1 if own_broker else 0 :] == expected
    for obj in objects:
        assert obj["metadata"]["namespace"] == "default"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == UID_PLACEHOLDER


@pytest.mark.parametrize("path", VALID_EXAMPLES, ids=lambda p: p.stem)
def test_no_secret_value_is_ever_printed(path: Path) -> None:
    printed = yaml.safe_dump_all(render(documents(path), SETTINGS))
    for doc in documents(path):
        for value in (doc.get("stringData") or {}).values():
            assert value not in printed


def test_generated_credentials_are_placeholders() -> None:
    [secret, *_] = render([chat({})], SETTINGS)
    data = secret["stringData"]
    assert data["username"] == data["password"] == data["erlang-cookie"] == GENERATED
    assert data["url"] == f"amqp://{GENERATED}:{GENERATED}@demo-rabbitmq.default.svc:5672/%2F"


def test_a_config_hash_over_generated_credentials_is_a_placeholder() -> None:
    assert backend_hash(render([chat({})], SETTINGS)) == GENERATED


def test_an_external_broker_secret_in_the_manifest_gives_the_real_config_hash() -> None:
    url = "amqp://u:p@broker:5672/%2F"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}}
    spec = {"rabbitmq": {"external": {"urlSecretRef": {"name": "b"}}}}
    as_string = render([{**secret, "stringData": {"url": url}}, chat(spec)], SETTINGS)
    encoded = base64.b64encode(url.encode()).decode()
    as_data = render([{**secret, "data": {"url": encoded}}, chat(spec)], SETTINGS)
    # What the operator computes from the Secret as the API returns it.
    body = {**chat(spec), "metadata": {"name": "demo", "namespace": "default", "uid": "u"}}
    inp = BuildInput(parse_cluster(body, images=IMAGES), broker_url_digest(encoded))
    expected = next(c for c in CHILDREN if c.kind == "Deployment").build(inp)
    annotations = expected["spec"]["template"]["metadata"]["annotations"]
    assert backend_hash(as_string) == backend_hash(as_data) == annotations[CONFIG_HASH_ANNOTATION]


def test_an_empty_spec_renders_as_its_defaults_written_out() -> None:
    written = {
        "backend": {"replicas": 2, "maxConnections": 10000},
        "frontend": {"replicas": 1, "service": {"type": "ClusterIP", "port": 80}},
        "rabbitmq": {"replicas": 1},
        "chat": {"rooms": ["general"], "historySize": 100},
        "auth": {"mode": "none"},
        "paused": False,
    }
    assert render([chat({})], SETTINGS) == render([chat(written)], SETTINGS)


def test_defaults_fill_a_partly_written_block() -> None:
    spec = {"backend": {"autoscaling": {"enabled": True}}}
    hpa = by_key(render([chat(spec)], SETTINGS))["HorizontalPodAutoscaler/demo-backend"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)


def test_the_namespace_option_applies_to_manifests_that_name_none() -> None:
    objects = render([chat({})], RenderSettings(images=IMAGES, namespace="team"))
    assert {o["metadata"]["namespace"] for o in objects} == {"team"}
    named = render([chat({}, namespace="team")], SETTINGS)
    assert {o["metadata"]["namespace"] for o in named} == {"team"}


def test_a_namespace_other_than_the_manifests_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="in namespace team, not other"):
        render([chat({}, namespace="team")], RenderSettings(images=IMAGES, namespace="other"))


def test_the_operator_namespace_is_admitted_to_the_backends_only_when_given() -> None:
    def peers(settings: RenderSettings) -> list[dict[str, Any]]:
        policy = by_key(render([chat({})], settings))["NetworkPolicy/demo-backend"]
        return list(policy["spec"]["ingress"][0]["from"])

    assert len(peers(SETTINGS)) == 2
    assert len(peers(RenderSettings(images=IMAGES, operator_namespace=None))) == 1


def test_a_paused_cluster_renders_nothing() -> None:
    assert render([chat({"paused": True})], SETTINGS) == []


def test_cli_prints_a_yaml_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(EXAMPLES / "minimal.yaml"), "-n", "chat"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed == render(documents(EXAMPLES / "minimal.yaml"), RenderSettings(IMAGES, "chat"))


def test_cli_reports_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["render", "-f", str(tmp_path / "absent.yaml")]) == 1
    assert "chatoperator render:" in capsys.readouterr().err
