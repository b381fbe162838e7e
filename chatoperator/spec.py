"""A typed, defaulted view of a ChatCluster: what the builders read instead of raw dicts.

The API server already applies the CRD defaults, and ``crd.py`` renders those defaults from the
constants below, so the two cannot drift; those the chat server shares come from its
``chatserver.contract``. Parsing defaults again here keeps builders total for
objects stored before a default existed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from chatoperator.errors import InvalidSpec
from chatserver import contract

GROUP = "chatcluster.dev"
VERSION = "v1alpha1"
KIND = "ChatCluster"
PLURAL = "chatclusters"

DEFAULT_BACKEND_REPLICAS = 2
DEFAULT_FRONTEND_REPLICAS = 1
DEFAULT_MIN_REPLICAS = 2
DEFAULT_MAX_REPLICAS = 10
DEFAULT_TARGET_CPU_PERCENT = 70
DEFAULT_SERVICE_TYPE = "ClusterIP"
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
DEFAULT_SERVICE_PORT = 80
DEFAULT_BROKER_REPLICAS = 1
DEFAULT_BROKER_MEMORY = "2Gi"
"""Each broker node's memory (request and limit), as the RabbitMQ cluster operator's default:
with the node's own 256 MiB, it holds the default 1000 rooms read by up to 13 backends as
``broker_capacity`` counts them (the default autoscaling goes to 10)."""
MIN_BROKER_MEMORY = "512Mi"
MAX_BROKER_MEMORY = "256Gi"
# Ephemeral storage per container (logs, /tmp and, for a broker without rabbitmq.storage, its
# data): the request is what the scheduler reserves on the node, the limit where the kubelet
# evicts the pod, and every emptyDir of the pod gets the limit as its sizeLimit.
DEFAULT_CHATSERVER_EPHEMERAL_REQUEST = "64Mi"
DEFAULT_CHATSERVER_EPHEMERAL_LIMIT = "256Mi"
DEFAULT_BROKER_EPHEMERAL_REQUEST = "512Mi"
DEFAULT_BROKER_EPHEMERAL_LIMIT = "2Gi"
DEFAULT_EXTERNAL_URL_KEY = "url"
BYTES_SUFFIXES = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
BYTES_PATTERN = "^([1-9][0-9]{0,11})(Ki|Mi|Gi)?$"
"""A size in bytes as a Kubernetes quantity in whole bytes or binary units (``8Mi``)."""
DEFAULT_ROOM_MAX_BYTES = f"{contract.DEFAULT_ROOM_MAX_BYTES // BYTES_SUFFIXES['Mi']}Mi"
MAX_ROOM_MAX_BYTES = f"{contract.MAX_ROOM_MAX_BYTES // BYTES_SUFFIXES['Mi']}Mi"
MAX_AGE_PATTERN = "^[1-9][0-9]{0,5}(Y|M|D|h|m|s)$"
"""RabbitMQ's ``max-age``: a count and a unit (years, months, days, hours, minutes, seconds)."""
# The chat settings' defaults are the chat server's own (chatserver/contract.py).
DEFAULT_ROOMS = contract.DEFAULT_ROOMS
DEFAULT_MAX_ROOMS = 1000
"""Rooms a cluster may hold at once: each is a stream, about 60 KiB of broker memory and two
file descriptors per node even when idle, so 1000 fit the default 512Mi broker with room."""
MAX_MAX_ROOMS = 100_000
DEFAULT_IDLE_ROOM_SECONDS = 7 * 24 * 3600
"""A room nobody has been in for a week gives its slot back (and its history goes with it)."""
DEFAULT_HISTORY_SIZE = contract.DEFAULT_HISTORY_SIZE
DEFAULT_MAX_MESSAGE_BYTES = contract.DEFAULT_MAX_MESSAGE_BYTES
DEFAULT_RATE_PER_SECOND = contract.DEFAULT_RATE_PER_SECOND
DEFAULT_RATE_BURST = contract.DEFAULT_RATE_BURST
DEFAULT_MAX_ROOMS_PER_CONNECTION = contract.DEFAULT_MAX_ROOMS_PER_CONNECTION
DEFAULT_MAX_ROOMS_PER_CLIENT = contract.DEFAULT_MAX_ROOMS_PER_CLIENT
DEFAULT_ROOM_CREATION = contract.DEFAULT_ROOM_CREATION
DEFAULT_MAX_CONNECTIONS = contract.DEFAULT_MAX_CONNECTIONS
DEFAULT_MAX_CONNECTIONS_PER_IP = contract.DEFAULT_MAX_CONNECTIONS_PER_IP
AUTH_MODES = ("none", "jwt")
DEFAULT_AUTH_MODE = "none"
DEFAULT_AUTH_SECRET_KEY = "secret"
ROOM_PATTERN = f"^{contract.ROOM_NAME_PATTERN}$"
ORIGIN_PATTERN = f"^{contract.ORIGIN_PATTERN}$"

