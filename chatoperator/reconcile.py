"""One reconcile pass: desired state -> apply -> observe -> status, for one ChatCluster.

A pass is level-triggered and idempotent: creating a cluster, repairing a deleted or edited
child and rolling out a spec change are the same code. A pass that finds everything in place
reads but writes nothing (``drift.py`` decides which children need an apply).

What a pass saw of its children is kept by role (``builders.Role``) and reduced once to the
typed ``status.Observed`` that every condition reads.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatoperator.allowlist import SECRET_LABEL_VALUE, labelled, named_secrets, refused_images
from chatoperator.builders import BY_ROLE, CHILDREN, BuildInput, Role
from chatoperator.builders.broker_policy import BrokerPolicy, build_room_policy, settings_digest
from chatoperator.builders.broker_secret import (
    PASSWORD_KEY,
    USERNAME_KEY,
    BrokerCredentials,
    broker_url_digest,
    broker_url_ref,
    build_broker_secret,
)
from chatoperator.builders.broker_statefulset import broker_claim_name
from chatoperator.builders.meta import BACKEND, RABBITMQ, child_name, selector_labels
from chatoperator.drift import applied_hash, needs_apply, with_applied_hash
from chatoperator.errors import BrokerCredentialsLost, InvalidSpec, NotPermitted, TransientError
from chatoperator.kube import Kube, Object
from chatoperator.settings import FIELD_MANAGER, HANDOVER_FIELD_MANAGER, OperatorSettings
from chatoperator.spec import Cluster, format_bytes, parse_cluster
from chatoperator.status import Failure, Observed, compute_status, workload_state
from chatoperator.status.observed import BrokerVisit, RoomRetention
from chatoperator.status.pods import pod_problems

log = logging.getLogger(__name__)

Live = dict[Role, Object | None]
"""The children a pass read or applied, by role; None for one that does not exist."""

STATUS_ROLES = (Role.BROKER, Role.BACKEND, Role.FRONTEND, Role.FRONTEND_SERVICE)
"""The children status is computed from."""


@dataclass(frozen=True)
class BrokerTarget:
    """What to visit the operator's own broker for (``broker_admin.py``): the room policy to
    keep and the nodes to expect, with the credentials to do it."""

    policy: BrokerPolicy
    nodes: int
    """The broker nodes the cluster should have (``rabbitmq.replicas``)."""
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class PassResult:
    phase: str
    writes: int
    """API writes this pass made (children, Secret, status, events): 0 when idle."""
    failure: str | None = None
    """Why the desired state could not be applied (already in status and events)."""
    retry: bool = False
    """The failure is the installation's (``NotPermitted``): try again later, with backoff."""
    observed: Observed | None = None
    """What the pass saw, as status read it."""
    broker_target: BrokerTarget | None = None
    """Set once the operator's own broker is ready: the runtime then visits it."""


def reconcile(
    kube: Kube,
    body: Mapping[str, Any],
    *,
    settings: OperatorSettings,
    users_online: int | None = None,
    broker_visit: BrokerVisit | None = None,
) -> PassResult:
    """Bring one ChatCluster's children to the desired state and record what was observed.

    A desired state that cannot be built, that the API refuses or that the operator may not
    apply ends the pass with a ``failure`` (recorded in status); ``TransientError`` means the
    API was briefly unavailable. ``InvalidSpec`` escapes only for a ChatCluster that cannot even
    be parsed.
    """
    writes_before = kube.writes
    cluster = parse_cluster(body, images=settings.images)
    failure: Failure | None = None
    live: Live = {}
    broker_secret: Mapping[str, str] = {}
    if cluster.spec.paused:
        live = _observe(kube, cluster)
    else:
        try:
            _check_allowed(kube, cluster, settings)
            broker_secret = _ensure_broker_secret(kube, body, cluster)
            digest_of_url = broker_url_digest(broker_secret[broker_url_ref(cluster).key])
            inp = BuildInput(cluster, digest_of_url, operator_namespace=settings.namespace)
            live = _apply_children(kube, body, inp)
        except InvalidSpec as error:
            failure = Failure(reason="InvalidSpec", message=str(error))
        except NotPermitted as error:
            failure = Failure(reason="NotPermitted", message=f"the operator may not: {error}")
        except BrokerCredentialsLost as error:
            failure = Failure(reason="BrokerCredentialsLost", message=str(error))
        if failure is not None:
            live = _observe(kube, cluster)
    policy = build_room_policy(cluster)
    observed = _observed(
        cluster,
        live,
        failure=failure,
        users_online=users_online,
        retention=_retention(cluster, policy),
        broker_visit=broker_visit,
    )
    if observed.broker is not None and observed.broker.exists and not observed.broker.all_ready:
        pods = kube.list_pods(
            namespace=cluster.namespace, selector=selector_labels(cluster, RABBITMQ)
        )
        observed = dataclasses.replace(observed, broker_pod_problems=pod_problems(pods))
    phase = _write_status(kube, body, observed)
    broker_ready = observed.broker is not None and observed.broker.all_ready
    return PassResult(
        phase=phase,
        writes=kube.writes - writes_before,
        failure=failure.message if failure else None,
        retry=failure is not None and failure.reason == "NotPermitted",
        observed=observed,
        broker_target=(
            _broker_target(policy, cluster.spec.rabbitmq.replicas, broker_secret)
            if policy is not None and broker_ready and failure is None
            else None
        ),
    )


