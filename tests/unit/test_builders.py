"""Builders: golden files per example (reviewed by hand) and properties of every child."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatoperator.builders import CHILDREN, BuildInput
from chatoperator.builders.backend_deployment import window_max_bytes
from chatoperator.builders.broker_secret import BrokerCredentials, build_broker_secret
from chatoperator.builders.broker_statefulset import broker_claim_name
from chatoperator.builders.chatserver_pods import DRAIN_SECONDS, TERMINATION_GRACE_SECONDS
from chatoperator.builders.meta import CONFIG_HASH_ANNOTATION
from chatoperator.builders.network import MANAGEMENT_PORT, STREAM_REPLICATION_PORTS
from chatoperator.builders.network_policy import (
    CLUSTER_DNS_PODS,
    OPERATOR_POD_LABELS,
    build_backend_network_policy,
)
from chatoperator.render import to_yaml
from chatoperator.spec import Cluster
from chatserver import contract
from tests.unit.clusters import (
    UID,
    cluster_from_spec,
    example_bodies,
    example_cluster,
)

GOLDEN = Path(__file__).parent / "golden"
CREDENTIALS = BrokerCredentials(
    username="chat-user",
    password="pw",
    backend_username="backend-user",
    backend_password="backend-pw",
    erlang_cookie="cookie",
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


EXAMPLE_STEMS = sorted(example_bodies())


def wanted_children(
    cluster: Cluster, broker_url_digest: str = "url-digest"
) -> list[dict[str, Any]]:
    inp = BuildInput(cluster, broker_url_digest)
    return [child.build(inp) for child in CHILDREN if child.wanted(cluster)]


def rendered(cluster: Cluster) -> list[dict[str, Any]]:
    secret = [] if cluster.external_broker else [build_broker_secret(cluster, CREDENTIALS)]
    return [*secret, *wanted_children(cluster)]


def workload(children: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(c for c in children if c["kind"] == kind and c["metadata"]["name"] == name)


def pod_hash(children: list[dict[str, Any]], name: str) -> str:
    template = workload(children, "Deployment", name)["spec"]["template"]
    return str(template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_children_match_the_reviewed_golden_file(stem: str) -> None:
    # Regenerate, then review the diff: UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit -k golden
    path = GOLDEN / f"{stem}.yaml"
    children = rendered(example_cluster(stem))
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(to_yaml(children))  # as `chatoperator render` prints them
    assert list(yaml.safe_load_all(path.read_text())) == children


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_every_child_is_where_its_entry_in_children_says(stem: str) -> None:
    cluster = example_cluster(stem)
    inp = BuildInput(cluster, "url-digest")
    for child in CHILDREN:
        built = child.build(inp)
        assert (built["apiVersion"], built["kind"]) == (child.api_version, child.kind)
        assert built["metadata"]["name"] == child.name(cluster), child.role
    assert len({child.role for child in CHILDREN}) == len(CHILDREN)


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_every_child_is_labelled_named_and_owned(stem: str) -> None:
    cluster = example_cluster(stem)
    for child in rendered(cluster):
        meta = child["metadata"]
        assert meta["name"].startswith(f"{cluster.name}-")
        assert meta["namespace"] == cluster.namespace
        assert meta["labels"]["app.kubernetes.io/name"] == "chatcluster"
        assert meta["labels"]["app.kubernetes.io/instance"] == cluster.name
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "chatcluster-operator"
        assert meta["labels"]["app.kubernetes.io/component"] in {"backend", "frontend", "rabbitmq"}
        [owner] = meta["ownerReferences"]
        assert owner["uid"] == UID
        assert owner["kind"] == "ChatCluster"
        assert owner["controller"] is True


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_every_pod_template_is_restricted_and_selected_by_its_workload(stem: str) -> None:
    for child in wanted_children(example_cluster(stem)):
        if child["kind"] not in WORKLOAD_KINDS:
            continue
        template = child["spec"]["template"]
        selector = child["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert pod["topologySpreadConstraints"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_chatserver_pods_probe_and_drain(stem: str) -> None:
    cluster = example_cluster(stem)
    for name in (f"{cluster.name}-backend", f"{cluster.name}-frontend"):
        pod = workload(wanted_children(cluster), "Deployment", name)["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
        assert pod["terminationGracePeriodSeconds"] == TERMINATION_GRACE_SECONDS > DRAIN_SECONDS


def test_backend_env_follows_the_contract() -> None:
    cluster = example_cluster("production")
    backend = workload(wanted_children(cluster), "Deployment", "prod-backend")
    [container] = backend["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert container["command"] == ["chatserver", "backend"]
    assert env["PORT"] == "3000"
    assert env["RABBITMQ_URL_FILE"] == "/etc/chatcluster/broker/url"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CHAT_CLUSTER"] == "chat.prod"
    assert env["CHAT_ROOMS"] == "general,support,announcements"
    assert env["CHAT_HISTORY_SIZE"] == "500"
    assert env["CHAT_MAX_MESSAGE_BYTES"] == "2048"
    assert env["CHAT_RATE_PER_SECOND"] == "5"
    assert env["CHAT_RATE_BURST"] == "10"
    assert env["CHAT_DRAIN_SECONDS"] == str(DRAIN_SECONDS)
    assert env["CHAT_AUTH"] == "jwt"
    assert env["CHAT_AUTH_SECRET_FILE"] == "/etc/chatcluster/auth/secret"
    assert "RABBITMQ_URL" not in env
    assert "CHAT_AUTH_SECRET" not in env
    pod = backend["spec"]["template"]["spec"]
    assert {"name": "broker", "mountPath": "/etc/chatcluster/broker", "readOnly": True} in (
        pod["containers"][0]["volumeMounts"]
    )
    [auth] = [v for v in pod["volumes"] if v["name"] == "auth"]
    assert auth["secret"] == {
        "secretName": "chat-jwt",
        "items": [{"key": "secret", "path": "secret"}],
        "defaultMode": 0o440,
    }


def test_each_rooms_window_gets_its_share_of_half_the_backends_memory() -> None:
    def window(spec: dict[str, Any]) -> int:
        return window_max_bytes(cluster_from_spec(spec))

    mib = 1024**2
    # Defaults: 256Mi, less 64 MiB of the backend's own, halved, over 1000 rooms.
    assert window({}) == 96 * mib // 1000
    assert window({"chat": {"maxRooms": 100}}) == 96 * mib // 100
    # Bounded by the server's default above and its least below.
    assert window({"chat": {"maxRooms": 10}}) == contract.DEFAULT_HISTORY_MAX_BYTES
    assert window({"chat": {"maxRooms": 100_000}}) == contract.MIN_HISTORY_MAX_BYTES
    # Any quantity form; no limit at all leaves the server's default.
    limited = {
        "backend": {"resources": {"limits": {"memory": "1.064G"}}},
        "chat": {"maxRooms": 500},
    }
    assert window(limited) == (1_064_000_000 - 64 * mib) // 2 // 500
    unlimited = {"backend": {"resources": {"requests": {"memory": "1Gi"}}}}
    assert window(unlimited) == contract.DEFAULT_HISTORY_MAX_BYTES


def test_frontend_proxies_to_the_backend_service() -> None:
    children = wanted_children(example_cluster("minimal"))
    [container] = workload(children, "Deployment", "demo-frontend")["spec"]["template"]["spec"][
        "containers"
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["command"] == ["chatserver", "frontend"]
    assert env["PORT"] == "8080"
    assert env["BACKEND_URL"] == "http://demo-backend:3000"


def test_external_broker_backends_read_the_given_secret_and_no_broker_is_built() -> None:
    cluster = example_cluster("external-broker")
    children = wanted_children(cluster)
    assert not [
        c for c in children if c["metadata"]["labels"]["app.kubernetes.io/component"] == "rabbitmq"
    ]
    pod = workload(children, "Deployment", "shared-backend")["spec"]["template"]["spec"]
    [broker] = [v for v in pod["volumes"] if v["name"] == "broker"]
    assert broker["secret"]["secretName"] == "shared-broker"
    assert broker["secret"]["items"] == [{"key": "url", "path": "url"}]


def test_autoscaling_leaves_backend_replicas_out_and_adds_an_hpa() -> None:
    static = wanted_children(cluster_from_spec({"backend": {"replicas": 3}}))
    scaled = wanted_children(cluster_from_spec({"backend": {"autoscaling": {"enabled": True}}}))
    assert workload(static, "Deployment", "demo-backend")["spec"]["replicas"] == 3
    assert "replicas" not in workload(scaled, "Deployment", "demo-backend")["spec"]
    assert not [c for c in static if c["kind"] == "HorizontalPodAutoscaler"]
    hpa = workload(scaled, "HorizontalPodAutoscaler", "demo-backend")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "demo-backend"


def test_config_hash_changes_with_chat_settings_and_broker_credentials_only() -> None:
    base = wanted_children(cluster_from_spec({}))
    rooms = wanted_children(cluster_from_spec({"chat": {"rooms": ["general", "dev"]}}))
    scaled = wanted_children(cluster_from_spec({"backend": {"replicas": 7}}))
    rotated = wanted_children(cluster_from_spec({}), broker_url_digest="new-credentials")
    assert pod_hash(rooms, "demo-backend") != pod_hash(base, "demo-backend")
    assert pod_hash(rotated, "demo-backend") != pod_hash(base, "demo-backend")
    assert pod_hash(scaled, "demo-backend") == pod_hash(base, "demo-backend")
    assert pod_hash(rotated, "demo-frontend") == pod_hash(base, "demo-frontend")


def test_broker_storage_becomes_a_claim_template_else_an_empty_dir() -> None:
    ephemeral = workload(wanted_children(cluster_from_spec({})), "StatefulSet", "demo-rabbitmq")
    stored = workload(
        wanted_children(cluster_from_spec({"rabbitmq": {"storage": {"size": "5Gi"}}})),
        "StatefulSet",
        "demo-rabbitmq",
    )
    assert "volumeClaimTemplates" not in ephemeral["spec"]
    data = {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}}
    assert data in ephemeral["spec"]["template"]["spec"]["volumes"]
    [claim] = stored["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "data" not in [v["name"] for v in stored["spec"]["template"]["spec"]["volumes"]]


def test_scaling_the_broker_up_restarts_no_node_but_tells_new_nodes_every_peer() -> None:
    def broker(replicas: int) -> tuple[dict[str, Any], str]:
        spec = {"rabbitmq": {"replicas": replicas, "storage": {"size": "1Gi"}}}
        children = wanted_children(cluster_from_spec(spec))
        config = workload(children, "ConfigMap", "demo-rabbitmq")
        return workload(children, "StatefulSet", "demo-rabbitmq"), config["data"]["rabbitmq.conf"]

    (one, one_conf), (three, three_conf) = broker(1), broker(3)
    assert one["spec"]["template"] == three["spec"]["template"]
    assert "demo-rabbitmq-2.demo-rabbitmq-nodes" not in one_conf
    assert "classic_config.nodes.3 = rabbit@demo-rabbitmq-2.demo-rabbitmq-nodes.chat" in three_conf


def test_the_broker_claim_name_is_the_one_the_statefulset_makes() -> None:
    cluster = cluster_from_spec({"rabbitmq": {"storage": {"size": "1Gi"}}})
    statefulset = workload(wanted_children(cluster), "StatefulSet", "demo-rabbitmq")
    [template] = statefulset["spec"]["volumeClaimTemplates"]
    expected = f"{template['metadata']['name']}-{statefulset['metadata']['name']}-0"
    assert broker_claim_name(cluster, 0) == expected


def test_broker_credentials_never_show_in_a_repr() -> None:
    assert "pw" not in repr(CREDENTIALS)
    assert "cookie" not in repr(CREDENTIALS)


def test_builders_do_not_mutate_their_input() -> None:
    cluster = example_cluster("production")
    before = repr(cluster)
    first = wanted_children(cluster)
    assert repr(cluster) == before
    assert wanted_children(cluster) == first


def test_broker_nodes_may_reach_the_stream_replication_ports_they_are_configured_with() -> None:
    children = wanted_children(cluster_from_spec({}))
    config = workload(children, "ConfigMap", "demo-rabbitmq")["data"]["advanced.config"]
    policy = workload(children, "NetworkPolicy", "demo-rabbitmq")
    low, high = STREAM_REPLICATION_PORTS
    assert f"{{port_range, {{{low}, {high}}}}}" in config
    between_nodes = policy["spec"]["ingress"][1]
    assert (
        between_nodes["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        == "rabbitmq"
    )
    assert {"protocol": "TCP", "port": low, "endPort": high} in between_nodes["ports"]


def test_backends_admit_only_the_frontend_pods_and_the_operators_pods() -> None:
    cluster = cluster_from_spec({})
    policy = build_backend_network_policy(BuildInput(cluster, "d", operator_namespace="ops"))
    (rule,) = policy["spec"]["ingress"]
    frontend_labels = workload(wanted_children(cluster), "Deployment", "demo-frontend")["spec"][
        "selector"
    ]["matchLabels"]
    deploy = Path(__file__).parents[2] / "deploy" / "base" / "operator.yaml"
    (operator,) = [d for d in yaml.safe_load_all(deploy.read_text()) if d["kind"] == "Deployment"]
    operator_labels = operator["spec"]["template"]["metadata"]["labels"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": frontend_labels}},
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
            "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
        },
    ]
    assert OPERATOR_POD_LABELS.items() <= operator_labels.items()
    assert [p["port"] for p in rule["ports"]] == [3000]
    outside = build_backend_network_policy(BuildInput(cluster, "d"))
    assert outside["spec"]["ingress"][0]["from"] == rule["from"][:1]


def pod_templates(stem: str) -> list[dict[str, Any]]:
    """The pod specs of an example's workloads."""
    return [
        child["spec"]["template"]["spec"]
        for child in wanted_children(example_cluster(stem))
        if child["kind"] in WORKLOAD_KINDS
    ]


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_every_container_has_ephemeral_storage_and_every_empty_dir_a_size_limit(stem: str) -> None:
    for pod in pod_templates(stem):
        for container in all_containers(pod):
            assert "ephemeral-storage" in container["resources"]["requests"]
            assert "ephemeral-storage" in container["resources"]["limits"]
        for volume in pod["volumes"]:
            assert "emptyDir" not in volume or volume["emptyDir"]["sizeLimit"]


