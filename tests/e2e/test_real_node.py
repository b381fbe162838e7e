"""The user's story on a real node: install the operator from deploy/ as a user would, apply a
ChatCluster, and chat in a browser across real backend pods; then break things the way a
cluster does (a pod deleted, a scale, a settings roll, the broker restarted) and lose nothing.

Runs unchanged against any cluster given by CHATCLUSTER_KUBECONFIG whose nodes have the images
(`make images-load-kind` for kind); by default on the real node of `tests.fixtures.node`.
Tests run in file order and share one installation (module-scoped fixtures).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from chatoperator.builders.network import AMQP_PORT, BACKEND_PORT, MANAGEMENT_PORT, STREAM_PORT
from tests.e2e.conftest import ChatPage, OpenChat
from tests.fixtures.k8s import Cluster
from tests.support.ports import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
OPERATOR_NAMESPACE = "chatcluster-system"
RESTRICTED = "pod-security.kubernetes.io/enforce"
READY = "--timeout=300s"
RESYNC_SECONDS = 30
"""The operator's default resync period (CHATCLUSTER_RESYNC_SECONDS, deploy/base/operator.yaml)."""
BROKER_CLIENT_PORTS = (AMQP_PORT, STREAM_PORT)
PAGE_TRIES = 12
"""New connections tried before two pages land on different backend pods."""
PORT_FORWARD_RESTARTS = 20
"""Times a port-forward is started again in one test module, at most."""


Figure = Callable[[str, float], None]


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", "-o=json", *args).stdout)


def create_namespace(cluster: Cluster, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {RESTRICTED: "restricted", "chatcluster.dev/test": "true"},
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(namespace))
    cluster.kubectl("wait", "--for=create", "--timeout=60s", "-n", name, "serviceaccount/default")
    return name


def wait_phase(cluster: Cluster, namespace: str, name: str, phase: str = "Ready") -> None:
    cluster.kubectl(
        "wait", "-n", namespace, f"chatcluster/{name}",
        f"--for=jsonpath={{.status.phase}}={phase}", READY,
    )  # fmt: skip


def wait_condition_reason(
    cluster: Cluster, namespace: str, name: str, condition: str, reason: str
) -> None:
    cluster.kubectl(
        "wait", "-n", namespace, f"chatcluster/{name}", "--timeout=120s",
        f'--for=jsonpath={{.status.conditions[?(@.type=="{condition}")].reason}}={reason}',
    )  # fmt: skip


