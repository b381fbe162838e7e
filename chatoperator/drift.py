"""Drift: whether a live child still matches what the operator would apply. Pure; used by
``reconcile.py`` before each apply.

An apply that changes nothing is free for etcd but is still a write request; skipping it keeps
an idle pass read-only. The applied-hash annotation catches changes of the desired object (also
fields the operator stopped sending); the subset check catches hand edits of the fields the
operator sends. Fields others own (HPA replicas, API defaults) are outside both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatoperator.builders.meta import digest
from chatoperator.spec import GROUP

APPLIED_HASH_ANNOTATION = f"{GROUP}/applied-hash"
"""On every child: a digest of the object the operator last applied."""


def with_applied_hash(desired: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``desired`` annotated with its own digest."""
    meta = dict(desired["metadata"])
    meta["annotations"] = {**meta.get("annotations", {}), APPLIED_HASH_ANNOTATION: digest(desired)}
    return {**desired, "metadata": meta}


def applied_hash(obj: Mapping[str, Any]) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(APPLIED_HASH_ANNOTATION)
    return str(value) if value is not None else None


def contains(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live``.

    Maps may hold more keys in ``live`` (defaults, other managers); lists must match item by
    item, as the operator's lists are atomic or keyed and it sends them whole.
    """
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and contains(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def needs_apply(live: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """``desired`` carries its applied hash (``with_applied_hash``)."""
    if live is None:
        return True
    return applied_hash(live) != applied_hash(desired) or not contains(live, desired)
