"""One pass against an in-memory stand-in for the API: what the pass reports when the API
refuses an object (the spec's fault) or the operator's permissions (the installation's)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

import pytest

from chatoperator.errors import InvalidSpec, NotPermitted
from chatoperator.reconcile import reconcile
from chatoperator.settings import OperatorSettings
from tests.unit.clusters import example_bodies

SETTINGS = OperatorSettings.from_env({})


class FakeKube:
    """Objects by (kind, name); ``refuse`` makes applies of one kind raise."""

    def __init__(self, refuse: Mapping[str, Exception] | None = None) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.refuse = dict(refuse or {})
        self.writes = 0
        self.status: dict[str, Any] = {}
        self.events: list[tuple[str, str]] = []

    def get(self, api_version: str, kind: str, *, namespace: str, name: str) -> Any:
        found = self.objects.get((kind, name))
        return copy.deepcopy(found) if found is not None else None

    def list_pods(self, *, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(obj)
            for (kind, _), obj in self.objects.items()
            if kind == "Pod" and selector.items() <= obj["metadata"]["labels"].items()
        ]

    def get_like(self, obj: Mapping[str, Any]) -> Any:
        meta = obj["metadata"]
        return self.get(
            obj["apiVersion"], obj["kind"], namespace=meta["namespace"], name=meta["name"]
        )

    def apply(self, obj: Mapping[str, Any], *, field_manager: str = "") -> dict[str, Any]:
        self.writes += 1
        if obj["kind"] in self.refuse:
            raise self.refuse[obj["kind"]]
        self.objects[(obj["kind"], obj["metadata"]["name"])] = copy.deepcopy(dict(obj))
        return copy.deepcopy(dict(obj))

    def create_if_absent(self, obj: Mapping[str, Any]) -> bool:
        self.writes += 1
        key = (obj["kind"], obj["metadata"]["name"])
        if key in self.objects:
            return False
        stored = copy.deepcopy(dict(obj))
        strings = stored.pop("stringData", {})  # as the API server stores a Secret
        stored["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in strings.items()}
        self.objects[key] = stored
        return True

    def delete(self, obj: Mapping[str, Any]) -> None:
        self.writes += 1
        self.objects.pop((obj["kind"], obj["metadata"]["name"]), None)

    def patch_cluster_status(self, cluster: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        self.writes += 1
        self.status = {k: v for k, v in {**self.status, **status}.items() if v is not None}

    def post_event(
        self, cluster: Mapping[str, Any], *, warning: bool, reason: str, message: str
    ) -> None:
        self.writes += 1
        self.events.append((reason, message))


def degraded(kube: FakeKube) -> dict[str, Any]:
    return next(c for c in kube.status["conditions"] if c["type"] == "Degraded")


def test_a_pass_applies_every_child_and_observes_them_by_role() -> None:
    kube = FakeKube()
    result = reconcile(kube, example_bodies()["minimal"], settings=SETTINGS)
    assert (result.failure, result.retry) == (None, False)
    assert result.observed is not None
    assert result.observed.backend.exists
    assert result.observed.frontend.exists
    assert result.observed.broker is not None
    assert result.observed.broker.exists
    assert degraded(kube)["reason"] == "Reconciled"


def test_an_object_the_api_refuses_is_the_specs_fault_and_not_retried() -> None:
    kube = FakeKube(refuse={"Deployment": InvalidSpec("apply Deployment demo-backend: bad")})
    result = reconcile(kube, example_bodies()["minimal"], settings=SETTINGS)
    assert (result.phase, result.retry) == ("Degraded", False)
    assert degraded(kube)["reason"] == "InvalidSpec"


def test_a_missing_permission_is_the_installations_fault_and_retried() -> None:
    refused = NotPermitted("apply HorizontalPodAutoscaler busy-backend: forbidden")
    kube = FakeKube(refuse={"HorizontalPodAutoscaler": refused})
    result = reconcile(kube, example_bodies()["autoscaling"], settings=SETTINGS)
    assert (result.phase, result.retry) == ("Degraded", True)
    condition = degraded(kube)
    assert condition["reason"] == "NotPermitted"
    assert "forbidden" in condition["message"]
    assert ("Degraded", f"phase unset -> Degraded: {condition['message']}") in kube.events


@pytest.mark.parametrize("stem", sorted(example_bodies()))
def test_a_second_pass_writes_nothing(stem: str) -> None:
    kube = FakeKube()
    body = example_bodies()[stem]
    if "external" in str(body["spec"].get("rabbitmq", {})):
        ref = body["spec"]["rabbitmq"]["external"]["urlSecretRef"]
        kube.objects[("Secret", ref["name"])] = {"data": {ref.get("key", "url"): "dXJs"}}
    reconcile(kube, body, settings=SETTINGS)
    body = {**body, "status": kube.status}
    before = kube.writes
    result = reconcile(kube, body, settings=SETTINGS)
    assert (result.writes, kube.writes - before) == (0, 0)


@pytest.mark.parametrize(
    "left", ["StatefulSet demo-rabbitmq", "PersistentVolumeClaim data-demo-rabbitmq-0"]
)
def test_a_lost_broker_secret_is_never_regenerated_while_the_broker_remembers_it(
    left: str,
) -> None:
    kube = FakeKube()
    body = example_bodies()["minimal"]
    reconcile(kube, body, settings=SETTINGS)
    secret = kube.objects.pop(("Secret", "demo-rabbitmq"))
    if left.startswith("PersistentVolumeClaim"):
        # The StatefulSet was deleted, its volume claim stays (as Kubernetes keeps it).
        statefulset = kube.objects.pop(("StatefulSet", "demo-rabbitmq"))
        kube.objects[("PersistentVolumeClaim", "data-demo-rabbitmq-0")] = {}
    backend = kube.objects[("Deployment", "demo-backend")]
    result = reconcile(kube, body, settings=SETTINGS)
    assert (result.phase, result.retry) == ("Degraded", False)
    condition = degraded(kube)
    assert condition["reason"] == "BrokerCredentialsLost"
    assert left in condition["message"]
    assert ("Secret", "demo-rabbitmq") not in kube.objects
    assert kube.objects[("Deployment", "demo-backend")] == backend

    kube.objects[("Secret", "demo-rabbitmq")] = secret  # restored by hand
    assert reconcile(kube, body, settings=SETTINGS).failure is None
    assert kube.objects[("Secret", "demo-rabbitmq")] == secret
    if left.startswith("PersistentVolumeClaim"):
        assert kube.objects[("StatefulSet", "demo-rabbitmq")] == statefulset


def test_a_new_broker_gets_new_credentials_once_nothing_remembers_the_old_ones() -> None:
    kube = FakeKube()
    body = example_bodies()["minimal"]
    reconcile(kube, body, settings=SETTINGS)
    old = kube.objects.pop(("Secret", "demo-rabbitmq"))
    del kube.objects[("StatefulSet", "demo-rabbitmq")]
    assert reconcile(kube, body, settings=SETTINGS).failure is None
    assert kube.objects[("Secret", "demo-rabbitmq")]["data"] != old["data"]


def test_broker_ready_says_why_the_broker_pods_are_not_ready() -> None:
    kube = FakeKube()
    body = example_bodies()["minimal"]
    reconcile(kube, body, settings=SETTINGS)
    labels = kube.objects[("StatefulSet", "demo-rabbitmq")]["spec"]["selector"]["matchLabels"]
    kube.objects[("Pod", "demo-rabbitmq-0")] = {
        "metadata": {"name": "demo-rabbitmq-0", "labels": labels},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "rabbitmq",
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                    "lastState": {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "message": "booting\nError: inconsistent cluster\n",
                        }
                    },
                }
            ],
        },
    }
    reconcile(kube, {**body, "status": kube.status}, settings=SETTINGS)
    (broker,) = [c for c in kube.status["conditions"] if c["type"] == "BrokerReady"]
    assert (broker["status"], broker["reason"]) == ("False", "NodesNotReady")
    assert broker["message"] == (
        "rabbitmq 0/1 ready: demo-rabbitmq-0: rabbitmq CrashLoopBackOff,"
        " last exit 1 (Error), Error: inconsistent cluster"
    )


def test_an_image_the_operator_does_not_allow_is_refused_with_the_rule() -> None:
    settings = OperatorSettings.from_env({"CHATCLUSTER_ALLOWED_IMAGES": "registry.example/chat/*"})
    body = copy.deepcopy(example_bodies()["minimal"])
    body["spec"] = {"image": "attacker.example/miner:1"}
    kube = FakeKube()

    result = reconcile(kube, body, settings=settings)

    assert (result.phase, result.retry) == ("Degraded", False)
    reason = degraded(kube)
    assert reason["reason"] == "InvalidSpec"
    assert "attacker.example/miner:1 is not allowed" in reason["message"]
    assert "CHATCLUSTER_ALLOWED_IMAGES" in reason["message"]
    assert not [key for key in kube.objects if key[0] in ("Deployment", "StatefulSet")]

    body["spec"] = {"image": "registry.example/chat/chatserver:2"}
    assert reconcile(kube, body, settings=settings).failure is None
    # The operator's own defaults are always allowed: a ChatCluster that names no image.
    assert reconcile(FakeKube(), example_bodies()["minimal"], settings=settings).failure is None


def test_a_secret_without_the_operators_label_may_not_be_named() -> None:
    settings = OperatorSettings.from_env({"CHATCLUSTER_SECRET_LABEL": "chatcluster.dev/usable"})
    body = example_bodies()["external-broker"]
    url = base64.b64encode(b"amqp://chat:pw@rabbitmq.messaging.svc:5672/%2F").decode()
    secret = {"metadata": {"name": "shared-broker", "labels": {}}, "data": {"url": url}}
    kube = FakeKube()
    kube.objects[("Secret", "shared-broker")] = secret

    reconcile(kube, body, settings=settings)
    assert degraded(kube)["reason"] == "InvalidSpec"
    assert "label chatcluster.dev/usable=true" in degraded(kube)["message"]

    secret["metadata"]["labels"] = {"chatcluster.dev/usable": "true"}
    assert reconcile(kube, body, settings=settings).failure is None