def pods(cluster: Cluster, namespace: str, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/component={component}"
    items = get_json(cluster, "pods", "-n", namespace, f"--selector={selector}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def running_ready(pod: dict[str, Any]) -> bool:
    statuses = pod["status"].get("containerStatuses") or []
    return (
        pod["status"].get("phase") == "Running"
        and bool(statuses)
        and all(s["ready"] and "running" in s["state"] for s in statuses)
    )


def wait_for(condition: Any, what: str, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s"
        time.sleep(1)


def printed_columns(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    """`kubectl get chatclusters` as a user reads it: column name -> value."""
    out = cluster.kubectl("get", "chatclusters", "-n", namespace, name).stdout.splitlines()
    return dict(zip(out[0].split(), out[1].split(), strict=False))


class PortForward:
    """`kubectl port-forward` to a Service on a fixed free port of 127.0.0.1, started again
    whenever it exits. kubectl ends a port-forward when one forwarded connection fails (a
    browser closing mid-stream: "lost connection to pod"), which took the chat away from every
    later test of the module (seen once in CI: ERR_CONNECTION_REFUSED after a page closed)."""

    def __init__(self, cluster: Cluster, namespace: str, service: str, port: int) -> None:
        local = free_port()
        self.url = f"http://127.0.0.1:{local}"
        self._command = [
            str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}",
            "port-forward", "--address=127.0.0.1", "-n", namespace,
            f"service/{service}", f"{local}:{port}",
        ]  # fmt: skip
        self._closed = threading.Event()
        self.process = self._start()
        self._keeper = threading.Thread(target=self._keep_forwarding, daemon=True)
        self._keeper.start()

    def _start(self) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        assert re.search(r"127\.0\.0\.1:\d+ ->", line), f"kubectl port-forward said: {line}"
        return process

    def _keep_forwarding(self) -> None:
        for _ in range(PORT_FORWARD_RESTARTS):
            self.process.wait()
            if self._closed.is_set():
                return
            time.sleep(0.2)  # bounded: at most PORT_FORWARD_RESTARTS times
            with contextlib.suppress(AssertionError):
                self.process = self._start()

    def close(self) -> None:
        self._closed.set()
        self.process.terminate()
        self._keeper.join(timeout=10)
        # The keeper may have started one more just before it saw the close.
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def installed(node_cluster: Cluster) -> Cluster:
    """The operator installed from the bundle, running as a pod from its image."""
    node_cluster.kubectl("apply", "-k", str(ROOT / "deploy"))
    node_cluster.kubectl("apply", "-k", str(ROOT / "deploy" / "peering"))
    node_cluster.kubectl(
        "rollout", "status", "-n", OPERATOR_NAMESPACE, "deployment/chatcluster-operator", READY
    )
    return node_cluster


@pytest.fixture(scope="module")
def demo(installed: Cluster) -> Iterator[str]:
    namespace = create_namespace(installed, "demo")
    installed.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "minimal.yaml"))
    yield namespace
    installed.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def frontend(installed: Cluster, demo: str) -> Iterator[str]:
    wait_phase(installed, demo, "demo")
    forward = PortForward(installed, demo, "demo-frontend", 80)
    yield forward.url
    forward.close()


def test_the_operator_runs_from_its_image_and_stays_live(installed: Cluster) -> None:
    (pod,) = [
        p
        for p in get_json(installed, "pods", "-n", OPERATOR_NAMESPACE)["items"]
        if p["metadata"]["labels"].get("app.kubernetes.io/name") == "chatcluster-operator"
    ]
    assert running_ready(pod)
    assert pod["spec"]["containers"][0]["image"].endswith("chatcluster/operator:0.1.0")
    # Its liveness probe (kopf's /healthz) runs every 30 s; three failures would restart it.
    time.sleep(5)
    pod = get_json(installed, "pod", "-n", OPERATOR_NAMESPACE, pod["metadata"]["name"])
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def test_minimal_example_is_ready_with_running_pods(
    installed: Cluster, demo: str, node_figure: Figure
) -> None:
    wait_phase(installed, demo, "demo")
    cluster = get_json(installed, "-n", demo, "chatcluster/demo")
    (ready,) = [c for c in cluster["status"]["conditions"] if c["type"] == "Ready"]
    node_figure(
        "examples/minimal.yaml created -> Ready (server timestamps, 1 s resolution)",
        (
            datetime.fromisoformat(ready["lastTransitionTime"])
            - datetime.fromisoformat(cluster["metadata"]["creationTimestamp"])
        ).total_seconds(),
    )
    for component, count in (("rabbitmq", 1), ("backend", 2), ("frontend", 1)):
        running = wait_for(
            lambda c=component, n=count: (
                len([p for p in pods(installed, demo, c) if running_ready(p)]) == n
                and pods(installed, demo, c)
            ),
            f"{count} running {component} pods",
        )
        assert len(running) == count
    assert printed_columns(installed, demo, "demo")["BACKENDS"] == "2/2"


def reachable(
    cluster: Cluster, namespace: str, pod: str, host: str, ports: tuple[int, ...]
) -> dict[int, bool]:
    """Which of `ports` on `host` the pod `pod` can open a TCP connection to, tried from inside
    it (the chatserver image has Python); refused or timed out is unreachable."""
    probe = (
        "import json, socket\n"
        "def reach(port):\n"
        "    try:\n"
        f"        socket.create_connection(({host!r}, port), timeout=5).close()\n"
        "    except OSError:\n"
        "        return False\n"
        "    return True\n"
        f"print(json.dumps({{p: reach(p) for p in {list(ports)}}}))\n"
    )
    out = cluster.kubectl("exec", "-n", namespace, pod, "--", "python3", "-c", probe).stdout
    return {int(port): open_ for port, open_ in json.loads(out).items()}


def test_network_policies_are_enforced(installed: Cluster, demo: str) -> None:
    """kube-router enforces the operator's NetworkPolicies on the real node: the broker admits
    the backends only (the frontend runs the same image in the same namespace, and is refused),
    and a backend admits the frontend (and the operator) but not another backend."""
    wait_phase(installed, demo, "demo")
    backends = pods(installed, demo, "backend")
    one, other = backends[0]["metadata"]["name"], backends[1]["status"]["podIP"]
    (frontend_pod,) = [p["metadata"]["name"] for p in pods(installed, demo, "frontend")]
    broker, everything = "demo-rabbitmq", dict.fromkeys(BROKER_CLIENT_PORTS, True)
    assert reachable(installed, demo, one, broker, BROKER_CLIENT_PORTS) == everything
    nothing = dict.fromkeys(BROKER_CLIENT_PORTS, False)
    assert reachable(installed, demo, frontend_pod, broker, BROKER_CLIENT_PORTS) == nothing
    assert reachable(installed, demo, frontend_pod, "demo-backend", (BACKEND_PORT,)) == {
        BACKEND_PORT: True
    }
    assert reachable(installed, demo, one, other, (BACKEND_PORT,)) == {BACKEND_PORT: False}
    # The management API is the operator's alone (it keeps the room policy through it).
    assert reachable(installed, demo, one, broker, (MANAGEMENT_PORT,)) == {MANAGEMENT_PORT: False}
    wait_condition_reason(installed, demo, "demo", "RoomRetention", "Applied")


def open_on_distinct_backends(open_chat: OpenChat, url: str) -> tuple[ChatPage, ChatPage]:
    """Two people whose pages are served by two different backend pods (the Service picks a
    backend per connection; a page that lands on the first one's pod reconnects anew)."""
    ada = open_chat(url)
    ada.sign_in("Ada")
    expect(ada.pod).not_to_have_text("")
    grace = open_chat(url)
    grace.sign_in("Grace")
    for _ in range(PAGE_TRIES):
        expect(grace.pod).not_to_have_text("")
        if grace.pod.text_content() != ada.pod.text_content():
            return ada, grace
        grace.page.reload()
        grace.expect_live()
    pytest.fail(f"{PAGE_TRIES} connections all landed on {ada.pod.text_content()}")


def test_two_people_chat_across_two_backend_pods_and_are_counted(
    installed: Cluster, demo: str, frontend: str, open_chat: OpenChat
) -> None:
    ada, grace = open_on_distinct_backends(open_chat, frontend)
    backend_pods = {p["metadata"]["name"] for p in pods(installed, demo, "backend")}
    assert {ada.pod.text_content(), grace.pod.text_content()} <= backend_pods
    ada.send("hello from Ada")
    grace.send("hello from Grace")
    for page in (ada, grace):
        page.expect_delivered("hello from Ada")
        page.expect_delivered("hello from Grace")
        expect(page.users_online).to_have_text("2 people online")
    wait_for(
        lambda: printed_columns(installed, demo, "demo").get("USERS") == "2",
        "USERS 2 in kubectl get chatclusters",
        timeout=RESYNC_SECONDS + 15,
    )
    # They chat through the broker as its backend user, which has no tags (no management API,
    # no administration), never as the operator's administrator.
    secret = get_json(installed, "-n", demo, "secret/demo-rabbitmq")["data"]
    backend_user = base64.b64decode(secret["backend-username"]).decode()
    connections = broker_tool_json(
        installed, demo, "demo-rabbitmq-0", "rabbitmqctl", "list_connections", "user"
    )
    assert connections
    assert {c["user"] for c in connections} == {backend_user}
    users = broker_tool_json(installed, demo, "demo-rabbitmq-0", "rabbitmqctl", "list_users")
    assert {u["user"]: u["tags"] for u in users}[backend_user] == []


def test_a_deleted_backend_pod_loses_no_message(
    installed: Cluster, demo: str, frontend: str, open_chat: OpenChat, node_figure: Figure
) -> None:
    ada, grace = open_on_distinct_backends(open_chat, frontend)
    victim = ada.pod.text_content()
    assert victim
    ada.watch_connection()
    sent = [f"before {n}" for n in range(3)]
    for text in sent:
        grace.send(text)
    deleted_at = time.time()
    installed.kubectl("delete", "pod", "-n", demo, victim, "--wait=false")
    # Grace keeps talking while Ada's backend goes away under her.
    for n in range(10):
        text = f"during {n}"
        grace.send(text)
        sent.append(text)
        time.sleep(0.5)
    ada.expect_reconnected()
    expect(ada.pod).not_to_have_text(victim)
    node_figure("backend pod deleted -> its page live again", ada.last_live_at() - deleted_at)
    for text in sent:
        ada.expect_delivered(text)
        grace.expect_delivered(text)


def test_scaling_to_three_serves_new_clients_on_the_third_pod(
    installed: Cluster, demo: str, frontend: str, open_chat: OpenChat
) -> None:
    before = {p["metadata"]["name"] for p in pods(installed, demo, "backend")}
    installed.kubectl("scale", "chatcluster", "demo", "-n", demo, "--replicas=3")
    new = wait_for(
        lambda: [
            p["metadata"]["name"]
            for p in pods(installed, demo, "backend")
            if running_ready(p) and p["metadata"]["name"] not in before
        ],
        "a third running backend pod",
    )
    wait_for(
        lambda: len([p for p in pods(installed, demo, "backend") if running_ready(p)]) == 3,
        "3 backends",
    )
    page = open_chat(frontend)
    page.sign_in("Ada")
    for _ in range(PAGE_TRIES * 2):
        expect(page.pod).not_to_have_text("")
        if page.pod.text_content() in new:
            break
        page.page.reload()
        page.expect_live()
    else:
        pytest.fail(f"no new connection reached the new pod {new}")
    page.send("served by the third pod")
    page.expect_delivered("served by the third pod")


def test_a_settings_change_rolls_the_backends_without_losing_a_message(
    installed: Cluster, demo: str, frontend: str, open_chat: OpenChat
) -> None:
    ada, grace = open_on_distinct_backends(open_chat, frontend)
    before = {p["metadata"]["name"] for p in pods(installed, demo, "backend")}
    installed.kubectl(
        "patch", "chatcluster", "demo", "-n", demo, "--type=merge",
        "-p", json.dumps({"spec": {"chat": {"historySize": 200}}}),
    )  # fmt: skip
    sent = []
    deadline = time.monotonic() + 240
    n = 0
    while {p["metadata"]["name"] for p in pods(installed, demo, "backend")} & before:
        assert time.monotonic() < deadline, "the backends did not roll"
        text = f"while rolling {n}"
        (ada if n % 2 else grace).send(text)
        sent.append(text)
        n += 1
        time.sleep(1)
    installed.kubectl("rollout", "status", "-n", demo, "deployment/demo-backend", READY)
    for text in sent:
        ada.expect_delivered(text)
        grace.expect_delivered(text)


def test_history_survives_the_broker_pod_with_storage(
    installed: Cluster, open_chat: OpenChat
) -> None:
    namespace = create_namespace(installed, "stored")
    manifest = {
        "apiVersion": "chatcluster.dev/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": "stored"},
        "spec": {"backend": {"replicas": 1}, "rabbitmq": {"storage": {"size": "1Gi"}}},
    }
    try:
        installed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
        wait_phase(installed, namespace, "stored")
        forward = PortForward(installed, namespace, "stored-frontend", 80)
        try:
            page = open_chat(forward.url)
            page.sign_in("Ada")
            page.send("kept on disk")
            page.expect_delivered("kept on disk")
            installed.kubectl("delete", "pod", "-n", namespace, "stored-rabbitmq-0")
            wait_for(
                lambda: [p for p in pods(installed, namespace, "rabbitmq") if running_ready(p)],
                "the broker pod back",
            )
            later = open_chat(forward.url)
            later.sign_in("Grace")
            later.expect_delivered("kept on disk")
        finally:
            forward.close()
    finally:
        installed.kubectl("delete", "namespace", namespace, "--timeout=180s")


