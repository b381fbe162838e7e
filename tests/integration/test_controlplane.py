"""The test cluster behaves like a real one where the operator depends on it: workloads become
Ready on (kwok) nodes, garbage collection runs, CRD CEL rules reject bad objects, PVCs bind."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from tests.fixtures.k8s import Cluster
from tests.support.k8s_components import KWOK_NODE_ANNOTATION

pytestmark = pytest.mark.k8s

# Present in kind's node images and never pulled under kwok, so the tests also run on kind.
IMAGE = "registry.k8s.io/pause:3.10"
WAIT = "--timeout=90s"


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", "-o=json", *args).stdout)


def apply(cluster: Cluster, manifest: dict[str, Any], *, check: bool = True) -> Any:
    return cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=check)


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_deployment_pods_become_ready_on_kwok_nodes_and_are_garbage_collected(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    key, value = KWOK_NODE_ANNOTATION
    kwok_nodes = {
        node["metadata"]["name"]
        for node in get_json(k8s_cluster, "nodes")["items"]
        if node["metadata"].get("annotations", {}).get(key) == value
    }
    if not kwok_nodes:
        pytest.skip("this cluster has no kwok nodes")
    ns = f"--namespace={k8s_namespace}"

    k8s_cluster.kubectl("create", "deployment", "smoke", f"--image={IMAGE}", "--replicas=2", ns)
    k8s_cluster.kubectl("rollout", "status", "deployment/smoke", ns, WAIT)

    assert get_json(k8s_cluster, "deployment/smoke", ns)["status"]["readyReplicas"] == 2
    pods = get_json(k8s_cluster, "pods", "--selector=app=smoke", ns)["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert is_ready(pod)
        assert pod["spec"]["nodeName"] in kwok_nodes
        assert pod["status"]["podIP"]
    replica_sets = k8s_cluster.kubectl("get", "replicasets", "--selector=app=smoke", ns, "-o=name")
    owned = [*replica_sets.stdout.split(), *(f"pod/{p['metadata']['name']}" for p in pods)]
    assert len(owned) == 3

    k8s_cluster.kubectl("delete", "deployment/smoke", ns)
    k8s_cluster.kubectl("wait", "--for=delete", WAIT, ns, *owned)


def test_crd_cel_rule_rejects_a_bad_object_with_the_rules_message(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    # A group of its own, so a run against a shared cluster never meets another run's CRD.
    group = f"t{secrets.token_hex(4)}.tests.chatcluster.dev"
    crd_name = f"replicaranges.{group}"
    message = "minReplicas must not exceed maxReplicas"
    range_schema = {
        "type": "object",
        "properties": {
            "minReplicas": {"type": "integer"},
            "maxReplicas": {"type": "integer"},
        },
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.maxReplicas", "message": message}
        ],
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": "replicaranges",
                "singular": "replicarange",
                "kind": "ReplicaRange",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": range_schema},
                        }
                    },
                }
            ],
        },
    }

    def replica_range(name: str, minimum: int, maximum: int) -> dict[str, Any]:
        return {
            "apiVersion": f"{group}/v1",
            "kind": "ReplicaRange",
            "metadata": {"name": name, "namespace": k8s_namespace},
            "spec": {"minReplicas": minimum, "maxReplicas": maximum},
        }

    apply(k8s_cluster, crd)
    try:
        k8s_cluster.kubectl("wait", "--for=condition=Established", WAIT, f"crd/{crd_name}")
        apply(k8s_cluster, replica_range("good", 1, 3))

        rejected = apply(k8s_cluster, replica_range("bad", 3, 1), check=False)

        assert rejected.returncode != 0
        assert message in rejected.stderr
        names = k8s_cluster.kubectl("get", crd_name, f"--namespace={k8s_namespace}", "-o=name")
        assert names.stdout.split() == [f"replicarange.{group}/good"]
    finally:
        k8s_cluster.kubectl("delete", f"crd/{crd_name}", "--wait=false")


def test_pvc_binds_through_the_default_storage_class_and_its_volume_is_reclaimed(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    defaults = [
        sc["metadata"]["name"]
        for sc in get_json(k8s_cluster, "storageclasses")["items"]
        if sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    ns = f"--namespace={k8s_namespace}"
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": k8s_namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    # A consumer, so classes that bind on first use (kind's) bind too.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "consumer", "namespace": k8s_namespace},
        "spec": {
            "containers": [
                {"name": "c", "image": IMAGE, "volumeMounts": [{"name": "d", "mountPath": "/d"}]}
            ],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }

    apply(k8s_cluster, claim)
    apply(k8s_cluster, pod)
    k8s_cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Bound", WAIT, ns, "pvc/data")
    k8s_cluster.kubectl("wait", "--for=condition=Ready", WAIT, ns, "pod/consumer")

    bound = get_json(k8s_cluster, "pvc/data", ns)
    assert defaults == [bound["spec"]["storageClassName"]]
    volume = f"pv/{bound['spec']['volumeName']}"
    assert get_json(k8s_cluster, volume)["spec"]["claimRef"]["name"] == "data"

    k8s_cluster.kubectl("delete", ns, "pod/consumer", "pvc/data")
    k8s_cluster.kubectl("wait", "--for=delete", WAIT, volume)
