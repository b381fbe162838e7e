"""The ChatCluster CustomResourceDefinition, rendered from the defaults in ``spec.py``.

This is the one source of truth for ``crds/chatclusters.chatcluster.dev.yaml``
(``chatoperator crd > crds/...``); a unit test proves the committed file is up to date.
Validation lives here, at admission, so a bad manifest is refused by ``kubectl apply`` with the
message below instead of reaching the operator. Where a spec field becomes a chat server
setting, its least value and its shape come from the chat server's ``chatserver.contract``, so
admission refuses what the server would refuse at start, rather than a backend crash-looping on
it.
"""

from __future__ import annotations

from typing import Any

from chatoperator import spec as s
from chatoperator.builders import broker_capacity
from chatserver import contract

Schema = dict[str, Any]


def _int(
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    description: str | None = None,
) -> Schema:
    schema: Schema = {"type": "integer"}
    if description is not None:
        schema["description"] = description
    if default is not None:
        schema["default"] = default
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _obj(
    properties: Schema,
    *,
    required: list[str] | None = None,
    rules: list[dict[str, str]] | None = None,
    **extra: Any,
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = rules
    schema.update(extra)
    return schema


def _rule(rule: str, message: str, **extra: str) -> dict[str, str]:
    return {"rule": rule, "message": message, **extra}


_NAME = {"type": "string", "minLength": 1, "maxLength": 253}

_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": _QUANTITY_PATTERN,
    "x-kubernetes-int-or-string": True,
}

_LABELS: Schema = {"type": "object", "additionalProperties": {"type": "string"}}

_RESOURCES = _obj(
    {
        "requests": {"type": "object", "additionalProperties": _QUANTITY},
        "limits": {"type": "object", "additionalProperties": _QUANTITY},
    },
    description="Container requests/limits, as in a Pod; the operator's defaults otherwise.",
)


def _ephemeral_storage(default_request: str, default_limit: str) -> Schema:
    return _obj(
        {
            "request": {**_QUANTITY, "default": default_request},
            "limit": {**_QUANTITY, "default": default_limit},
        },
        default={},
        description="Ephemeral storage of each container (logs, /tmp, an emptyDir's data):"
        " request and limit; every emptyDir of the pod gets the limit as its sizeLimit."
        " An ephemeral-storage entry in resources, if any, wins.",
    )


def _secret_ref(default_key: str, description: str) -> Schema:
    return _obj(
        {"name": _NAME, "key": {"type": "string", "minLength": 1, "default": default_key}},
        required=["name"],
        description=description,
    )


def _max_connections(what: str) -> Schema:
    return _int(
        default=s.DEFAULT_MAX_CONNECTIONS,
        minimum=contract.MIN_MAX_CONNECTIONS,
        maximum=contract.MAX_CONNECTIONS_CRD_LIMIT,
        description=f"{what} (lowered to the file descriptor limit); more are answered 503.",
    )


