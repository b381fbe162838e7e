"""ChatClusters for the operator's unit tests: every example as the API returns it, or a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from chatoperator.settings import OperatorSettings
from chatoperator.spec import KIND, Cluster, parse_cluster

EXAMPLES = Path(__file__).parents[2] / "examples"
NAMESPACE = "chat"
UID = "0c0ffee0-0000-4000-8000-000000000001"
IMAGES = OperatorSettings.from_env({}).images


def example_bodies() -> dict[str, dict[str, Any]]:
    """Every example's ChatCluster, keyed by file stem, as the API would return it."""
    bodies = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == KIND:
                doc["metadata"] |= {"namespace": NAMESPACE, "uid": UID, "generation": 1}
                bodies[path.stem] = doc
    return bodies


def example_cluster(stem: str) -> Cluster:
    return parse_cluster(example_bodies()[stem], images=IMAGES)


def cluster_from_spec(
    spec: dict[str, Any], *, name: str = "demo", namespace: str = NAMESPACE
) -> Cluster:
    body = {"metadata": {"name": name, "namespace": namespace, "uid": UID}, "spec": spec}
    return parse_cluster(body, images=IMAGES)