Resources = Mapping[str, Mapping[str, int | str]]
"""A container's ``resources`` block (requests/limits), passed through unchanged."""


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class EphemeralStorage:
    """A container's ephemeral-storage request and limit, and its pod's emptyDir sizeLimit."""

    request: str
    limit: str


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool
    min_replicas: int
    max_replicas: int
    target_cpu_percent: int


@dataclass(frozen=True)
class Backend:
    replicas: int
    resources: Resources | None
    autoscaling: Autoscaling
    max_connections: int
    ephemeral_storage: EphemeralStorage


@dataclass(frozen=True)
class Frontend:
    replicas: int
    resources: Resources | None
    service_type: str
    service_port: int
    max_connections: int
    max_connections_per_ip: int
    ephemeral_storage: EphemeralStorage


@dataclass(frozen=True)
class Storage:
    size: str
    storage_class_name: str | None


@dataclass(frozen=True)
class Retention:
    """What each room's stream keeps: the broker drops its oldest segments beyond either."""

    max_bytes: int
    max_age: str | None


@dataclass(frozen=True)
class RabbitMQ:
    image: str
    replicas: int
    storage: Storage | None
    retention: Retention
    external_url: SecretKeyRef | None
    """Set when the cluster uses an existing broker: then the operator runs none of its own."""
    ephemeral_storage: EphemeralStorage
    memory: str
    """Each node's memory, request and limit (``8Gi``)."""

    @property
    def memory_bytes(self) -> int:
        return parse_bytes(self.memory)


@dataclass(frozen=True)
class Chat:
    rooms: tuple[str, ...]
    max_rooms: int
    idle_room_seconds: int
    """0: rooms are never reclaimed."""
    history_size: int
    max_message_bytes: int
    rate_per_second: int
    rate_burst: int
    max_rooms_per_connection: int
    max_rooms_per_client: int
    room_creation: str


@dataclass(frozen=True)
class Auth:
    mode: str
    secret: SecretKeyRef | None
    allowed_origins: tuple[str, ...]


@dataclass(frozen=True)
class Scraper:
    """Who may read the backends' ``/metrics``: pods matching both label sets (an empty set
    matches all; no namespace labels: the cluster's own namespace)."""

    namespace_labels: Mapping[str, str] | None
    pod_labels: Mapping[str, str]


@dataclass(frozen=True)
class NetworkPolicy:
    egress: bool
    """Each pod may connect only where it must (and to DNS); False leaves egress open."""
    scraper: Scraper | None


@dataclass(frozen=True)
class ClusterSpec:
    image: str
    backend: Backend
    frontend: Frontend
    rabbitmq: RabbitMQ
    chat: Chat
    auth: Auth
    network_policy: NetworkPolicy
    paused: bool


@dataclass(frozen=True)
class Cluster:
    """One ChatCluster: its identity (for names, owners and labels) and its spec."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: ClusterSpec

    @property
    def external_broker(self) -> bool:
        return self.spec.rabbitmq.external_url is not None


@dataclass(frozen=True)
class Images:
    """The operator's configured images, used where the spec leaves them empty."""

    chatserver: str
    rabbitmq: str


