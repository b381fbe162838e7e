"""The only module that talks to the Kubernetes API (synchronous ``kubernetes`` client).

Every call maps API failures onto the operator's kinds of error (``errors.py``): conflicts,
throttling, server and network trouble become ``TransientError`` (retry later); 401 and 403
become ``NotPermitted`` (the installation lacks a permission); any other rejection of an object
becomes ``InvalidSpec`` carrying the API server's own message.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from chatoperator.errors import InvalidSpec, NotPermitted, TransientError
from chatoperator.settings import FIELD_MANAGER
from chatoperator.spec import GROUP, KIND, VERSION

Object = dict[str, Any]

_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    ("v1", "Event"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    (f"{GROUP}/{VERSION}", KIND),
)
_TRANSIENT_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
_REFUSED_STATUSES = frozenset({401, 403})
"""The request was not allowed: the operator's credentials, not the object, are the problem."""


def connect() -> client.ApiClient:
    """An API client for the in-cluster service account, else the current kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


@contextmanager
def _api_errors(what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        if error.status in _TRANSIENT_STATUSES:
            raise TransientError(f"{what}: HTTP {error.status}") from error
        if error.status in _REFUSED_STATUSES:
            raise NotPermitted(f"{what}: {_api_message(error)}") from error
        raise InvalidSpec(f"{what}: {_api_message(error)}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise TransientError(f"{what}: {error}") from error


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return f"HTTP {error.status} {error.reason}"


class Kube:
    """Reads, applies and deletes the operator's objects; counts its own writes."""

    def __init__(self, api_client: client.ApiClient) -> None:
        dynamic = DynamicClient(api_client)  # type: ignore[no-untyped-call]
        # Resolved once, up front: discovery is not safe to run from several threads at once.
        self._resources: dict[tuple[str, str], Resource] = {
            key: dynamic.resources.get(api_version=key[0], kind=key[1]) for key in _KINDS
        }
        self._counts = threading.local()

    @property
    def writes(self) -> int:
        """API writes made so far by the calling thread (applies, creates, deletes, status
        patches, events).

        Per thread, because passes of different clusters run at the same time on the thread pool:
        a pass runs on one thread from start to end, so the difference across a pass counts that
        pass's own writes and no one else's.
        """
        return int(getattr(self._counts, "writes", 0))

    def _count_write(self) -> None:
        self._counts.writes = self.writes + 1

    def _resource(self, obj: Mapping[str, Any]) -> Resource:
        return self._resources[(obj["apiVersion"], obj["kind"])]

    def _what(self, obj: Mapping[str, Any]) -> str:
        return f"{obj['kind']} {obj['metadata']['name']}"

    def get(self, api_version: str, kind: str, *, namespace: str, name: str) -> Object | None:
        with _api_errors(f"read {kind} {name}"):
            try:
                found = self._resources[(api_version, kind)].get(name=name, namespace=namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        return dict(found.to_dict())

    def list_pods(self, *, namespace: str, selector: Mapping[str, str]) -> list[Object]:
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        with _api_errors(f"list Pods {labels}"):
            found = self._resources[("v1", "Pod")].get(namespace=namespace, label_selector=labels)
        return [dict(item.to_dict()) for item in found.items]

    def get_like(self, obj: Mapping[str, Any]) -> Object | None:
        """The live version of ``obj`` (same kind, namespace and name), or None."""
        meta = obj["metadata"]
        return self.get(
            obj["apiVersion"], obj["kind"], namespace=meta["namespace"], name=meta["name"]
        )

    def apply(self, obj: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER) -> Object:
        """Server-side apply, forcing conflicts: the operator owns the fields it sends."""
        with _api_errors(f"apply {self._what(obj)}"):
            self._count_write()
            applied = self._resource(obj).server_side_apply(
                body=dict(obj),
                namespace=obj["metadata"]["namespace"],
                field_manager=field_manager,
                force_conflicts=True,
            )
        return dict(applied.to_dict())

    def create_if_absent(self, obj: Mapping[str, Any]) -> bool:
        """Create ``obj`` unless it exists (never touching an existing one); True if created."""
        with _api_errors(f"create {self._what(obj)}"):
            try:
                self._count_write()
                self._resource(obj).create(body=dict(obj), namespace=obj["metadata"]["namespace"])
            except ApiException as error:
                if error.status == 409:
                    return False
                raise
        return True

    def delete(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        with _api_errors(f"delete {self._what(obj)}"):
            try:
                self._count_write()
                self._resource(obj).delete(name=meta["name"], namespace=meta["namespace"])
            except ApiException as error:
                if error.status != 404:
                    raise

    def get_cluster(self, *, namespace: str, name: str) -> Object | None:
        return self.get(f"{GROUP}/{VERSION}", KIND, namespace=namespace, name=name)

    def patch_cluster_status(self, cluster: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Merge-patch ``status`` (keys set to None are removed) through the status subresource."""
        meta = cluster["metadata"]
        resource = self._resources[(f"{GROUP}/{VERSION}", KIND)]
        with _api_errors(f"write status of {meta['name']}"):
            self._count_write()
            try:
                resource.status.patch(
                    body={"status": dict(status)},
                    name=meta["name"],
                    namespace=meta["namespace"],
                    content_type="application/merge-patch+json",
                )
            except ApiException as error:
                if error.status != 404:  # deleted during the pass: no status to keep
                    raise

    def post_event(
        self, cluster: Mapping[str, Any], *, warning: bool, reason: str, message: str
    ) -> None:
        """A core/v1 Event on the ChatCluster, as ``kubectl describe`` shows them."""
        meta = cluster["metadata"]
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.create_if_absent(event)
