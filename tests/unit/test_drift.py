"""Deciding whether a live child needs an apply: the idle pass must skip every one."""

from __future__ import annotations

import copy
from typing import Any

from chatoperator.drift import APPLIED_HASH_ANNOTATION, contains, needs_apply, with_applied_hash


def desired() -> dict[str, Any]:
    return with_applied_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "demo-backend", "namespace": "chat", "labels": {"a": "b"}},
            "spec": {"ports": [{"name": "http", "port": 3000}], "selector": {"a": "b"}},
        }
    )


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: the same fields plus defaults and bookkeeping."""
    live = copy.deepcopy(obj)
    live["metadata"] |= {"resourceVersion": "42", "uid": "u", "managedFields": []}
    live["spec"]["ports"][0] |= {"protocol": "TCP", "targetPort": 3000}
    live["spec"] |= {"clusterIP": "10.0.0.7", "type": "ClusterIP"}
    live["status"] = {"loadBalancer": {}}
    return live


def test_the_applied_hash_is_an_annotation_of_the_object_without_it() -> None:
    obj = desired()
    assert len(obj["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]) == 16


def test_a_stored_copy_with_defaults_needs_no_apply() -> None:
    assert not needs_apply(as_stored(desired()), desired())


def test_a_missing_object_needs_an_apply() -> None:
    assert needs_apply(None, desired())


def test_a_hand_edited_field_needs_an_apply() -> None:
    live = as_stored(desired())
    live["spec"]["selector"]["a"] = "edited"
    assert needs_apply(live, desired())


def test_a_changed_desired_object_needs_an_apply_even_when_it_only_drops_a_field() -> None:
    live = as_stored(desired())
    smaller = copy.deepcopy(desired())
    del smaller["metadata"]["annotations"]
    del smaller["spec"]["selector"]
    assert needs_apply(live, with_applied_hash(smaller))


def test_lists_must_match_item_by_item() -> None:
    assert contains([{"a": 1, "b": 2}], [{"a": 1}])
    assert not contains([{"a": 1}, {"a": 2}], [{"a": 1}])
    assert not contains({"a": [1]}, {"a": 1})