def _spec_schema() -> Schema:
    replicas_max = 100
    autoscaling = _obj(
        {
            "enabled": {"type": "boolean", "default": False},
            "minReplicas": _int(default=s.DEFAULT_MIN_REPLICAS, minimum=1, maximum=replicas_max),
            "maxReplicas": _int(default=s.DEFAULT_MAX_REPLICAS, minimum=1, maximum=replicas_max),
            "targetCPUUtilizationPercentage": _int(
                default=s.DEFAULT_TARGET_CPU_PERCENT, minimum=1, maximum=100
            ),
        },
        default={},
        description="With enabled, an autoscaling/v2 HPA owns the backend replicas.",
        rules=[
            _rule(
                "self.minReplicas <= self.maxReplicas",
                "backend.autoscaling.minReplicas must be <= maxReplicas",
                fieldPath=".minReplicas",
            )
        ],
    )
    backend = _obj(
        {
            "replicas": _int(default=s.DEFAULT_BACKEND_REPLICAS, minimum=0, maximum=replicas_max),
            "resources": _RESOURCES,
            "autoscaling": autoscaling,
            "maxConnections": _max_connections("Open connections per backend pod"),
            "ephemeralStorage": _ephemeral_storage(
                s.DEFAULT_CHATSERVER_EPHEMERAL_REQUEST, s.DEFAULT_CHATSERVER_EPHEMERAL_LIMIT
            ),
        },
        default={},
    )
    frontend = _obj(
        {
            "replicas": _int(default=s.DEFAULT_FRONTEND_REPLICAS, minimum=0, maximum=replicas_max),
            "resources": _RESOURCES,
            "service": _obj(
                {
                    "type": {
                        "type": "string",
                        "enum": list(s.SERVICE_TYPES),
                        "default": s.DEFAULT_SERVICE_TYPE,
                    },
                    "port": _int(default=s.DEFAULT_SERVICE_PORT, minimum=1, maximum=65535),
                },
                default={},
            ),
            "maxConnections": _max_connections("Open connections per frontend pod"),
            "maxConnectionsPerClientIP": _int(
                default=s.DEFAULT_MAX_CONNECTIONS_PER_IP,
                minimum=0,
                maximum=contract.MAX_CONNECTIONS_CRD_LIMIT,
                description="Open connections per frontend pod from one client address"
                " (0: no cap); more are answered 503.",
            ),
            "ephemeralStorage": _ephemeral_storage(
                s.DEFAULT_CHATSERVER_EPHEMERAL_REQUEST, s.DEFAULT_CHATSERVER_EPHEMERAL_LIMIT
            ),
        },
        default={},
    )
    rabbitmq = _obj(
        {
            "image": {"type": "string", "minLength": 1},
            "replicas": _int(default=s.DEFAULT_BROKER_REPLICAS, minimum=1, maximum=9),
            "memory": {
                "type": "string",
                "pattern": s.BYTES_PATTERN,
                "default": s.DEFAULT_BROKER_MEMORY,
                "description": "Each broker node's memory, request and limit (RabbitMQ raises"
                f" its memory alarm at {broker_capacity.MEMORY_HIGH_WATERMARK_PERCENT}% of it);"
                f" {s.MIN_BROKER_MEMORY} to {s.MAX_BROKER_MEMORY}. It must hold chat.maxRooms.",
                "x-kubernetes-validations": [
                    _rule(
                        f"quantity(self).compareTo(quantity('{s.MIN_BROKER_MEMORY}')) >= 0"
                        f" && quantity(self).compareTo(quantity('{s.MAX_BROKER_MEMORY}')) <= 0",
                        f"rabbitmq.memory is {s.MIN_BROKER_MEMORY} to {s.MAX_BROKER_MEMORY}",
                    )
                ],
            },
            "storage": _obj(
                {
                    "size": {"type": "string", "pattern": _QUANTITY_PATTERN},
                    "storageClassName": _NAME,
                },
                required=["size"],
                description="A PersistentVolumeClaim per broker pod; without it, an emptyDir.",
            ),
            "retention": _obj(
                {
                    "maxBytes": {
                        "type": "string",
                        "pattern": s.BYTES_PATTERN,
                        "default": s.DEFAULT_ROOM_MAX_BYTES,
                        "description": "Bytes each room's stream keeps, at most"
                        f" {s.MAX_ROOM_MAX_BYTES} (a backend replays a room's stream on its"
                        " first join there: about 0.1 s per Mi).",
                    },
                    "maxAge": {
                        "type": "string",
                        "pattern": s.MAX_AGE_PATTERN,
                        "description": "Age after which messages go (7D, 12h; units Y M D h m s);"
                        " none by default. Needs the operator's own broker.",
                    },
                },
                default={},
                rules=[
                    _rule(
                        f"quantity(self.maxBytes).compareTo(quantity('{s.MAX_ROOM_MAX_BYTES}'))"
                        " <= 0",
                        f"rabbitmq.retention.maxBytes is at most {s.MAX_ROOM_MAX_BYTES}",
                        fieldPath=".maxBytes",
                    )
                ],
                description="What each room's stream keeps; applied to existing rooms too"
                " (a RabbitMQ policy the operator keeps on its broker).",
            ),
            "external": _obj(
                {
                    "urlSecretRef": _secret_ref(
                        s.DEFAULT_EXTERNAL_URL_KEY, "A Secret key holding the AMQP URL."
                    )
                },
                required=["urlSecretRef"],
                description="Use an existing broker: the operator then runs no RabbitMQ.",
            ),
            "ephemeralStorage": _ephemeral_storage(
                s.DEFAULT_BROKER_EPHEMERAL_REQUEST, s.DEFAULT_BROKER_EPHEMERAL_LIMIT
            ),
        },
        default={},
        rules=[
            _rule(
                "self.replicas % 2 == 1",
                "rabbitmq.replicas must be odd, so a majority survives the loss of a node",
                fieldPath=".replicas",
            ),
            _rule(
                "self.replicas == 1 || has(self.storage)",
                "rabbitmq.replicas above 1 needs rabbitmq.storage: a clustered node restarted"
                " blank under its old name cannot rejoin its cluster, and its data is gone",
                fieldPath=".storage",
            ),
            _rule(
                "!has(self.external) || (!has(self.image) && !has(self.storage)"
                " && self.replicas == 1)",
                "rabbitmq.external excludes the operator's own broker:"
                " remove rabbitmq.image, rabbitmq.storage and rabbitmq.replicas",
            ),
            _rule(
                "!has(self.external) || !has(self.retention.maxAge)",
                "rabbitmq.retention.maxAge needs the operator's own broker: on an external one,"
                " set a max-age policy for the room streams yourself",
                fieldPath=".retention.maxAge",
            ),
            _rule(
                "self.replicas >= oldSelf.replicas",
                "rabbitmq.replicas cannot shrink: removing broker nodes loses queue replicas",
                fieldPath=".replicas",
            ),
            _rule(
                "has(self.storage) == has(oldSelf.storage)"
                " && (!has(self.storage) || self.storage == oldSelf.storage)",
                "rabbitmq.storage is immutable: a StatefulSet's volume claims cannot change",
            ),
        ],
    )
    chat = _obj(
        {
            "rooms": {
                "type": "array",
                "items": {"type": "string", "pattern": s.ROOM_PATTERN},
                "minItems": 1,
                "maxItems": 100,
                "x-kubernetes-list-type": "set",
                "default": list(s.DEFAULT_ROOMS),
            },
            "maxRooms": _int(
                default=s.DEFAULT_MAX_ROOMS,
                minimum=1,
                maximum=s.MAX_MAX_ROOMS,
                description="Rooms that may exist at once across the cluster; past it a new"
                " room is refused with room_limit (the broker's own queue limit, on the"
                " operator's broker).",
            ),
            "idleRoomSeconds": _int(
                default=s.DEFAULT_IDLE_ROOM_SECONDS,
                minimum=0,
                maximum=10 * 365 * 24 * 3600,
                description="Seconds a room nobody is in keeps its history before the operator"
                " deletes its stream and frees its slot (0: never). The rooms of chat.rooms are"
                " never deleted. Needs the operator's own broker.",
            ),
            "historySize": _int(
                default=s.DEFAULT_HISTORY_SIZE, minimum=contract.MIN_HISTORY_SIZE, maximum=10000
            ),
            "maxMessageBytes": _int(
                default=s.DEFAULT_MAX_MESSAGE_BYTES,
                minimum=contract.MIN_MAX_MESSAGE_BYTES,
                maximum=contract.MAX_MAX_MESSAGE_BYTES,
            ),
            "rateLimit": _obj(
                {
                    "messagesPerSecond": _int(
                        default=s.DEFAULT_RATE_PER_SECOND, minimum=1, maximum=10000
                    ),
                    "burst": _int(
                        default=s.DEFAULT_RATE_BURST,
                        minimum=contract.MIN_RATE_BURST,
                        maximum=100000,
                    ),
                },
                default={},
                rules=[
                    _rule(
                        "self.burst >= self.messagesPerSecond",
                        "chat.rateLimit.burst must be >= messagesPerSecond",
                        fieldPath=".burst",
                    )
                ],
            ),
            "maxRoomsPerConnection": _int(
                default=s.DEFAULT_MAX_ROOMS_PER_CONNECTION,
                minimum=contract.MIN_MAX_ROOMS,
                maximum=contract.MAX_MAX_ROOMS_CRD_LIMIT,
            ),
            "maxRoomsPerClient": _int(
                default=s.DEFAULT_MAX_ROOMS_PER_CLIENT,
                minimum=contract.MIN_MAX_ROOMS,
                maximum=contract.MAX_MAX_ROOMS_CRD_LIMIT,
            ),
            "roomCreation": {
                "type": "string",
                "enum": list(contract.ROOM_CREATION_MODES),
                "default": s.DEFAULT_ROOM_CREATION,
            },
        },
        default={},
        rules=[
            _rule(
                "size(self.rooms) <= self.maxRooms",
                "chat.maxRooms must allow every room of chat.rooms",
                fieldPath=".maxRooms",
            ),
            _rule(
                "size(self.rooms) <= self.maxRoomsPerConnection",
                "chat.maxRoomsPerConnection must be >= the number of chat.rooms",
                fieldPath=".maxRoomsPerConnection",
            ),
        ],
    )
    auth = _obj(
        {
            "mode": {"type": "string", "enum": list(s.AUTH_MODES), "default": s.DEFAULT_AUTH_MODE},
            "secretRef": _secret_ref(
                s.DEFAULT_AUTH_SECRET_KEY, "A Secret key holding the JWT signing secret."
            ),
            "allowedOrigins": {
                "type": "array",
                "items": {"type": "string", "pattern": s.ORIGIN_PATTERN},
                "maxItems": 50,
                "x-kubernetes-list-type": "set",
            },
        },
        default={},
        rules=[
            _rule(
                "self.mode != 'jwt' || has(self.secretRef)",
                "auth.mode jwt needs auth.secretRef",
                fieldPath=".secretRef",
            )
        ],
    )
    return _obj(
        {
            "image": {
                "type": "string",
                "description": "The chatserver image; the operator's default when empty.",
            },
            "backend": backend,
            "frontend": frontend,
            "rabbitmq": rabbitmq,
            "chat": chat,
            "auth": auth,
            "networkPolicy": _obj(
                {
                    "egress": {
                        "type": "boolean",
                        "default": True,
                        "description": "Limit each pod's connections to where it must connect"
                        " (and DNS); false leaves egress open (an external broker on a port"
                        " other than 5671/5672, a mesh sidecar).",
                    },
                    "metricsScraper": _obj(
                        {
                            "namespaceLabels": _LABELS,
                            "podLabels": _LABELS,
                        },
                        minProperties=1,
                        description="Pods that may read the backends' /metrics (port 3000):"
                        " those matching podLabels in the namespaces matching namespaceLabels"
                        " (without namespaceLabels: the ChatCluster's namespace).",
                    ),
                },
                default={},
            ),
            "paused": {
                "type": "boolean",
                "default": False,
                "description": "Stop reconciling: the operator writes nothing but this status.",
            },
        },
        default={},
        rules=[
            _rule(
                "quantity(self.rabbitmq.retention.maxBytes).asInteger() >= self.chat.historySize"
                f" * (self.chat.maxMessageBytes + {contract.ROOM_RECORD_OVERHEAD_BYTES})"
                f" + {contract.ROOM_SEGMENT_BYTES}",
                "rabbitmq.retention.maxBytes cannot hold chat.historySize messages of"
                " chat.maxMessageBytes: it needs at least historySize * (maxMessageBytes +"
                f" {contract.ROOM_RECORD_OVERHEAD_BYTES}) + {contract.ROOM_SEGMENT_BYTES} bytes;"
                " raise it, or lower historySize or maxMessageBytes",
                fieldPath=".rabbitmq.retention.maxBytes",
            ),
            *_room_capacity_rules(),
        ],
    )