def _retention(cluster: Cluster, policy: BrokerPolicy | None) -> RoomRetention:
    retention = cluster.spec.rabbitmq.retention
    age = f", for at most {retention.max_age}" if retention.max_age else ""
    return RoomRetention(
        summary=format_bytes(retention.max_bytes) + age,
        policy_digest=settings_digest(policy) if policy is not None else None,
    )


def _broker_target(
    policy: BrokerPolicy, nodes: int, secret: Mapping[str, str]
) -> BrokerTarget | None:
    try:
        username, password = (
            base64.b64decode(secret[key]).decode() for key in (USERNAME_KEY, PASSWORD_KEY)
        )
    except (KeyError, ValueError):
        return None  # a hand-made Secret without them: the condition says the policy waits
    return BrokerTarget(policy, nodes, username=username, password=password)


def _check_allowed(kube: Kube, cluster: Cluster, settings: OperatorSettings) -> None:
    """Refuse (InvalidSpec) what the operator's installer does not allow a ChatCluster to name."""
    images = refused_images(cluster, settings.allowed_images, settings.images)
    if images:
        raise InvalidSpec(
            f"image {', '.join(images)} is not allowed here: the operator admits only"
            f" {', '.join(settings.allowed_images)} (CHATCLUSTER_ALLOWED_IMAGES)"
        )
    label = settings.secret_label
    if label is None:
        return
    for name in named_secrets(cluster):
        secret = kube.get("v1", "Secret", namespace=cluster.namespace, name=name)
        if secret is not None and not labelled(secret, label):
            raise InvalidSpec(
                f"Secret {name} may not be named by a ChatCluster: the operator requires the"
                f" label {label}={SECRET_LABEL_VALUE} on such Secrets (CHATCLUSTER_SECRET_LABEL)"
            )


def _ensure_broker_secret(
    kube: Kube, body: Mapping[str, Any], cluster: Cluster
) -> Mapping[str, str]:
    """Make sure the broker URL Secret exists; return its data (base64, as the API gives it)."""
    ref = broker_url_ref(cluster)
    secret = kube.get("v1", "Secret", namespace=cluster.namespace, name=ref.name)
    if secret is None and not cluster.external_broker:
        # Created once and never applied again: regenerating would lock the running broker's
        # clients out, and a hand-rotated password must survive.
        _refuse_new_credentials_for_an_existing_broker(kube, cluster)
        kube.create_if_absent(build_broker_secret(cluster, _new_credentials()))
        _event(kube, body, reason="Created", message=f"Secret {ref.name} with broker credentials")
        secret = kube.get("v1", "Secret", namespace=cluster.namespace, name=ref.name)
    if secret is None:
        raise InvalidSpec(f"Secret {ref.name} (rabbitmq.external.urlSecretRef) not found")
    data = secret.get("data") or {}
    if ref.key not in data:
        raise InvalidSpec(f"Secret {ref.name} has no key {ref.key!r} with the broker's AMQP URL")
    return data


def _refuse_new_credentials_for_an_existing_broker(kube: Kube, cluster: Cluster) -> None:
    """A running broker keeps the users it loaded at boot and its nodes the cookie they share:
    backends given new credentials would be locked out until every node restarted, and a node
    restarted with a new cookie could not rejoin the others (on a surviving volume, it is still
    their cluster's member)."""
    statefulset = child_name(cluster, RABBITMQ)
    claim = broker_claim_name(cluster, 0)
    left = []
    if (
        kube.get("apps/v1", "StatefulSet", namespace=cluster.namespace, name=statefulset)
        is not None
    ):
        left.append(f"StatefulSet {statefulset}")
    if kube.get("v1", "PersistentVolumeClaim", namespace=cluster.namespace, name=claim) is not None:
        left.append(f"PersistentVolumeClaim {claim}")
    if left:
        raise BrokerCredentialsLost(
            f"Secret {statefulset} with the broker's credentials was deleted, but"
            f" {' and '.join(left)} still hold the old ones: restore the Secret (with its"
            " username, password, backend-username, backend-password, erlang-cookie and url),"
            " or delete them to start a new, empty broker with new credentials (every room's"
            " history is lost)"
        )


def _new_credentials() -> BrokerCredentials:
    return BrokerCredentials(
        username=f"chat-{secrets.token_hex(4)}",
        password=secrets.token_urlsafe(24),
        backend_username=f"backend-{secrets.token_hex(4)}",
        backend_password=secrets.token_urlsafe(24),
        erlang_cookie=secrets.token_hex(32),
    )


