"""The operator against a real kube-apiserver: install with deploy/, run it under the bundle's
ServiceAccount (so the RBAC is proven sufficient), and check the contract of DESIGN.md section 2.

By default pods run on kwok nodes: they become Running/Ready but no container runs, so
`usersOnline` can never be read and must simply stay unset. The same tests run against any cluster
given by CHATCLUSTER_KUBECONFIG; tests/e2e/test_real_node.py covers what only running pods show.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatoperator.builders.meta import CONFIG_HASH_ANNOTATION
from chatoperator.drift import APPLIED_HASH_ANNOTATION, contains
from chatoperator.render import GENERATED, UID_PLACEHOLDER
from tests.fixtures.k8s import Cluster
from tests.support.ports import free_port

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
OPERATOR_NAMESPACE = "chatcluster-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{OPERATOR_NAMESPACE}:chatcluster-operator"
RESYNC_SECONDS = 2
READY_TIMEOUT = "--timeout=120s"
REPAIR_TIMEOUT = "--timeout=10s"
CHILD_KINDS = (
    "deployments,statefulsets,services,configmaps,poddisruptionbudgets,networkpolicies,"
    "horizontalpodautoscalers.autoscaling"
)


@dataclass
class Operator:
    """`chatoperator run` as a subprocess with the operator ServiceAccount's credentials."""

    kubeconfig: Path
    log_path: Path
    namespaces: tuple[str, ...] = ()
    """Watched with `--namespace`; none: every namespace."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "chatoperator.cli", "run", "--standalone"]
        command += [f"--liveness=http://127.0.0.1:{self.port}/healthz"]
        command += [f"--namespace={namespace}" for namespace in self.namespaces]
        env = {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": "/usr/bin:/bin",
            "CHATCLUSTER_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "CHATCLUSTER_STATS_TIMEOUT_SECONDS": "0.5",
            "CHATCLUSTER_RETRY_DELAY_SECONDS": "2",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while not self._alive():
            assert self.process.poll() is None, f"operator exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"no liveness after 60 s:\n{self.log()}"
            time.sleep(0.2)

    def _alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def passes(self, namespace: str, name: str) -> list[int]:
        """The write counts of every pass logged for one cluster, oldest first."""
        pattern = rf"pass {re.escape(namespace)}/{re.escape(name)}: phase=\w+ writes=(\d+)"
        return [int(n) for n in re.findall(pattern, self.log())]

    def await_passes(self, namespace: str, name: str, *, more_than: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.passes(namespace, name)) <= more_than:
            assert time.monotonic() < deadline, f"no new pass in {timeout} s:\n{self.log()}"
            time.sleep(0.2)


def account_kubeconfig(cluster: Cluster, account: str, directory: Path) -> Path:
    """A kubeconfig for the operator namespace's ServiceAccount `account` (a 2 h token)."""
    token = cluster.kubectl(
        "create", "token", account, "-n", OPERATOR_NAMESPACE, "--duration=2h"
    ).stdout.strip()
    config = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o=json").stdout)
    config["users"] = [{"name": account, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = account
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    return kubeconfig


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", "-o=json", *args).stdout)


def apply_file(cluster: Cluster, path: Path, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(path))


def wait_phase(cluster: Cluster, namespace: str, name: str, phase: str) -> None:
    cluster.kubectl(
        "wait", "-n", namespace, f"chatcluster/{name}",
        f"--for=jsonpath={{.status.phase}}={phase}", READY_TIMEOUT,
    )  # fmt: skip


def cluster_name(path: Path) -> str:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return str(next(d for d in docs if d["kind"] == "ChatCluster")["metadata"]["name"])


def operator_fingerprint(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """Per owned child: what only a write by the operator (or a spec change) would alter.

    Its generation and the operator's managedFields entries (fields and time). Status updates
    by the workload controllers (kwok pods flipping Ready) do not count.
    """
    kinds = f"{CHILD_KINDS},secrets"
    items = get_json(cluster, "-n", namespace, kinds, "--show-managed-fields")["items"]
    return {
        f"{i['kind']}/{i['metadata']['name']}": (
            i["metadata"].get("generation"),
            [
                (m["manager"], m.get("time"), m.get("fieldsV1"))
                for m in i["metadata"]["managedFields"]
                if m["manager"].startswith("chatcluster-operator")
            ],
        )
        for i in items
        if i["metadata"].get("ownerReferences")
    }


def cluster_status(cluster: Cluster, namespace: str, name: str) -> Any:
    return get_json(cluster, "-n", namespace, f"chatcluster/{name}").get("status")


def writes_of_a_quiet_window(
    cluster: Cluster, operator: Operator, namespace: str, name: str
) -> list[int]:
    """Write counts of two consecutive passes during which the ChatCluster's status held.

    A status that changed (kwok's nodes can flap NotReady on a loaded machine, taking the pods'
    readiness with them) is a reason to write it; such a window is retried, at most 3 times.
    """
    for _ in range(3):
        before, seen = (
            cluster_status(cluster, namespace, name),
            len(operator.passes(namespace, name)),
        )
        operator.await_passes(namespace, name, more_than=seen + 1, timeout=6 * RESYNC_SECONDS)
        writes = operator.passes(namespace, name)[seen:]
        if cluster_status(cluster, namespace, name) == before:
            return writes
    pytest.fail("the ChatCluster's status never held for two passes")


@pytest.fixture(scope="module")
def operator(k8s_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    k8s_cluster.kubectl("apply", "-k", str(ROOT / "deploy"))
    k8s_cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/chatclusters.chatcluster.dev", "crd/clusterkopfpeerings.kopf.dev",
    )  # fmt: skip
    k8s_cluster.kubectl("apply", "-k", str(ROOT / "deploy" / "peering"))
    directory = tmp_path_factory.mktemp("operator")
    kubeconfig = account_kubeconfig(k8s_cluster, "chatcluster-operator", directory)
    running = Operator(kubeconfig=kubeconfig, log_path=directory / "operator.log")
    running.start()
    yield running
    running.stop()
    assert "Traceback" not in running.log(), running.log()


@pytest.fixture
def demo(k8s_cluster: Cluster, k8s_namespace: str, operator: Operator) -> str:
    """The minimal example, Ready, in a fresh namespace; returns the namespace."""
    apply_file(k8s_cluster, EXAMPLES / "minimal.yaml", k8s_namespace)
    wait_phase(k8s_cluster, k8s_namespace, "demo", "Ready")
    return k8s_namespace


@pytest.mark.parametrize(
    "manifest", sorted((EXAMPLES / "invalid").glob("*.yaml")), ids=lambda p: p.stem
)
def test_invalid_manifest_is_rejected_with_its_message(
    k8s_cluster: Cluster, k8s_namespace: str, operator: Operator, manifest: Path
) -> None:
    expected = manifest.read_text().splitlines()[0].removeprefix("# expect: ")
    result = k8s_cluster.kubectl("apply", "-n", k8s_namespace, "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert expected in result.stderr


@pytest.mark.parametrize("manifest", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_applies_and_becomes_ready_with_every_child(
    k8s_cluster: Cluster,
    k8s_namespace: str,
    operator: Operator,
    manifest: Path,
    record_property: Any,
) -> None:
    name = cluster_name(manifest)
    started = time.monotonic()
    apply_file(k8s_cluster, manifest, k8s_namespace)
    wait_phase(k8s_cluster, k8s_namespace, name, "Ready")
    record_property("seconds_to_ready", round(time.monotonic() - started, 2))
    print(f"{manifest.stem}: apply -> Ready in {time.monotonic() - started:.1f} s")

    spec = get_json(k8s_cluster, "-n", k8s_namespace, f"chatcluster/{name}")["spec"]
    expected = {f"Deployment/{name}-backend", f"Deployment/{name}-frontend"}
    expected |= {f"Service/{name}-backend", f"Service/{name}-frontend"}
    expected |= {f"PodDisruptionBudget/{name}-backend", f"PodDisruptionBudget/{name}-frontend"}
    expected |= {f"NetworkPolicy/{name}-backend", f"NetworkPolicy/{name}-frontend"}
    if "external" not in spec["rabbitmq"]:
        expected |= {f"StatefulSet/{name}-rabbitmq", f"Service/{name}-rabbitmq"}
        expected |= {f"Service/{name}-rabbitmq-nodes", f"Service/{name}-rabbitmq-admin"}
        expected |= {f"ConfigMap/{name}-rabbitmq"}
        expected |= {f"NetworkPolicy/{name}-rabbitmq", f"PodDisruptionBudget/{name}-rabbitmq"}
        expected |= {f"Secret/{name}-rabbitmq"}
    if spec["backend"]["autoscaling"]["enabled"]:
        expected |= {f"HorizontalPodAutoscaler/{name}-backend"}
    children = get_json(k8s_cluster, "-n", k8s_namespace, f"{CHILD_KINDS},secrets")["items"]
    owned = {
        f"{c['kind']}/{c['metadata']['name']}": c
        for c in children
        if any(r["name"] == name for r in c["metadata"].get("ownerReferences", []))
    }
    assert set(owned) == expected
    for child in owned.values():
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == name
        assert labels["app.kubernetes.io/managed-by"] == "chatcluster-operator"


SERVER_FILLED_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
)


def rendered(manifest: Path, namespace: str) -> list[dict[str, Any]]:
    """`chatoperator render` for the test's operator: its default images, outside the cluster."""
    command = [sys.executable, "-m", "chatoperator.cli", "render", "-f", str(manifest)]
    command += ["-n", namespace, "--operator-namespace="]
    result = subprocess.run(
        command, cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def as_rendered(live: dict[str, Any], owner_uid: str) -> dict[str, Any]:
    """A live child with what the API server and the generator fill in put back as render shows
    it: server metadata and status dropped, placeholders where render has them."""
    obj = {key: value for key, value in live.items() if key != "status"}
    meta = {k: v for k, v in live["metadata"].items() if k not in SERVER_FILLED_METADATA}
    annotations = {
        k: v for k, v in meta.pop("annotations", {}).items() if k != APPLIED_HASH_ANNOTATION
    }
    if annotations:
        meta["annotations"] = annotations
    for ref in meta["ownerReferences"]:
        assert ref["uid"] == owner_uid
        ref["uid"] = UID_PLACEHOLDER
    obj["metadata"] = meta
    return obj


@pytest.mark.parametrize("manifest", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_render_is_what_the_operator_applies(
    k8s_cluster: Cluster, k8s_namespace: str, operator: Operator, manifest: Path
) -> None:
    name = cluster_name(manifest)
    apply_file(k8s_cluster, manifest, k8s_namespace)
    wait_phase(k8s_cluster, k8s_namespace, name, "Ready")
    uid = get_json(k8s_cluster, "-n", k8s_namespace, f"chatcluster/{name}")["metadata"]["uid"]
    children = get_json(k8s_cluster, "-n", k8s_namespace, f"{CHILD_KINDS},secrets")["items"]
    live = {
        f"{c['kind']}/{c['metadata']['name']}": as_rendered(c, uid)
        for c in children
        if c["metadata"].get("ownerReferences")
    }
    expected = {
        f"{o['kind']}/{o['metadata']['name']}": o for o in rendered(manifest, k8s_namespace)
    }
    assert set(live) == set(expected)
    for key, want in expected.items():
        got = live[key]
        if want["kind"] == "Secret":
            # Generated values: the same keys, and the URL as rendered around the credentials.
            placeholders = want.pop("stringData")
            data = {k: base64.b64decode(v).decode() for k, v in got.pop("data").items()}
            assert set(data) == set(placeholders)
            pattern = re.escape(placeholders["url"]).replace(re.escape(GENERATED), "[^:@]+")
            assert re.fullmatch(pattern, data["url"])
        annotations = (
            want.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        )
        if annotations.get(CONFIG_HASH_ANNOTATION) == GENERATED:
            annotations[CONFIG_HASH_ANNOTATION] = got["spec"]["template"]["metadata"][
                "annotations"
            ][CONFIG_HASH_ANNOTATION]
        # Every field render shows, with its value; the API server's defaults come on top.
        assert contains(got, want), f"{key}: rendered {want}\nlive {got}"


def test_status_conditions_columns_and_no_finalizer(
    k8s_cluster: Cluster, demo: str, operator: Operator
) -> None:
    # kwok's broker pods run nothing: the operator says it cannot reach the management API
    # to keep the room policy, and that changes nothing else.
    k8s_cluster.kubectl(
        "wait", "-n", demo, "chatcluster/demo", READY_TIMEOUT,
        '--for=jsonpath={.status.conditions[?(@.type=="RoomRetention")].reason}=Unreachable',
    )  # fmt: skip
    cluster = get_json(k8s_cluster, "-n", demo, "chatcluster/demo")
    status = cluster["status"]
    assert cluster["metadata"].get("finalizers") is None
    assert status["observedGeneration"] == cluster["metadata"]["generation"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
        "BrokerReady": "True",
        "RoomRetention": "False",
    }
    (retention,) = [c for c in status["conditions"] if c["type"] == "RoomRetention"]
    assert f"http://demo-rabbitmq-admin.{demo}.svc:15672" in retention["message"]
    assert status["backend"]["readyReplicas"] == 2
    assert status["rabbitmq"] == {"readyReplicas": 1}
    assert status["url"] == f"http://demo-frontend.{demo}.svc:80"
    table = k8s_cluster.kubectl("get", "chatclusters", "-n", demo).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "BACKENDS", "USERS", "ROOMS", "AGE"]
    assert table[1].split()[:3] == ["demo", "Ready", "2/2"]
    events = get_json(
        k8s_cluster, "-n", demo, "events", "--field-selector=involvedObject.name=demo"
    )
    assert {"Created", "Ready"} <= {e["reason"] for e in events["items"]}


def test_users_online_stays_unset_while_no_backend_answers(
    k8s_cluster: Cluster, demo: str, operator: Operator
) -> None:
    if k8s_cluster.containers_run:
        pytest.skip("backends answer on this cluster: test_real_node.py checks USERS instead")
    status = get_json(k8s_cluster, "-n", demo, "chatcluster/demo")["status"]
    assert status["phase"] == "Ready"
    assert "usersOnline" not in status  # an unknown count is left unset, not reported as 0


def test_kubectl_scale_changes_the_backend_deployment(k8s_cluster: Cluster, demo: str) -> None:
    k8s_cluster.kubectl("scale", "-n", demo, "chatcluster/demo", "--replicas=3")
    k8s_cluster.kubectl(
        "wait", "-n", demo, "deployment/demo-backend", "--for=jsonpath={.spec.replicas}=3",
        REPAIR_TIMEOUT,
    )  # fmt: skip
    k8s_cluster.kubectl(
        "wait", "-n", demo, "chatcluster/demo", "--for=jsonpath={.status.backends}=3/3",
        READY_TIMEOUT,
    )  # fmt: skip


def test_deleted_child_and_edited_field_are_repaired(k8s_cluster: Cluster, demo: str) -> None:
    k8s_cluster.kubectl("delete", "-n", demo, "service/demo-backend", "configmap/demo-rabbitmq")
    for child in ("service/demo-backend", "configmap/demo-rabbitmq"):
        k8s_cluster.kubectl("wait", "-n", demo, child, "--for=create", REPAIR_TIMEOUT)
    grace = {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 99}}}}
    k8s_cluster.kubectl(
        "patch", "-n", demo, "deployment/demo-frontend", "--type=merge", "-p", json.dumps(grace)
    )
    k8s_cluster.kubectl(
        "wait", "-n", demo, "deployment/demo-frontend",
        "--for=jsonpath={.spec.template.spec.terminationGracePeriodSeconds}=25", REPAIR_TIMEOUT,
    )  # fmt: skip


def test_deleting_the_cluster_collects_every_child_even_with_the_operator_down(
    k8s_cluster: Cluster, demo: str, operator: Operator
) -> None:
    operator.stop()
    try:
        # No finalizer: the delete completes without the operator.
        k8s_cluster.kubectl("delete", "-n", demo, "chatcluster/demo", "--timeout=30s")
        for child in (
            "deployment/demo-backend",
            "statefulset/demo-rabbitmq",
            "secret/demo-rabbitmq",
        ):
            k8s_cluster.kubectl("wait", "-n", demo, child, "--for=delete", "--timeout=60s")
        left = get_json(k8s_cluster, "-n", demo, f"{CHILD_KINDS},secrets")["items"]
        assert not [i for i in left if i["metadata"].get("ownerReferences")]
    finally:
        operator.start()


def test_settings_change_rolls_the_backend_pods(k8s_cluster: Cluster, demo: str) -> None:
    template = "{.spec.template.metadata.annotations.chatcluster\\.dev/config-hash}"
    before = k8s_cluster.kubectl(
        "get", "-n", demo, "deployment/demo-backend", f"-o=jsonpath={template}"
    ).stdout
    old_pods = {p["metadata"]["name"] for p in get_json(k8s_cluster, "-n", demo, "pods")["items"]}
    rooms = {"spec": {"chat": {"rooms": ["general", "dev"]}}}
    k8s_cluster.kubectl(
        "patch", "-n", demo, "chatcluster/demo", "--type=merge", "-p", json.dumps(rooms)
    )
    rooms_env = '{.spec.template.spec.containers[0].env[?(@.name=="CHAT_ROOMS")].value}'
    k8s_cluster.kubectl(
        "wait", "-n", demo, "deployment/demo-backend",
        f"--for=jsonpath={rooms_env}=general,dev", REPAIR_TIMEOUT,
    )  # fmt: skip
    k8s_cluster.kubectl("rollout", "status", "-n", demo, "deployment/demo-backend", "--timeout=90s")
    after = get_json(k8s_cluster, "-n", demo, "deployment/demo-backend")
    assert (
        after["spec"]["template"]["metadata"]["annotations"]["chatcluster.dev/config-hash"]
        != before
    )
    env = {
        e["name"]: e.get("value") for e in after["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CHAT_ROOMS"] == "general,dev"
    backends = get_json(
        k8s_cluster, "-n", demo, "pods", "-l", "app.kubernetes.io/component=backend"
    )
    assert not {p["metadata"]["name"] for p in backends["items"]} & old_pods


def test_paused_cluster_gets_no_writes(k8s_cluster: Cluster, demo: str, operator: Operator) -> None:
    paused = {"spec": {"paused": True}}
    k8s_cluster.kubectl(
        "patch", "-n", demo, "chatcluster/demo", "--type=merge", "-p", json.dumps(paused)
    )
    wait_phase(k8s_cluster, demo, "demo", "Paused")
    before = operator_fingerprint(k8s_cluster, demo)
    changes = {"spec": {"backend": {"replicas": 5}, "chat": {"historySize": 7}}}
    k8s_cluster.kubectl(
        "patch", "-n", demo, "chatcluster/demo", "--type=merge", "-p", json.dumps(changes)
    )
    k8s_cluster.kubectl("delete", "-n", demo, "service/demo-frontend")
    seen = len(operator.passes(demo, "demo"))
    operator.await_passes(demo, "demo", more_than=seen + 1, timeout=6 * RESYNC_SECONDS)
    after = operator_fingerprint(k8s_cluster, demo)
    assert "Service/demo-frontend" not in after
    del before["Service/demo-frontend"]
    assert after == before
    assert get_json(k8s_cluster, "-n", demo, "deployment/demo-backend")["spec"]["replicas"] == 2


def test_autoscaling_takes_over_replicas_without_resetting_them(
    k8s_cluster: Cluster, demo: str, operator: Operator
) -> None:
    k8s_cluster.kubectl("scale", "-n", demo, "chatcluster/demo", "--replicas=3")
    k8s_cluster.kubectl(
        "wait", "-n", demo, "deployment/demo-backend", "--for=jsonpath={.status.readyReplicas}=3",
        READY_TIMEOUT,
    )  # fmt: skip
    on = {
        "spec": {"backend": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}}}
    }
    k8s_cluster.kubectl(
        "patch", "-n", demo, "chatcluster/demo", "--type=merge", "-p", json.dumps(on)
    )
    k8s_cluster.kubectl("wait", "-n", demo, "hpa/demo-backend", "--for=create", REPAIR_TIMEOUT)
    # The hand-over keeps the 3 replicas; the HPA (no metrics on kwok) leaves them in range.
    assert get_json(k8s_cluster, "-n", demo, "deployment/demo-backend")["spec"]["replicas"] == 3
    # Now replicas are the HPA's: a change by another manager survives the operator's passes.
    k8s_cluster.kubectl("scale", "-n", demo, "deployment/demo-backend", "--replicas=4")
    seen = len(operator.passes(demo, "demo"))
    operator.await_passes(demo, "demo", more_than=seen + 1, timeout=6 * RESYNC_SECONDS)
    deployment = get_json(
        k8s_cluster, "-n", demo, "deployment/demo-backend", "--show-managed-fields"
    )
    assert deployment["spec"]["replicas"] == 4
    owners = [
        m["manager"]
        for m in deployment["metadata"]["managedFields"]
        if "f:replicas" in m.get("fieldsV1", {}).get("f:spec", {})
    ]
    assert "chatcluster-operator" not in owners


def test_idle_passes_and_a_restart_write_nothing(
    k8s_cluster: Cluster, demo: str, operator: Operator, record_property: Any
) -> None:
    before = operator_fingerprint(k8s_cluster, demo)
    idle_writes = writes_of_a_quiet_window(k8s_cluster, operator, demo, "demo")
    record_property("idle_pass_writes", idle_writes)
    print(f"idle passes, API writes per pass: {idle_writes}")
    assert set(idle_writes) == {0}
    assert operator_fingerprint(k8s_cluster, demo) == before

    operator.stop()
    operator.start()
    after_restart = writes_of_a_quiet_window(k8s_cluster, operator, demo, "demo")
    print(f"after a restart, API writes per pass: {after_restart}")
    assert set(after_restart) == {0}
    assert operator_fingerprint(k8s_cluster, demo) == before


def test_the_operator_account_has_no_more_rights_than_it_needs(
    k8s_cluster: Cluster, operator: Operator
) -> None:
    def can(*args: str) -> bool:
        result = k8s_cluster.kubectl("auth", "can-i", f"--as={SERVICE_ACCOUNT}", *args, check=False)
        return result.stdout.strip() == "yes"

    assert can("create", "secrets", "-n", "default")
    assert can("patch", "deployments.apps", "-n", "default")
    assert not can("list", "secrets", "-n", "default")
    assert not can("delete", "secrets", "-n", "default")
    assert can("get", "persistentvolumeclaims", "-n", "default")
    assert not can("list", "persistentvolumeclaims", "-n", "default")
    assert can("list", "pods", "-n", "default")
    assert not can("get", "pods/log", "-n", "default")
    assert not can("delete", "chatclusters.chatcluster.dev", "-n", "default")
    assert not can("create", "pods", "-n", "default")
    operator = get_json(k8s_cluster, "-n", OPERATOR_NAMESPACE, "deployment/chatcluster-operator")
    assert operator["spec"]["strategy"]["type"] == "Recreate"
    assert operator["spec"]["replicas"] == 1


def test_missing_broker_secret_is_degraded_without_a_hot_loop_then_recovers(
    k8s_cluster: Cluster, k8s_namespace: str, operator: Operator
) -> None:
    ns = k8s_namespace
    docs = list(yaml.safe_load_all((EXAMPLES / "external-broker.yaml").read_text()))
    secret, chat = (
        next(d for d in docs if d["kind"] == kind) for kind in ("Secret", "ChatCluster")
    )
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(chat))
    wait_phase(k8s_cluster, ns, "shared", "Degraded")
    degraded = {
        c["type"]: c
        for c in get_json(k8s_cluster, "-n", ns, "chatcluster/shared")["status"]["conditions"]
    }["Degraded"]
    assert degraded["reason"] == "InvalidSpec"
    assert "shared-broker" in degraded["message"]
    events = get_json(k8s_cluster, "-n", ns, "events", "--field-selector=type=Warning")["items"]
    assert [e for e in events if e["reason"] == "Degraded" and "shared-broker" in e["message"]]

    # Retried at the resync pace (and on child events), not in a loop.
    started, seen = time.monotonic(), len(operator.passes(ns, "shared"))
    operator.await_passes(ns, "shared", more_than=seen + 1, timeout=6 * RESYNC_SECONDS)
    elapsed = time.monotonic() - started
    assert len(operator.passes(ns, "shared")) - seen <= elapsed / RESYNC_SECONDS + 3

    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))
    wait_phase(k8s_cluster, ns, "shared", "Ready")