BROKER_NODE_LOSS_MS = 60_000
"""How long a message sent while a broker pod goes may take to be delivered. A backend whose
connection was on that pod hears of its loss at once when RabbitMQ closes connections on its
way down, but only after missed heartbeats (3 x 10 s) when the pod's address just vanishes; it
then reconnects through the Service and resumes every room. A run here once needed more than
the default 15 s for one message; the time it took is printed at the end of every run."""


def test_a_three_node_broker_loses_a_pod_while_people_chat_and_loses_nothing(
    installed: Cluster, open_chat: OpenChat, node_figure: Figure
) -> None:
    """Broker HA for real: every room stream is replicated on the three nodes, so deleting a
    broker pod (the first, which leads the streams it declared) costs no acknowledged message;
    backends on that node reconnect through the Service to another one and resume."""
    namespace = create_namespace(installed, "ha")
    manifest = {
        "apiVersion": "chatcluster.dev/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": "ha"},
        "spec": {
            "backend": {"replicas": 2},
            "rabbitmq": {
                "replicas": 3,
                "storage": {"size": "1Gi"},
                "retention": {"maxBytes": "4Mi", "maxAge": "7D"},
            },
        },
    }
    try:
        installed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
        wait_phase(installed, namespace, "ha")
        wait_condition_reason(installed, namespace, "ha", "RoomRetention", "Applied")
        forward = PortForward(installed, namespace, "ha-frontend", 80)
        try:
            ada, grace = open_on_distinct_backends(open_chat, forward.url)
            sent = ["before the loss"]
            grace.send(sent[0])
            ada.expect_delivered(sent[0])
            deleted_at = time.monotonic()
            installed.kubectl("delete", "pod", "-n", namespace, "ha-rabbitmq-0", "--wait=false")
            for n in range(20):
                text = f"while a broker node is gone {n}"
                (ada if n % 2 else grace).send(text)
                sent.append(text)
                time.sleep(0.5)
            for text in sent:
                ada.expect_delivered(text, within_ms=BROKER_NODE_LOSS_MS)
                grace.expect_delivered(text, within_ms=BROKER_NODE_LOSS_MS)
            node_figure(
                "broker pod deleted under chat -> every message sent meanwhile delivered",
                time.monotonic() - deleted_at,
            )
            wait_for(
                lambda: (
                    len([p for p in pods(installed, namespace, "rabbitmq") if running_ready(p)])
                    == 3
                ),
                "the broker pod back",
            )
            later = open_chat(forward.url)
            later.sign_in("Linus")
            for text in sent[-5:]:
                later.expect_delivered(text)
        finally:
            forward.close()
        # The operator's policy is on the broker, with the retention asked for, and the room's
        # stream has a replica on every node (initial-cluster-size).
        replicas = broker_tool_json(
            installed, namespace, "ha-rabbitmq-1", STREAMS_TOOL, "stream_status",
            f"chat.{namespace}.ha.room.general",
        )  # fmt: skip
        assert len(replicas) == 3
        (policy,) = broker_tool_json(
            installed, namespace, "ha-rabbitmq-1", "rabbitmqctl", "list_policies"
        )
        assert json.loads(policy["definition"]) == {
            "max-length-bytes": 4 * 1024 * 1024,
            "max-age": "7D",
            "initial-cluster-size": 3,
        }
    finally:
        installed.kubectl("delete", "namespace", namespace, "--timeout=180s")