def _apply_children(kube: Kube, body: Mapping[str, Any], inp: BuildInput) -> Live:
    """Apply every wanted child that differs from its live version; remove unwanted ones."""
    live: Live = {}
    for child in CHILDREN:
        desired = with_applied_hash(child.build(inp))
        key = f"{child.kind}/{child.name(inp.cluster)}"
        current = kube.get_like(desired)
        if not child.wanted(inp.cluster):
            if current is not None and _owned_by(current, inp.cluster):
                kube.delete(desired)
                _event(kube, body, reason="Deleted", message=f"{key}: no longer wanted")
            live[child.role] = None
            continue
        if not needs_apply(current, desired):
            live[child.role] = current
            continue
        if current is not None and _hands_replicas_to_autoscaler(current, desired):
            _hand_over_replicas(kube, current)
        live[child.role] = kube.apply(desired)
        _event(kube, body, reason=_apply_reason(current, desired), message=key)
    return live


def _apply_reason(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> str:
    if current is None:
        return "Created"
    # Same desired object, different live one: someone edited a field the operator owns.
    return "Repaired" if applied_hash(current) == applied_hash(desired) else "Updated"


def _hands_replicas_to_autoscaler(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """The operator is about to stop sending ``replicas`` it still owns."""
    return (
        current["kind"] == "Deployment"
        and "replicas" not in desired["spec"]
        and _manages_replicas(current, FIELD_MANAGER)
    )


def _manages_replicas(obj: Mapping[str, Any], manager: str) -> bool:
    return any(
        entry.get("manager") == manager
        and "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        for entry in obj["metadata"].get("managedFields") or []
    )


def _hand_over_replicas(kube: Kube, current: Mapping[str, Any]) -> None:
    # Dropping a field its sole manager owns resets it to the default (1 replica) before the
    # HPA acts. A second manager co-owning the current value keeps it until the HPA takes over
    # (the hand-over the server-side apply documentation describes).
    meta = current["metadata"]
    kube.apply(
        {
            "apiVersion": current["apiVersion"],
            "kind": current["kind"],
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "spec": {"replicas": current["spec"]["replicas"]},
        },
        field_manager=HANDOVER_FIELD_MANAGER,
    )


def _observe(kube: Kube, cluster: Cluster) -> Live:
    """Read the children status depends on, without building or writing anything."""
    live: Live = {}
    for role in STATUS_ROLES:
        child = BY_ROLE[role]
        name = child.name(cluster)
        live[role] = kube.get(child.api_version, child.kind, namespace=cluster.namespace, name=name)
    return live


def _observed(
    cluster: Cluster,
    live: Live,
    *,
    failure: Failure | None,
    users_online: int | None,
    retention: RoomRetention,
    broker_visit: BrokerVisit | None,
) -> Observed:
    return Observed(
        generation=cluster.generation,
        paused=cluster.spec.paused,
        backend=workload_state(live.get(Role.BACKEND)),
        frontend=workload_state(live.get(Role.FRONTEND)),
        broker=None if cluster.external_broker else workload_state(live.get(Role.BROKER)),
        failure=failure,
        users_online=users_online,
        backend_selector=",".join(f"{k}={v}" for k, v in selector_labels(cluster, BACKEND).items()),
        url=_frontend_url(cluster, live.get(Role.FRONTEND_SERVICE)),
        retention=retention,
        broker_visit=None if cluster.external_broker else broker_visit,
    )


def _write_status(kube: Kube, body: Mapping[str, Any], observed: Observed) -> str:
    meta = body["metadata"]
    previous: Mapping[str, Any] = body.get("status") or {}
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = compute_status(observed, previous, now)
    if status != previous:
        changed = sorted(k for k in {*status, *previous} if status.get(k) != previous.get(k))
        log.debug("%s/%s: status changed: %s", meta["namespace"], meta["name"], changed)
        removed = {key: None for key in previous if key not in status}
        kube.patch_cluster_status(body, {**removed, **status})
    if status["phase"] != previous.get("phase"):
        degraded = status["phase"] == "Degraded"
        change = f"phase {previous.get('phase', 'unset')} -> {status['phase']}"
        failure = observed.failure
        message = f"{change}: {failure.message}" if failure else change
        _event(kube, body, reason=status["phase"], message=message, warning=degraded)
    return str(status["phase"])


def _frontend_url(cluster: Cluster, service: Mapping[str, Any] | None) -> str:
    port = cluster.spec.frontend.service_port
    ingress = (((service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress")
    if ingress:
        host = ingress[0].get("hostname") or ingress[0].get("ip")
        return f"http://{host}:{port}"
    return f"http://{BY_ROLE[Role.FRONTEND_SERVICE].name(cluster)}.{cluster.namespace}.svc:{port}"


def _owned_by(obj: Mapping[str, Any], cluster: Cluster) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(ref.get("uid") == cluster.uid for ref in refs)


def _event(
    kube: Kube, body: Mapping[str, Any], *, reason: str, message: str, warning: bool = False
) -> None:
    meta = body["metadata"]
    log.info("%s/%s: %s %s", meta["namespace"], meta["name"], reason, message)
    try:
        kube.post_event(body, warning=warning, reason=reason, message=message)
    except (InvalidSpec, NotPermitted, TransientError) as error:
        # An event is a courtesy to the reader; losing one must not fail the pass.
        log.warning("could not post event %s on %s: %s", reason, meta["name"], error)