def stored_broker(replicas: int) -> str:
    return json.dumps(
        {
            "apiVersion": "chatcluster.dev/v1alpha1",
            "kind": "ChatCluster",
            "metadata": {"name": "stored"},
            "spec": {"rabbitmq": {"replicas": replicas, "storage": {"size": "1Gi"}}},
        }
    )


def test_the_broker_never_shrinks_and_its_storage_never_changes(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    """The two transition rules of the CRD, as the API server evaluates them on an update."""
    k8s_cluster.kubectl("apply", "-n", k8s_namespace, "-f", "-", input=stored_broker(3))
    for patch, expected in (
        ({"replicas": 1}, "rabbitmq.replicas cannot shrink"),
        ({"storage": {"size": "2Gi"}}, "rabbitmq.storage is immutable"),
    ):
        result = k8s_cluster.kubectl(
            "patch", "-n", k8s_namespace, "chatcluster/stored", "--type=merge",
            "-p", json.dumps({"spec": {"rabbitmq": patch}}), check=False,
        )  # fmt: skip
        assert result.returncode != 0, patch
        assert expected in result.stderr


def test_scaling_the_broker_up_restarts_no_existing_node(
    k8s_cluster: Cluster, k8s_namespace: str, operator: Operator
) -> None:
    ns = k8s_namespace
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=stored_broker(1))
    wait_phase(k8s_cluster, ns, "stored", "Ready")
    first = get_json(k8s_cluster, "-n", ns, "pod/stored-rabbitmq-0")["metadata"]["uid"]
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=stored_broker(3))
    k8s_cluster.kubectl(
        "wait", "-n", ns, "statefulset/stored-rabbitmq",
        "--for=jsonpath={.status.readyReplicas}=3", READY_TIMEOUT,
    )  # fmt: skip
    statefulset = get_json(k8s_cluster, "-n", ns, "statefulset/stored-rabbitmq")
    assert statefulset["status"]["updateRevision"] == statefulset["status"]["currentRevision"]
    assert get_json(k8s_cluster, "-n", ns, "pod/stored-rabbitmq-0")["metadata"]["uid"] == first
    conf = get_json(k8s_cluster, "-n", ns, "configmap/stored-rabbitmq")["data"]["rabbitmq.conf"]
    assert f"nodes.3 = rabbit@stored-rabbitmq-2.stored-rabbitmq-nodes.{ns}" in conf


