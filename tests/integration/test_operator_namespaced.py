"""The namespaced install (deploy/namespaced/, issue 10): the operator, run with only the rights
that bundle grants, reconciles the namespace it watches and cannot touch any other.

Its RBAC objects are applied under names of their own (an `-only` suffix), so that the
cluster-wide install of test_operator.py, whose binding gives the bundle's account every
namespace, proves nothing here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.k8s import Cluster
from tests.integration.test_operator import (
    CHILD_KINDS,
    EXAMPLES,
    OPERATOR_NAMESPACE,
    ROOT,
    Operator,
    account_kubeconfig,
    apply_file,
    get_json,
    wait_phase,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

BUNDLE_NAMESPACE = "chat"
"""The namespace deploy/namespaced/ watches as shipped."""
SUFFIX = "-only"
MANAGED_BY = "app.kubernetes.io/managed-by=chatcluster-operator"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding"}


def rendered_bundle(cluster: Cluster) -> list[dict[str, Any]]:
    text = cluster.kubectl("kustomize", str(ROOT / "deploy" / "namespaced")).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def own_rbac(bundle: list[dict[str, Any]], watched: str) -> list[dict[str, Any]]:
    """The bundle's account and bindings under names of their own, watching `watched`; its
    ClusterRoles as they are (the same rules, whoever binds them)."""
    objects = []
    for original in bundle:
        if original["kind"] not in RBAC_KINDS:
            continue
        obj = json.loads(json.dumps(original))
        if obj["kind"] != "ClusterRole":
            obj["metadata"]["name"] += SUFFIX
        for subject in obj.get("subjects", []):
            subject["name"] += SUFFIX
        if obj["kind"] == "RoleBinding":
            assert obj["metadata"]["namespace"] == BUNDLE_NAMESPACE
            obj["metadata"]["namespace"] = watched
        objects.append(obj)
    return objects


@pytest.fixture
def other_namespace(k8s_cluster: Cluster, k8s_namespace: str) -> Iterator[str]:
    name = f"{k8s_namespace[:50]}-other"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_a_namespaced_operator_reconciles_its_namespace_and_cannot_touch_another(
    k8s_cluster: Cluster,
    k8s_namespace: str,
    other_namespace: str,
    tmp_path: Path,
) -> None:
    bundle = rendered_bundle(k8s_cluster)
    [deployment] = [o for o in bundle if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "run", "--namespace", BUNDLE_NAMESPACE,
    ]  # fmt: skip
    k8s_cluster.kubectl("apply", "-k", str(ROOT / "deploy" / "base"))
    rbac = own_rbac(bundle, k8s_namespace)
    k8s_cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac})
    )
    account = f"chatcluster-operator{SUFFIX}"
    who = f"--as=system:serviceaccount:{OPERATOR_NAMESPACE}:{account}"

    def can(*args: str) -> bool:
        result = k8s_cluster.kubectl("auth", "can-i", who, *args, check=False)
        return result.stdout.strip() == "yes"

    assert can("patch", "deployments.apps", "-n", k8s_namespace)
    assert can("watch", "chatclusters.chatcluster.dev", "-n", k8s_namespace)
    assert not can("patch", "deployments.apps", "-n", other_namespace)
    assert not can("create", "secrets", "-n", other_namespace)
    assert not can("list", "chatclusters.chatcluster.dev", "--all-namespaces")
    assert not can("list", "clusterkopfpeerings.kopf.dev")

    operator = Operator(
        kubeconfig=account_kubeconfig(k8s_cluster, account, tmp_path),
        log_path=tmp_path / "operator.log",
        namespaces=(k8s_namespace,),
    )
    operator.start()
    try:
        apply_file(k8s_cluster, EXAMPLES / "minimal.yaml", other_namespace)
        apply_file(k8s_cluster, EXAMPLES / "minimal.yaml", k8s_namespace)
        wait_phase(k8s_cluster, k8s_namespace, "demo", "Ready")
        # The watched namespace's passes are done; give the other one as long again.
        time.sleep(4)
        other = get_json(k8s_cluster, "-n", other_namespace, "chatcluster/demo")
        assert "status" not in other
        children = get_json(
            k8s_cluster, "-n", other_namespace, CHILD_KINDS, f"--selector={MANAGED_BY}"
        )["items"]
        assert children == []
        log = operator.log()
        assert other_namespace not in log
        assert "Forbidden" not in log, log
    finally:
        operator.stop()
    assert "Traceback" not in operator.log(), operator.log()
