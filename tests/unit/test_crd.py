"""The CRD: the committed YAML is what ``chatoperator crd`` renders, and it agrees with spec.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from chatoperator.crd import render_crd
from chatoperator.defaulting import with_defaults
from chatoperator.settings import OperatorSettings
from chatoperator.spec import parse_spec

CRD_FILE = Path(__file__).parents[2] / "crds" / "chatclusters.chatcluster.dev.yaml"


def version() -> dict[str, Any]:
    [served] = render_crd()["spec"]["versions"]
    return dict(served)


def schema_defaults(schema: dict[str, Any]) -> Any:
    """The object the API server's defaulting makes of ``spec: {}``."""
    return with_defaults({}, schema)


def test_committed_crd_is_up_to_date() -> None:
    # Regenerate with: .venv/bin/chatoperator crd > crds/chatclusters.chatcluster.dev.yaml
    assert yaml.safe_load(CRD_FILE.read_text()) == render_crd()


def test_schema_defaults_are_the_operator_defaults() -> None:
    spec_schema = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    images = OperatorSettings.from_env({}).images
    assert parse_spec(schema_defaults(spec_schema), images=images) == parse_spec({}, images=images)


def test_minimal_spec_defaults_follow_the_contract() -> None:
    defaults = schema_defaults(version()["schema"]["openAPIV3Schema"]["properties"]["spec"])
    assert defaults["backend"]["replicas"] == 2
    assert defaults["frontend"]["replicas"] == 1
    assert defaults["frontend"]["service"] == {"type": "ClusterIP", "port": 80}
    assert defaults["rabbitmq"]["replicas"] == 1
    assert defaults["chat"]["rooms"] == ["general"]
    assert defaults["chat"]["historySize"] == 100
    assert defaults["chat"]["maxMessageBytes"] == 4096
    assert defaults["auth"]["mode"] == "none"
    assert defaults["paused"] is False


def test_scale_subresource_maps_to_the_backend() -> None:
    assert version()["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.backend.replicas",
            "statusReplicasPath": ".status.backend.replicas",
            "labelSelectorPath": ".status.backend.selector",
        },
    }


def test_printer_columns_show_phase_backends_users_rooms() -> None:
    columns = [c["name"] for c in version()["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Phase", "Backends", "Users", "Rooms", "Age"]


def test_names_and_short_names() -> None:
    crd = render_crd()
    assert crd["metadata"]["name"] == "chatclusters.chatcluster.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == ["chat", "cc"]


def test_conditions_are_a_map_keyed_by_type() -> None:
    conditions = version()["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"][
        "conditions"
    ]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