STREAMS_TOOL = "/usr/lib/rabbitmq/bin/rabbitmq-streams"
"""Not on the image's PATH: Debian links only rabbitmqctl and a few others into /usr/sbin."""


def broker_tool_json(cluster: Cluster, namespace: str, pod: str, tool: str, *args: str) -> Any:
    """What a RabbitMQ command-line tool run in the broker pod prints, as JSON. (Not
    `list_queues`: after a node's loss it may wait 60 s on a queue that is still recovering.)"""
    out = cluster.kubectl(
        "exec", "-n", namespace, pod, "-c", "rabbitmq", "--",
        tool, "--quiet", "--formatter=json", *args,
    ).stdout  # fmt: skip
    return json.loads(out)


def test_the_bundles_operator_refuses_a_secret_nobody_marked_for_chatclusters(
    installed: Cluster,
) -> None:
    """Creating a ChatCluster must not read any Secret of the namespace through the operator:
    the bundle admits only Secrets labelled chatcluster.dev/usable=true, and says so."""
    namespace = create_namespace(installed, "unmarked")
    objects = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "someone-elses"},
            "stringData": {"secret": "k" * 40},
        },
        {
            "apiVersion": "chatcluster.dev/v1alpha1",
            "kind": "ChatCluster",
            "metadata": {"name": "nosy"},
            "spec": {"auth": {"mode": "jwt", "secretRef": {"name": "someone-elses"}}},
        },
    ]
    try:
        for obj in objects:
            installed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))

        def degraded() -> dict[str, Any] | None:
            status = get_json(installed, "-n", namespace, "chatcluster/nosy").get("status", {})
            return status if status.get("phase") == "Degraded" else None

        status = wait_for(degraded, "the ChatCluster Degraded")
        assert "chatcluster.dev/usable=true" in json.dumps(status["conditions"])
        assert not installed.kubectl(
            "get", "deployments,statefulsets", "-n", namespace, "-o", "name"
        ).stdout.strip()
    finally:
        installed.kubectl("delete", "namespace", namespace, "--timeout=180s")


