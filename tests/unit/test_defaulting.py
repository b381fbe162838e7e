"""Structural-schema defaulting, as the API server applies a CRD's defaults."""

from __future__ import annotations

from typing import Any

from chatoperator.crd import render_crd
from chatoperator.defaulting import with_defaults

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "default": 2},
        "nested": {
            "type": "object",
            "default": {},
            "properties": {
                "port": {"type": "integer", "default": 80},
                "type": {"type": "string", "default": "ClusterIP"},
            },
        },
        "optional": {"type": "object", "properties": {"key": {"type": "string", "default": "k"}}},
        "nullable": {"type": "string", "nullable": True, "default": "x"},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"key": {"type": "string", "default": "k"}}},
        },
        "map": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"size": {"type": "integer", "default": 1}},
            },
        },
    },
}


def test_an_absent_property_gets_its_default() -> None:
    assert with_defaults({}, SCHEMA)["replicas"] == 2


def test_a_given_value_is_kept() -> None:
    assert with_defaults({"replicas": 0}, SCHEMA)["replicas"] == 0


def test_an_object_default_is_defaulted_inside() -> None:
    assert with_defaults({}, SCHEMA)["nested"] == {"port": 80, "type": "ClusterIP"}


def test_a_given_object_gets_the_defaults_it_lacks() -> None:
    assert with_defaults({"nested": {"port": 8080}}, SCHEMA)["nested"] == {
        "port": 8080,
        "type": "ClusterIP",
    }


def test_an_absent_object_without_a_default_stays_absent() -> None:
    assert "optional" not in with_defaults({}, SCHEMA)
    assert with_defaults({"optional": {}}, SCHEMA)["optional"] == {"key": "k"}


def test_a_null_is_defaulted_unless_the_schema_allows_null() -> None:
    assert with_defaults({"replicas": None}, SCHEMA)["replicas"] == 2
    assert with_defaults({"nullable": None}, SCHEMA)["nullable"] is None


def test_a_null_without_a_default_is_pruned() -> None:
    assert "optional" not in with_defaults({"optional": None}, SCHEMA)


def test_list_items_and_map_values_are_defaulted() -> None:
    result = with_defaults({"items": [{}, {"key": "a"}], "map": {"one": {}}}, SCHEMA)
    assert result["items"] == [{"key": "k"}, {"key": "a"}]
    assert result["map"] == {"one": {"size": 1}}


def test_unknown_fields_and_the_input_are_left_alone() -> None:
    given = {"unknown": {"deep": [1]}, "nested": {}}
    result = with_defaults(given, SCHEMA)
    assert result["unknown"] == {"deep": [1]}
    assert given == {"unknown": {"deep": [1]}, "nested": {}}
    result["unknown"]["deep"].append(2)
    assert given["unknown"]["deep"] == [1]


def test_the_chatcluster_defaults_pass_its_own_cel_rule_inputs() -> None:
    # An explicit autoscaling block gets min and max filled in, as the rule
    # self.minReplicas <= self.maxReplicas expects of a stored object.
    [version] = render_crd()["spec"]["versions"]
    body = {"spec": {"backend": {"autoscaling": {"enabled": True}}}}
    stored = with_defaults(body, version["schema"]["openAPIV3Schema"])
    assert stored["spec"]["backend"]["autoscaling"] == {
        "enabled": True,
        "minReplicas": 2,
        "maxReplicas": 10,
        "targetCPUUtilizationPercentage": 70,
    }
