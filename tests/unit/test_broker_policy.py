"""The room streams' policy: what the operator keeps on its broker, and what status says."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from chatoperator.builders import BuildInput
from chatoperator.builders.backend_deployment import backend_env
from chatoperator.builders.broker_capacity import NodeLimits
from chatoperator.builders.broker_policy import build_room_policy, most_backends, queue_limit
from chatoperator.builders.network_policy import OPERATOR_POD_LABELS, build_broker_network_policy
from chatoperator.spec import format_bytes, parse_bytes
from chatoperator.status import compute_status
from chatoperator.status.conditions import compute_room_retention
from chatoperator.status.observed import BrokerHeadroom, BrokerVisit, RoomRetention
from chatserver.broker.amqp_wire import Topology
from chatserver.contract import MAX_ROOM_MAX_BYTES, Env
from tests.unit.clusters import cluster_from_spec
from tests.unit.test_status import observed, ready

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

NOW = "2026-01-01T00:05:00Z"


def test_the_policy_carries_the_retention_and_replicates_streams_on_every_node() -> None:
    cluster = cluster_from_spec(
        {
            "rabbitmq": {
                "replicas": 3,
                "storage": {"size": "1Gi"},
                "retention": {"maxBytes": "8Mi", "maxAge": "30D"},
            }
        }
    )
    policy = build_room_policy(cluster)
    assert policy is not None
    assert policy.management_url == "http://demo-rabbitmq-admin.chat.svc:15672"
    assert (policy.vhost, policy.name) == ("/", "chatcluster-rooms")
    assert policy.body["apply-to"] == "queues"
    assert policy.body["definition"] == {
        "max-length-bytes": 8 * 1024 * 1024,
        "max-age": "30D",
        "initial-cluster-size": 3,
    }


def test_the_policy_matches_exactly_this_clusters_room_streams() -> None:
    # The operator's CHAT_CLUSTER is <namespace>.<name>: dots that must not match any character.
    cluster = cluster_from_spec({}, name="a.b", namespace="chat")
    policy = build_room_policy(cluster)
    assert policy is not None
    pattern = re.compile(policy.body["pattern"])
    (chat_cluster,) = [
        e["value"] for e in backend_env(BuildInput(cluster, "d")) if e["name"] == Env.CHAT_CLUSTER
    ]
    assert pattern.match(Topology(chat_cluster).room_stream("general"))
    assert not pattern.match(Topology("chat.aXb").room_stream("general"))
    assert not pattern.match(Topology(chat_cluster).rooms_exchange)
    assert not pattern.match(Topology(chat_cluster).presence_exchange)


def test_without_a_retention_the_default_holds_the_default_history() -> None:
    policy = build_room_policy(cluster_from_spec({}))
    assert policy is not None
    assert policy.body["definition"] == {
        "max-length-bytes": 2 * 1024 * 1024,
        "initial-cluster-size": 1,
    }


def test_new_streams_leave_retention_to_the_policy_on_the_operators_broker_only() -> None:
    def room_max_bytes(spec: dict[str, object]) -> str:
        env = backend_env(BuildInput(cluster_from_spec(spec), "d"))
        return next(str(e["value"]) for e in env if e["name"] == Env.CHAT_ROOM_MAX_BYTES)

    assert room_max_bytes({"rabbitmq": {"retention": {"maxBytes": "4Mi"}}}) == str(
        MAX_ROOM_MAX_BYTES
    )
    external = {"external": {"urlSecretRef": {"name": "b"}}, "retention": {"maxBytes": "4Mi"}}
    assert room_max_bytes({"rabbitmq": external}) == str(4 * 1024 * 1024)
    assert build_room_policy(cluster_from_spec({"rabbitmq": external})) is None


def test_only_the_operators_pods_reach_the_management_port() -> None:
    cluster = cluster_from_spec({})
    policy = build_broker_network_policy(BuildInput(cluster, "d", operator_namespace="ops"))
    management = [
        r for r in policy["spec"]["ingress"] if r["ports"] == [{"protocol": "TCP", "port": 15672}]
    ]
    assert management == [
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
                    "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 15672}],
        }
    ]
    outside = build_broker_network_policy(BuildInput(cluster, "d"))
    assert all(15672 not in [p["port"] for p in r["ports"]] for r in outside["spec"]["ingress"])


@pytest.mark.parametrize(
    ("quantity", "size"), [("1", 1), ("512Ki", 512 * 1024), ("2Mi", 2 * 1024**2), ("1Gi", 1024**3)]
)
def test_sizes_read_and_print_as_quantities(quantity: str, size: int) -> None:
    assert parse_bytes(quantity) == size
    assert format_bytes(size) == quantity


@pytest.mark.parametrize("quantity", ["", "0", "2M", "1.5Mi", "-1Mi", "2Ti"])
def test_other_quantities_are_refused(quantity: str) -> None:
    with pytest.raises(ValueError, match="not a size in bytes"):
        parse_bytes(quantity)


def visit(digest: str, reason: str = "Applied", *nodes: str) -> BrokerVisit:
    return BrokerVisit(digest, reason, "" if reason == "Applied" else "why", running_nodes=nodes)


def retention(digest: str | None = "d1") -> RoomRetention:
    return RoomRetention(summary="2Mi", policy_digest=digest)


@pytest.mark.parametrize(
    ("state", "last_visit", "status", "reason"),
    [
        (retention(), visit("d1", "Applied", "rabbit@0"), "True", "Applied"),
        (retention(), visit("d1", "Unreachable"), "False", "Unreachable"),
        (retention(), visit("d1", "Refused"), "False", "Refused"),
        # A visit for the policy of an older spec says nothing about this one.
        (retention(), visit("d0", "Applied", "rabbit@0"), "Unknown", "Applying"),
        (retention(), None, "Unknown", "Applying"),
        (retention(None), None, "True", "StreamArguments"),
    ],
)
def test_the_condition_says_how_far_the_retention_got(
    state: RoomRetention, last_visit: BrokerVisit | None, status: str, reason: str
) -> None:
    condition = compute_room_retention(
        observed(retention=state, broker_visit=last_visit), None, NOW
    )
    assert (condition["status"], condition["reason"]) == (status, reason)


def test_the_condition_waits_for_a_broker_that_is_not_ready() -> None:
    starting = replace(ready(1), ready=0)
    state = observed(broker=starting, retention=retention(), broker_visit=None)
    condition = compute_room_retention(state, None, NOW)
    assert (condition["status"], condition["reason"]) == ("Unknown", "BrokerNotReady")


def test_ready_pods_that_do_not_form_one_cluster_are_not_a_ready_broker() -> None:
    # A node that booted while it could not reach its peers formed a cluster of its own.
    split = observed(broker=ready(3), broker_visit=visit("d1", "Applied", "rabbit@1"))
    status = compute_status(split, {}, NOW)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["BrokerReady"]["status"] == "False"
    assert conditions["BrokerReady"]["reason"] == "NotClustered"
    assert "lists 1 of 3 running: rabbit@1" in conditions["BrokerReady"]["message"]
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == (
        "False",
        "BrokerNotClustered",
    )
    assert status["phase"] == "Progressing"

    whole = observed(broker=ready(3), broker_visit=visit("d1", "Applied", "r@0", "r@1", "r@2"))
    assert compute_status(whole, {}, NOW)["phase"] == "Ready"
    # A visit that got no answer says nothing about the nodes.
    unknown = observed(broker=ready(3), broker_visit=visit("d1", "Unreachable"))
    assert compute_status(unknown, {}, NOW)["phase"] == "Ready"


def test_a_resource_alarm_makes_the_broker_not_ready_and_says_where() -> None:
    alarmed = replace(visit("d1", "Applied", "rabbit@0"), alarms=("memory on rabbit@0",))
    status = compute_status(observed(broker_visit=alarmed), {}, NOW)
    (broker,) = [c for c in status["conditions"] if c["type"] == "BrokerReady"]
    assert (broker["status"], broker["reason"]) == ("False", "ResourceAlarm")
    assert broker["message"].endswith("memory on rabbit@0")


def test_status_shows_the_busiest_nodes_use_of_its_limits() -> None:
    headroom = BrokerHeadroom("rabbit@1", 120, 1048576, 90_000_000, 214_748_364)
    seen = replace(
        visit("d1", "Applied", "rabbit@0"), rooms=12, allowed_rooms=1000, headroom=headroom
    )
    status = compute_status(observed(broker_visit=seen), {}, NOW)
    assert status["rooms"] == "12/1000"
    assert status["rabbitmq"]["busiestNode"] == {
        "name": "rabbit@1",
        "fileDescriptors": "120/1048576",
        "memoryBytes": "90000000/214748364",
    }
    # A visit without figures leaves the room count as it was and shows no node.
    again = compute_status(observed(broker_visit=visit("d1", "Unreachable")), status, NOW)
    assert again["rooms"] == "12/1000"
    assert "busiestNode" not in again["rabbitmq"]


def test_the_room_cap_is_what_the_brokers_descriptors_and_memory_hold_when_that_is_less() -> None:
    policy = build_room_policy(cluster_from_spec({"chat": {"maxRooms": 1000}}))
    assert policy is not None
    assert policy.backends == 2
    plenty = NodeLimits(descriptors=1048576, memory_bytes=64 * GIB)
    assert queue_limit(policy, None) == (1000, 1004)
    assert queue_limit(policy, plenty) == (1000, 1004)
    # Each room: 2 descriptors on the node, and 1.25 for each backend that reads it.
    few_descriptors = replace(plenty, descriptors=1024)
    assert queue_limit(policy, few_descriptors) == (199, 203)  # (1024 - 128) / 4.5
    # Each room: 144 KiB of the node's memory, and 64 KiB for each backend that reads it;
    # 256 MiB are the node's own.
    little_memory = replace(plenty, memory_bytes=256 * MIB + 100 * (144 + 2 * 64) * KIB)
    assert queue_limit(policy, little_memory) == (100, 104)
    assert queue_limit(policy, replace(plenty, memory_bytes=100 * MIB)) == (0, 4)
    assert queue_limit(policy, replace(plenty, descriptors=100)) == (0, 4)
    autoscaled = {"backend": {"autoscaling": {"enabled": True, "maxReplicas": 7}}}
    assert most_backends(cluster_from_spec(autoscaled)) == 7