def test_a_broker_that_cannot_start_says_why_in_its_condition(installed: Cluster) -> None:
    """Bad input gets a clear status, not a hang: with a broker image that is no RabbitMQ (not
    even a shell for the init container that prepares its cookie and users) the pod cannot
    start, and BrokerReady carries what the pod says: which container, its exit, the runtime's
    own words."""
    namespace = create_namespace(installed, "broken")
    manifest = {
        "apiVersion": "chatcluster.dev/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": "broken"},
        "spec": {"rabbitmq": {"image": "chatcluster/pause:0.1.0"}},
    }
    try:
        installed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))

        def broker_condition() -> dict[str, Any] | None:
            status = get_json(installed, "-n", namespace, "chatcluster/broken").get("status", {})
            found = [c for c in status.get("conditions", []) if c["type"] == "BrokerReady"]
            return found[0] if found and "last exit" in found[0]["message"] else None

        condition = wait_for(broker_condition, "BrokerReady with the pod's reason")
        assert condition["status"] == "False"
        assert "broken-rabbitmq-0: prepare" in condition["message"]
        assert '"sh"' in condition["message"]
    finally:
        installed.kubectl("delete", "namespace", namespace, "--timeout=180s")


def external_broker(cluster: Cluster) -> None:
    """The broker examples/external-broker.yaml points at (rabbitmq.messaging.svc, user chat),
    started as a pod the way a cluster that already has RabbitMQ would run it."""
    objects = yaml.safe_load((ROOT / "tests" / "e2e" / "external_rabbitmq.yaml").read_text())
    cluster.kubectl("apply", "-f", "-", input=json.dumps(objects))
    cluster.kubectl("rollout", "status", "-n", "messaging", "deployment/rabbitmq", READY)


