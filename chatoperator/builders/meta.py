"""Names, labels, owner references and hashing shared by every builder."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chatoperator.spec import GROUP, KIND, VERSION, Cluster, EphemeralStorage, Resources

BACKEND = "backend"
FRONTEND = "frontend"
RABBITMQ = "rabbitmq"
NODES = "nodes"
"""Suffix of the broker's headless Service, ``<name>-rabbitmq-nodes``."""
ADMIN = "admin"
"""Suffix of the broker's management Service, ``<name>-rabbitmq-admin``: the operator's alone."""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "chatcluster-operator"

CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
"""On pod templates: a digest of the config the pods read at start; a change rolls them."""


def child_name(cluster: Cluster | str, component: str) -> str:
    """``<cluster>-<component>``, from the cluster or only its name (the stats poll has no
    parsed spec)."""
    name = cluster if isinstance(cluster, str) else cluster.name
    return f"{name}-{component}"


def chat_cluster_name(cluster: Cluster) -> str:
    """Its backends' ``CHAT_CLUSTER``, which prefixes their exchange and stream names:
    namespace-qualified, so two clusters sharing an external broker never share rooms."""
    return f"{cluster.namespace}.{cluster.name}"


def selector_labels(cluster: Cluster, component: str) -> dict[str, str]:
    """The labels a child's selector matches: stable for the life of the cluster."""
    return {
        "app.kubernetes.io/name": "chatcluster",
        "app.kubernetes.io/instance": cluster.name,
        "app.kubernetes.io/component": component,
    }


def labels(cluster: Cluster, component: str) -> dict[str, str]:
    # Built explicitly rather than copied from the ChatCluster: its own labels (a pause label,
    # a CI tag) must not leak into pod templates and roll the pods.
    return {
        **selector_labels(cluster, component),
        MANAGED_BY_LABEL: MANAGED_BY,
    }


def owner_reference(cluster: Cluster) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": cluster.name,
        "uid": cluster.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(cluster: Cluster, *, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": cluster.namespace,
        "labels": labels(cluster, component),
        "ownerReferences": [owner_reference(cluster)],
    }


def digest(value: Any) -> str:
    """A short, stable digest of any JSON-serialisable value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


EPHEMERAL_STORAGE = "ephemeral-storage"


def container_resources(resources: Resources, storage: EphemeralStorage) -> dict[str, Any]:
    """A container's ``resources``: the given ones, with the ephemeral-storage request and limit
    of ``storage`` where they name none (logs and emptyDirs fill the node's disk otherwise,
    unaccounted, until the kubelet evicts whatever pod it picks)."""
    merged = {kind: dict(amounts) for kind, amounts in resources.items()}
    merged.setdefault("requests", {}).setdefault(EPHEMERAL_STORAGE, storage.request)
    merged.setdefault("limits", {}).setdefault(EPHEMERAL_STORAGE, storage.limit)
    return merged


def empty_dir(name: str, storage: EphemeralStorage) -> dict[str, Any]:
    """An emptyDir volume bounded by the pod's ephemeral-storage limit."""
    return {"name": name, "emptyDir": {"sizeLimit": storage.limit}}


def pod_security_context(uid: int) -> dict[str, Any]:
    """The Pod Security Standards' "restricted" profile, at pod level."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """The "restricted" profile at container level, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def spread_across_nodes(cluster: Cluster, component: str) -> list[dict[str, Any]]:
    """Prefer one replica per node, then per zone; never block scheduling on it."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(cluster, component)},
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def prefer_other_nodes(cluster: Cluster, component: str) -> dict[str, Any]:
    """The pod's ``affinity``: a preferred anti-affinity to its siblings on one node.

    The spread above already prefers one replica per node; this says the same in the older term
    that policy scanners (kube-score's host podAntiAffinity check) and readers of ``affinity``
    look for. Preferred, never required: a small cluster must still schedule every replica."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector_labels(cluster, component)},
                    },
                }
            ]
        }
    }
