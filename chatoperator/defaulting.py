"""Structural-schema defaulting: what the API server does to a custom object before storing it.

``chatoperator render`` runs without a cluster, yet must build from the spec the operator would
read back from the API server. This follows the apiextensions-apiserver algorithm
(``pkg/apiserver/schema/defaulting``): top-down, a property that is absent, or null where the
schema does not allow null, gets a copy of its default, and the result, defaulted or given, is
then defaulted inside (so an object default of ``{}`` is filled in by its properties' defaults).
Pure: no I/O, and the input is never changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]


def with_defaults(value: Any, schema: Schema) -> Any:
    """A copy of ``value`` with every default of ``schema`` applied, as the API server does."""
    if isinstance(value, Mapping):
        return _object(value, schema)
    if isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, Mapping):
            return copy.deepcopy(value)
        return [_member(item, items) for item in value if _kept(item, items)]
    return copy.deepcopy(value)


def _object(value: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    result: dict[str, Any] = {}
    for key, given in value.items():
        sub = properties.get(key, additional if isinstance(additional, Mapping) else None)
        if sub is None:
            result[key] = copy.deepcopy(given)
        elif _kept(given, sub):
            result[key] = _member(given, sub)
    for key, sub in properties.items():
        if key not in result and "default" in sub:
            result[key] = with_defaults(sub["default"], sub)
    return result


def _kept(value: Any, schema: Schema) -> bool:
    # A null the schema does not allow is pruned before defaulting (and then defaulted, if a
    # default exists); a nullable one stays null.
    return value is not None or bool(schema.get("nullable")) or "default" in schema


def _member(value: Any, schema: Schema) -> Any:
    if value is None and not schema.get("nullable"):
        return with_defaults(schema["default"], schema)
    return with_defaults(value, schema)