def test_a_deleted_broker_secret_is_reported_not_regenerated_then_restored(
    k8s_cluster: Cluster, demo: str
) -> None:
    secret = get_json(k8s_cluster, "-n", demo, "secret/demo-rabbitmq")
    backend = get_json(k8s_cluster, "-n", demo, "deployment/demo-backend")["spec"]["template"]
    k8s_cluster.kubectl("delete", "-n", demo, "secret/demo-rabbitmq")
    wait_phase(k8s_cluster, demo, "demo", "Degraded")
    conditions = cluster_status(k8s_cluster, demo, "demo")["conditions"]
    degraded = next(c for c in conditions if c["type"] == "Degraded")
    assert degraded["reason"] == "BrokerCredentialsLost"
    assert "StatefulSet demo-rabbitmq" in degraded["message"]
    assert k8s_cluster.kubectl("get", "-n", demo, "secret/demo-rabbitmq", check=False).returncode
    after = get_json(k8s_cluster, "-n", demo, "deployment/demo-backend")["spec"]["template"]
    assert after == backend  # the backends keep the credentials the broker knows

    restored = {k: secret[k] for k in ("apiVersion", "kind", "type", "data")}
    restored["metadata"] = {k: secret["metadata"][k] for k in ("name", "labels", "ownerReferences")}
    k8s_cluster.kubectl("apply", "-n", demo, "-f", "-", input=json.dumps(restored))
    wait_phase(k8s_cluster, demo, "demo", "Ready")
    assert get_json(k8s_cluster, "-n", demo, "secret/demo-rabbitmq")["data"] == secret["data"]