def _room_capacity_rules() -> list[dict[str, str]]:
    """``chat.maxRooms`` against what one node of the operator's broker holds, every room read
    by the most backends (``broker_capacity``); an external broker is its owner's to size."""
    rooms = "self.chat.maxRooms"
    backends = (
        "(self.backend.autoscaling.enabled ? self.backend.autoscaling.maxReplicas"
        " : self.backend.replicas)"
    )
    memory = "quantity(self.rabbitmq.memory).asInteger()"
    own_broker = "has(self.rabbitmq.external) || "
    cap = broker_capacity
    per_room = (
        "each room is read by every backend (backend.autoscaling.maxReplicas when autoscaling,"
        " else backend.replicas), and a broker node needs for it"
    )
    return [
        _rule(
            own_broker + cap.descriptors_rule(rooms, backends),
            f"chat.maxRooms is more than a broker node's file descriptors hold: {per_room}"
            f" {cap.CENTI_DESCRIPTORS_PER_ROOM / 100:g}"
            f" + {cap.CENTI_DESCRIPTORS_PER_READER / 100:g} x backends descriptors,"
            f" and a node is sized for {cap.DESCRIPTOR_FLOOR}"
            f" (less {cap.DESCRIPTOR_RESERVE} of its own); lower chat.maxRooms or the backends",
            fieldPath=".chat.maxRooms",
        ),
        _rule(
            own_broker + cap.memory_rule(rooms, backends, memory),
            f"rabbitmq.memory cannot hold chat.maxRooms rooms: {per_room}"
            f" {cap.MEMORY_PER_ROOM // 1024} KiB + {cap.MEMORY_PER_READER // 1024} KiB x backends,"
            f" within {cap.MEMORY_HIGH_WATERMARK_PERCENT}% of rabbitmq.memory less"
            f" {cap.MEMORY_RESERVE // 1024**2} MiB; raise rabbitmq.memory, or lower chat.maxRooms"
            " or the backends",
            fieldPath=".rabbitmq.memory",
        ),
    ]