def test_ephemeral_storage_comes_from_the_spec_unless_resources_name_it() -> None:
    spec = {
        "backend": {
            "ephemeralStorage": {"request": "1Gi", "limit": "3Gi"},
            "resources": {"limits": {"cpu": "1", "ephemeral-storage": "5Gi"}},
        }
    }
    backend = workload(wanted_children(cluster_from_spec(spec)), "Deployment", "demo-backend")
    pod = backend["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "limits": {"cpu": "1", "ephemeral-storage": "5Gi"},
        "requests": {"ephemeral-storage": "1Gi"},
    }
    assert pod["volumes"][0] == {"name": "tmp", "emptyDir": {"sizeLimit": "3Gi"}}


def test_the_broker_runs_as_a_uid_and_gid_clear_of_host_accounts() -> None:
    broker = workload(wanted_children(cluster_from_spec({})), "StatefulSet", "demo-rabbitmq")
    context = broker["spec"]["template"]["spec"]["securityContext"]
    assert min(context["runAsUser"], context["runAsGroup"], context["fsGroup"]) >= 10000


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_every_pod_is_selected_by_a_policy_for_ingress_and_egress_with_dns(stem: str) -> None:
    children = wanted_children(example_cluster(stem))
    policies = [c for c in children if c["kind"] == "NetworkPolicy"]
    for child in children:
        if child["kind"] not in WORKLOAD_KINDS:
            continue
        labels = child["spec"]["template"]["metadata"]["labels"]
        [policy] = [
            p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert {"to": [CLUSTER_DNS_PODS]} in policy["spec"]["egress"]


def test_egress_can_be_left_open() -> None:
    cluster = cluster_from_spec({"networkPolicy": {"egress": False}})
    for child in wanted_children(cluster):
        if child["kind"] == "NetworkPolicy":
            assert child["spec"]["policyTypes"] == ["Ingress"]
            assert "egress" not in child["spec"]


def test_frontends_admit_anyone_on_their_port_and_reach_only_the_backends() -> None:
    policy = workload(wanted_children(cluster_from_spec({})), "NetworkPolicy", "demo-frontend")
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    to_backends, *_dns = policy["spec"]["egress"]
    assert to_backends["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "backend"
    )
    assert to_backends["ports"] == [{"protocol": "TCP", "port": 3000}]


def test_backends_reach_their_broker_only() -> None:
    own = build_backend_network_policy(BuildInput(cluster_from_spec({}), "d"))
    [to_broker, *_dns] = own["spec"]["egress"]
    assert to_broker["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "rabbitmq"
    )
    external = cluster_from_spec({"rabbitmq": {"external": {"urlSecretRef": {"name": "b"}}}})
    [anywhere, *_dns] = build_backend_network_policy(BuildInput(external, "d"))["spec"]["egress"]
    assert anywhere == {
        "ports": [{"protocol": "TCP", "port": 5672}, {"protocol": "TCP", "port": 5671}]
    }


def test_a_metrics_scraper_may_reach_the_backends() -> None:
    spec = {
        "networkPolicy": {
            "metricsScraper": {
                "namespaceLabels": {"kubernetes.io/metadata.name": "monitoring"},
                "podLabels": {"app": "prometheus"},
            }
        }
    }
    policy = build_backend_network_policy(BuildInput(cluster_from_spec(spec), "d"))
    assert policy["spec"]["ingress"][1] == {
        "from": [
            {
                "podSelector": {"matchLabels": {"app": "prometheus"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 3000}],
    }
    same_namespace = {"networkPolicy": {"metricsScraper": {"podLabels": {"app": "prometheus"}}}}
    policy = build_backend_network_policy(BuildInput(cluster_from_spec(same_namespace), "d"))
    assert policy["spec"]["ingress"][1]["from"] == [
        {"podSelector": {"matchLabels": {"app": "prometheus"}}}
    ]


@pytest.mark.parametrize("stem", EXAMPLE_STEMS)
def test_no_container_gets_a_secret_in_its_environment(stem: str) -> None:
    for pod in pod_templates(stem):
        for container in all_containers(pod):
            for env in container.get("env", []):
                assert "secretKeyRef" not in env.get("valueFrom", {}), env["name"]


def test_the_broker_loads_its_users_from_a_memory_volume_the_init_container_writes() -> None:
    broker = workload(wanted_children(cluster_from_spec({})), "StatefulSet", "demo-rabbitmq")
    pod = broker["spec"]["template"]["spec"]
    [prepare] = pod["initContainers"]
    assert prepare["command"][-1].endswith("> /etc/rabbitmq-users/conf.d/10-definitions.conf")
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["RABBITMQ_CONFIG_FILES"] == "/etc/rabbitmq-users/conf.d"
    [memory] = [v for v in pod["volumes"] if v["name"] == "users"]
    assert memory["emptyDir"]["medium"] == "Memory"
    [credentials] = [v for v in pod["volumes"] if v["name"] == "credentials"]
    # A Secret from before the backend user still mounts (its broker defines no such user).
    assert credentials["secret"]["optional"] is True
    assert [item["key"] for item in credentials["secret"]["items"]] == [
        "username",
        "password",
        "backend-username",
        "backend-password",
    ]


def test_the_management_api_is_in_the_operators_admin_service_only() -> None:
    children = wanted_children(cluster_from_spec({}))
    ports = {
        child["metadata"]["name"]: {port["port"] for port in child["spec"]["ports"]}
        for child in children
        if child["kind"] == "Service"
    }
    assert ports["demo-rabbitmq-admin"] == {MANAGEMENT_PORT}
    assert all(MANAGEMENT_PORT not in found for name, found in ports.items() if "admin" not in name)