def parse_cluster(body: Mapping[str, Any], *, images: Images) -> Cluster:
    """Read a ChatCluster object (as the API returns it) into a ``Cluster``."""
    meta = body.get("metadata") or {}
    try:
        return Cluster(
            name=str(meta["name"]),
            namespace=str(meta["namespace"]),
            uid=str(meta["uid"]),
            generation=int(meta.get("generation", 0)),
            spec=parse_spec(body.get("spec") or {}, images=images),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidSpec(f"malformed ChatCluster: {error!r}") from error


def parse_spec(spec: Mapping[str, Any], *, images: Images) -> ClusterSpec:
    backend = spec.get("backend") or {}
    autoscaling = backend.get("autoscaling") or {}
    frontend = spec.get("frontend") or {}
    service = frontend.get("service") or {}
    broker = spec.get("rabbitmq") or {}
    storage = broker.get("storage")
    retention = broker.get("retention") or {}
    external = (broker.get("external") or {}).get("urlSecretRef")
    chat = spec.get("chat") or {}
    rate = chat.get("rateLimit") or {}
    auth = spec.get("auth") or {}
    auth_secret = auth.get("secretRef")
    network = spec.get("networkPolicy") or {}
    scraper = network.get("metricsScraper")
    return ClusterSpec(
        image=spec.get("image") or images.chatserver,
        backend=Backend(
            replicas=int(backend.get("replicas", DEFAULT_BACKEND_REPLICAS)),
            resources=_resources(backend.get("resources")),
            autoscaling=Autoscaling(
                enabled=bool(autoscaling.get("enabled", False)),
                min_replicas=int(autoscaling.get("minReplicas", DEFAULT_MIN_REPLICAS)),
                max_replicas=int(autoscaling.get("maxReplicas", DEFAULT_MAX_REPLICAS)),
                target_cpu_percent=int(
                    autoscaling.get("targetCPUUtilizationPercentage", DEFAULT_TARGET_CPU_PERCENT)
                ),
            ),
            max_connections=int(backend.get("maxConnections", DEFAULT_MAX_CONNECTIONS)),
            ephemeral_storage=_ephemeral_storage(
                backend.get("ephemeralStorage"),
                DEFAULT_CHATSERVER_EPHEMERAL_REQUEST,
                DEFAULT_CHATSERVER_EPHEMERAL_LIMIT,
            ),
        ),
        frontend=Frontend(
            replicas=int(frontend.get("replicas", DEFAULT_FRONTEND_REPLICAS)),
            resources=_resources(frontend.get("resources")),
            service_type=str(service.get("type", DEFAULT_SERVICE_TYPE)),
            service_port=int(service.get("port", DEFAULT_SERVICE_PORT)),
            max_connections=int(frontend.get("maxConnections", DEFAULT_MAX_CONNECTIONS)),
            max_connections_per_ip=int(
                frontend.get("maxConnectionsPerClientIP", DEFAULT_MAX_CONNECTIONS_PER_IP)
            ),
            ephemeral_storage=_ephemeral_storage(
                frontend.get("ephemeralStorage"),
                DEFAULT_CHATSERVER_EPHEMERAL_REQUEST,
                DEFAULT_CHATSERVER_EPHEMERAL_LIMIT,
            ),
        ),
        rabbitmq=RabbitMQ(
            image=broker.get("image") or images.rabbitmq,
            replicas=int(broker.get("replicas", DEFAULT_BROKER_REPLICAS)),
            storage=(
                Storage(
                    size=str(storage["size"]), storage_class_name=storage.get("storageClassName")
                )
                if storage
                else None
            ),
            retention=Retention(
                max_bytes=parse_bytes(str(retention.get("maxBytes", DEFAULT_ROOM_MAX_BYTES))),
                max_age=retention.get("maxAge"),
            ),
            external_url=_secret_key_ref(external, DEFAULT_EXTERNAL_URL_KEY),
            ephemeral_storage=_ephemeral_storage(
                broker.get("ephemeralStorage"),
                DEFAULT_BROKER_EPHEMERAL_REQUEST,
                DEFAULT_BROKER_EPHEMERAL_LIMIT,
            ),
            memory=str(broker.get("memory", DEFAULT_BROKER_MEMORY)),
        ),
        chat=Chat(
            rooms=tuple(chat.get("rooms", DEFAULT_ROOMS)),
            max_rooms=int(chat.get("maxRooms", DEFAULT_MAX_ROOMS)),
            idle_room_seconds=int(chat.get("idleRoomSeconds", DEFAULT_IDLE_ROOM_SECONDS)),
            history_size=int(chat.get("historySize", DEFAULT_HISTORY_SIZE)),
            max_message_bytes=int(chat.get("maxMessageBytes", DEFAULT_MAX_MESSAGE_BYTES)),
            rate_per_second=int(rate.get("messagesPerSecond", DEFAULT_RATE_PER_SECOND)),
            rate_burst=int(rate.get("burst", DEFAULT_RATE_BURST)),
            max_rooms_per_connection=int(
                chat.get("maxRoomsPerConnection", DEFAULT_MAX_ROOMS_PER_CONNECTION)
            ),
            max_rooms_per_client=int(chat.get("maxRoomsPerClient", DEFAULT_MAX_ROOMS_PER_CLIENT)),
            room_creation=str(chat.get("roomCreation", DEFAULT_ROOM_CREATION)),
        ),
        auth=Auth(
            mode=str(auth.get("mode", DEFAULT_AUTH_MODE)),
            secret=_secret_key_ref(auth_secret, DEFAULT_AUTH_SECRET_KEY),
            allowed_origins=tuple(auth.get("allowedOrigins", ())),
        ),
        network_policy=NetworkPolicy(
            egress=bool(network.get("egress", True)),
            scraper=(
                Scraper(
                    namespace_labels=(
                        None
                        if scraper.get("namespaceLabels") is None
                        else dict(scraper["namespaceLabels"])
                    ),
                    pod_labels=dict(scraper.get("podLabels") or {}),
                )
                if scraper
                else None
            ),
        ),
        paused=bool(spec.get("paused", False)),
    )


def parse_bytes(quantity: str) -> int:
    """``8Mi`` -> 8388608, for the quantities ``BYTES_PATTERN`` admits."""
    match = re.fullmatch(BYTES_PATTERN.strip("^$"), quantity)
    if match is None:
        raise ValueError(f"not a size in bytes: {quantity!r}")
    return int(match[1]) * BYTES_SUFFIXES[match[2] or ""]


_QUANTITY = re.compile(
    r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([eE][+-]?[0-9]+)|([KMGTPE]i)|([numkMGTPE]))?"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "k": "1e3", "M": "1e6", "G": "1e9"}
_DECIMAL |= {"T": "1e12", "P": "1e15", "E": "1e18"}


def quantity_bytes(quantity: str | int) -> int:
    """A Kubernetes quantity of bytes, whole (``512Mi``, ``1G``, ``1.5Gi``, ``2e9``), rounded
    up as Kubernetes rounds memory."""
    match = _QUANTITY.fullmatch(str(quantity).lstrip("+"))
    if match is None:
        raise ValueError(f"not a quantity: {quantity!r}")
    number, exponent, binary, decimal = match.groups()
    value = Decimal(number)
    if exponent:
        value *= Decimal(f"1{exponent}")
    elif binary:
        value *= _BINARY[binary]
    elif decimal:
        value *= Decimal(_DECIMAL[decimal])
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def format_bytes(size: int) -> str:
    """8388608 -> ``8Mi``: the largest binary unit that divides it."""
    for suffix in ("Gi", "Mi", "Ki"):
        if size % BYTES_SUFFIXES[suffix] == 0:
            return f"{size // BYTES_SUFFIXES[suffix]}{suffix}"
    return str(size)


def _secret_key_ref(ref: Mapping[str, Any] | None, default_key: str) -> SecretKeyRef | None:
    if not ref:
        return None
    return SecretKeyRef(name=str(ref["name"]), key=str(ref.get("key", default_key)))


def _ephemeral_storage(
    given: Mapping[str, Any] | None, default_request: str, default_limit: str
) -> EphemeralStorage:
    given = given or {}
    return EphemeralStorage(
        request=str(given.get("request", default_request)),
        limit=str(given.get("limit", default_limit)),
    )


def _resources(resources: Mapping[str, Mapping[str, int | str]] | None) -> Resources | None:
    # Plain copies: the caller's body must never be shared with (or changed through) a builder.
    if not resources:
        return None
    return {kind: dict(amounts) for kind, amounts in resources.items()}