def _with_full_defaults(schema: Schema) -> Schema:
    """Expand every object default (written ``{}`` above) into its properties' defaults.

    The API server checks a default against the object's CEL rules as written, without
    defaulting inside it first, so ``{}`` would fail ``self.minReplicas <= self.maxReplicas``.
    """
    for sub in schema.get("properties", {}).values():
        _with_full_defaults(sub)
    if schema.get("type") == "object" and "default" in schema:
        schema["default"] = {
            name: sub["default"]
            for name, sub in schema.get("properties", {}).items()
            if "default" in sub
        }
    return schema


def _status_schema() -> Schema:
    condition = _obj(
        {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
        required=["type", "status", "lastTransitionTime"],
    )
    counts = {"replicas": {"type": "integer"}, "readyReplicas": {"type": "integer"}}
    return _obj(
        {
            "observedGeneration": {"type": "integer"},
            "phase": {
                "type": "string",
                "enum": ["Pending", "Progressing", "Ready", "Degraded", "Paused"],
            },
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "backend": _obj({**counts, "selector": {"type": "string"}}),
            "frontend": _obj(counts),
            "rabbitmq": _obj(
                {
                    "readyReplicas": {"type": "integer"},
                    "busiestNode": _obj(
                        {
                            "name": {"type": "string"},
                            "fileDescriptors": {"type": "string"},
                            "memoryBytes": {"type": "string"},
                        },
                        description="The broker node nearest a limit, used/limit, as the"
                        " management API reported it at the operator's last visit.",
                    ),
                }
            ),
            "backends": {"type": "string", "description": "Ready/desired backends, e.g. 2/3."},
            "usersOnline": {"type": "integer"},
            "rooms": {
                "type": "string",
                "description": "Rooms on the operator's broker / chat.maxRooms, e.g. 12/1000.",
            },
            "url": {"type": "string"},
        }
    )


def render_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{s.PLURAL}.{s.GROUP}"},
        "spec": {
            "group": s.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": s.KIND,
                "listKind": f"{s.KIND}List",
                "plural": s.PLURAL,
                "singular": s.KIND.lower(),
                "shortNames": ["chat", "cc"],
            },
            "versions": [
                {
                    "name": s.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.backend.replicas",
                            "statusReplicasPath": ".status.backend.replicas",
                            "labelSelectorPath": ".status.backend.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Backends", "type": "string", "jsonPath": ".status.backends"},
                        {"name": "Users", "type": "integer", "jsonPath": ".status.usersOnline"},
                        {"name": "Rooms", "type": "string", "jsonPath": ".status.rooms"},
                        {"name": "URL", "type": "string", "jsonPath": ".status.url", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": _obj(
                            {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": _with_full_defaults(_spec_schema()),
                                "status": _status_schema(),
                            },
                            description="A chat system: frontend, WebSocket backends and RabbitMQ.",
                        )
                    },
                }
            ],
        },
    }
