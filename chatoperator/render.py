"""``chatoperator render``: every object the operator would create for a manifest, with no cluster.

The same path as a reconcile pass, minus the API server: the CRD's defaults applied as the API
server applies them (``defaulting.py``), the spec parsed as the operator parses it, and every
wanted child built by the same builders, in ``CHILDREN`` order, after the broker Secret the
operator creates first. What only a cluster or the credential generator can know is shown as a
placeholder, never invented: the ChatCluster's uid in owner references, the generated broker
credentials, and the backends' config hash when it digests those credentials. The
``applied-hash`` annotation is left out: it digests the object with its real owner uid.

Pure: documents in, objects out. The CLI reads the file and prints.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from chatoperator.builders import BY_ROLE, CHILDREN, BuildInput, Role
from chatoperator.builders.broker_secret import (
    BrokerCredentials,
    broker_url_digest,
    broker_url_ref,
    build_broker_secret,
)
from chatoperator.builders.meta import CONFIG_HASH_ANNOTATION
from chatoperator.crd import render_crd
from chatoperator.defaulting import with_defaults
from chatoperator.errors import InvalidSpec
from chatoperator.spec import GROUP, KIND, Cluster, Images, parse_cluster

GENERATED = "<generated>"
"""Stands for a value the operator generates when it creates the object."""

UID_PLACEHOLDER = "<uid of the ChatCluster>"
"""Stands for the uid the API server gives the ChatCluster (owner references carry it)."""

DEFAULT_NAMESPACE = "default"
"""Where an object with no namespace goes, as with ``kubectl apply`` in the default context."""

DEFAULT_OPERATOR_NAMESPACE = "chatcluster-system"
"""Where deploy/ installs the operator, whose pods the backends' NetworkPolicy admits."""


@dataclass(frozen=True)
class RenderSettings:
    images: Images
    """The operator's configured images (``CHATCLUSTER_*_IMAGE``), for a spec that names none."""
    namespace: str | None = None
    """``--namespace``: for objects whose manifest names none (``DEFAULT_NAMESPACE`` if unset)."""
    operator_namespace: str | None = DEFAULT_OPERATOR_NAMESPACE
    """The operator pods' namespace; None for an operator that runs outside the cluster."""


def render(documents: Iterable[Any], settings: RenderSettings) -> list[dict[str, Any]]:
    """Every object the operator would create for the ChatClusters among ``documents``.

    Other documents are not rendered, but a Secret among them that a ChatCluster names as its
    external broker gives the backends' config hash its real value. Raises ``InvalidSpec`` for a
    ChatCluster the operator could not read.
    """
    docs = [doc for doc in documents if isinstance(doc, Mapping)]
    for doc in docs:
        _check_namespace(doc, settings.namespace)
    secrets = {
        (_namespace(doc, settings.namespace), doc["metadata"]["name"]): doc
        for doc in docs
        if doc.get("kind") == "Secret" and doc.get("apiVersion") == "v1"
    }
    objects: list[dict[str, Any]] = []
    for doc in docs:
        if doc.get("kind") == KIND and str(doc.get("apiVersion", "")).startswith(f"{GROUP}/"):
            cluster = parse_cluster(_as_stored(doc, settings.namespace), images=settings.images)
            objects += _children(cluster, secrets, settings)
    return objects


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects as a YAML stream, keys in build order, multi-line strings as literal blocks."""
    return yaml.dump_all(list(objects), Dumper=_Dumper, sort_keys=False, width=100)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        # Objects a builder shares between two places are written out twice: a reviewer reads
        # each object whole, and kubectl and the scanners expect no anchors.
        return True


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


def _namespace(doc: Mapping[str, Any], namespace: str | None) -> str:
    given = (doc.get("metadata") or {}).get("namespace")
    return str(given or namespace or DEFAULT_NAMESPACE)


def _check_namespace(doc: Mapping[str, Any], namespace: str | None) -> None:
    given = (doc.get("metadata") or {}).get("namespace")
    if given and namespace and given != namespace:
        # kubectl refuses the same mismatch; rendering one would show objects never created.
        raise InvalidSpec(
            f"{doc.get('kind')} {doc['metadata'].get('name')} is in namespace {given},"
            f" not {namespace}"
        )


def _as_stored(doc: Mapping[str, Any], namespace: str | None) -> dict[str, Any]:
    """The ChatCluster as the API server would store it: namespaced, given a uid, defaulted."""
    [version] = render_crd()["spec"]["versions"]
    body = with_defaults(doc, version["schema"]["openAPIV3Schema"])
    body["metadata"] = {
        **body.get("metadata", {}),
        "namespace": _namespace(doc, namespace),
        "uid": UID_PLACEHOLDER,
        "generation": 1,
    }
    return dict(body)


def _children(
    cluster: Cluster,
    secrets: Mapping[tuple[str, str], Mapping[str, Any]],
    settings: RenderSettings,
) -> list[dict[str, Any]]:
    if cluster.spec.paused:
        return []  # a paused cluster gets no writes, not even its first ones
    objects = []
    url_digest = _known_url_digest(cluster, secrets)
    if not cluster.external_broker:
        generated = BrokerCredentials(
            username=GENERATED,
            password=GENERATED,
            backend_username=GENERATED,
            backend_password=GENERATED,
            erlang_cookie=GENERATED,
        )
        objects.append(build_broker_secret(cluster, generated))
    inp = BuildInput(
        cluster, url_digest or GENERATED, operator_namespace=settings.operator_namespace
    )
    for child in CHILDREN:
        if child.wanted(cluster):
            built = child.build(inp)
            if url_digest is None and child is BY_ROLE[Role.BACKEND]:
                _hide_config_hash(built)
            objects.append(built)
    return objects


def _known_url_digest(
    cluster: Cluster, secrets: Mapping[tuple[str, str], Mapping[str, Any]]
) -> str | None:
    """The broker URL's digest when the manifest holds the Secret with it; None otherwise."""
    ref = broker_url_ref(cluster)
    secret = secrets.get((cluster.namespace, ref.name))
    if secret is None or not cluster.external_broker:
        return None
    plain = (secret.get("stringData") or {}).get(ref.key)
    if plain is not None:
        # The API server stores stringData as data: the digest is of that base64 text.
        return broker_url_digest(base64.b64encode(str(plain).encode()).decode())
    encoded = (secret.get("data") or {}).get(ref.key)
    return None if encoded is None else broker_url_digest(str(encoded))


def _hide_config_hash(deployment: dict[str, Any]) -> None:
    # Built here, so changing it in place changes nothing a caller holds.
    deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] = GENERATED