def test_deleting_the_cluster_removes_every_child(installed: Cluster, demo: str) -> None:
    installed.kubectl("delete", "chatcluster", "demo", "-n", demo, "--wait=true", "--timeout=120s")
    wait_for(
        lambda: not installed.kubectl(
            "get", "deployments,statefulsets,services,configmaps,secrets,pods,"
            "poddisruptionbudgets,networkpolicies",
            "-n", demo, "--selector=app.kubernetes.io/instance=demo", "-o=name",
        ).stdout.strip(),
        "every child of demo gone",
    )  # fmt: skip


@pytest.mark.parametrize(
    "example",
    sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "minimal.yaml"),
)
def test_every_example_is_ready_with_running_pods(installed: Cluster, example: str) -> None:
    path = EXAMPLES / example
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    name = next(d for d in docs if d["kind"] == "ChatCluster")["metadata"]["name"]
    if example == "external-broker.yaml":
        external_broker(installed)
    namespace = create_namespace(installed, name)
    try:
        installed.kubectl("apply", "-n", namespace, "-f", str(path))
        wait_phase(installed, namespace, name)
        for component in ("backend", "frontend"):
            assert all(running_ready(p) for p in pods(installed, namespace, component))
            assert pods(installed, namespace, component)
    finally:
        # Waited for: the next example needs the CPU its pods requested (two cores in all).
        installed.kubectl("delete", "namespace", namespace, "--timeout=180s")
        if example == "external-broker.yaml":
            installed.kubectl("delete", "namespace", "messaging", "--timeout=180s")


def test_every_invalid_example_is_rejected(installed: Cluster) -> None:
    namespace = create_namespace(installed, "invalid")
    try:
        for path in sorted((EXAMPLES / "invalid").glob("*.yaml")):
            expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
            result = installed.kubectl(
                "apply", "-n", namespace, "-f", str(path), "--dry-run=server", check=False
            )
            assert result.returncode != 0, path.name
            assert expected in result.stderr, (path.name, result.stderr)
    finally:
        installed.kubectl("delete", "namespace", namespace, "--wait=false")


def test_uninstalling_the_bundle_leaves_nothing(installed: Cluster) -> None:
    installed.kubectl("delete", "-k", str(ROOT / "deploy" / "peering"), "--ignore-not-found")
    installed.kubectl("delete", "-k", str(ROOT / "deploy"), "--timeout=180s")
    assert installed.kubectl("get", "namespace", OPERATOR_NAMESPACE, check=False).returncode != 0
    crds = installed.kubectl("get", "crd", "-o=name").stdout
    assert "chatclusters.chatcluster.dev" not in crds
