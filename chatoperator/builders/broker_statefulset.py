"""The StatefulSet ``<name>-rabbitmq``: the operator's own broker, when no external one is set."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.broker_config import (
    ENABLED_PLUGINS,
    advanced_config,
    headless_service_name,
    node_settings,
)
from chatoperator.builders.broker_secret import (
    BACKEND_PASSWORD_KEY,
    BACKEND_USERNAME_KEY,
    COOKIE_KEY,
    PASSWORD_KEY,
    USERNAME_KEY,
)
from chatoperator.builders.broker_users import UserFiles, write_users_script
from chatoperator.builders.meta import (
    CONFIG_HASH_ANNOTATION,
    RABBITMQ,
    child_name,
    container_resources,
    container_security_context,
    digest,
    empty_dir,
    labels,
    metadata,
    pod_security_context,
    prefer_other_nodes,
    selector_labels,
    spread_across_nodes,
)
from chatoperator.builders.network import (
    AMQP_PORT,
    DISTRIBUTION_PORT,
    EPMD_PORT,
    MANAGEMENT_PORT,
    PROMETHEUS_PORT,
    STREAM_PORT,
)
from chatoperator.spec import Cluster

RABBITMQ_UID = 10002
"""The ``rabbitmq`` user (and group) of chatcluster/rabbitmq, which hack/images.sh renumbers to
it: at 10000 or above, clear of the host's accounts, and next to the chat server's 10001. The
pod runs as this uid whatever the image's own user (the official image's is 999): ``fsGroup``
gives it the data volume, and the image must not need files only its own user may read."""

DATA_DIR = "/var/lib/rabbitmq"
COOKIE_MOUNT = "/etc/rabbitmq-cookie"


def broker_resources(memory: str) -> dict[str, dict[str, str]]:
    """Memory request equals the limit: a broker evicted or OOM-killed under node pressure
    loses its queues' leadership, so it gets the Guaranteed memory class."""
    return {
        "requests": {"cpu": "200m", "memory": memory},
        "limits": {"cpu": "1", "memory": memory},
    }


USER_FILES = UserFiles(credentials="/etc/rabbitmq-credentials", directory="/etc/rabbitmq-users")
"""The init container reads the Secret's files and writes the users' definitions and the config
line that loads them (``RABBITMQ_CONFIG_FILES``) onto a memory volume only this pod's user can
read: the credentials stay out of every container's environment."""

# Erlang refuses a cookie file others can read, and a Secret volume cannot be owned by the
# rabbitmq user, so the init container copies it into the data volume with mode 0600. Removed
# first: a volume written under an earlier uid (999) holds a cookie this user could overwrite
# (fsGroup makes it group-writable) but not chmod.
_COPY_COOKIE = (
    f"rm -f {DATA_DIR}/.erlang.cookie"
    f" && cp {COOKIE_MOUNT}/.erlang.cookie {DATA_DIR}/.erlang.cookie"
    f" && chmod 600 {DATA_DIR}/.erlang.cookie"
)


def prepare_script(cluster: Cluster) -> str:
    return f"set -eu\n{_COPY_COOKIE}\n{write_users_script(cluster, USER_FILES)}"


DATA_VOLUME = "data"


def broker_claim_name(cluster: Cluster, ordinal: int) -> str:
    """The PersistentVolumeClaim the StatefulSet makes for pod ``ordinal`` (it outlives both)."""
    return f"{DATA_VOLUME}-{child_name(cluster, RABBITMQ)}-{ordinal}"


def build_broker_statefulset(cluster: Cluster) -> dict[str, Any]:
    broker = cluster.spec.rabbitmq
    name = child_name(cluster, RABBITMQ)
    headless = headless_service_name(cluster)
    config_hash = digest(
        {
            "conf": node_settings(cluster),
            "advanced": advanced_config(),
            "plugins": ENABLED_PLUGINS,
        }
    )
    data_volume: list[dict[str, Any]] = []
    claim_templates: list[dict[str, Any]] = []
    if broker.storage is None:
        data_volume = [empty_dir(DATA_VOLUME, broker.ephemeral_storage)]
    else:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": broker.storage.size}},
        }
        if broker.storage.storage_class_name:
            claim_spec["storageClassName"] = broker.storage.storage_class_name
        claim_templates = [
            {
                "metadata": {"name": DATA_VOLUME, "labels": labels(cluster, RABBITMQ)},
                "spec": claim_spec,
            }
        ]
    volume_mounts = [
        {"name": DATA_VOLUME, "mountPath": DATA_DIR},
        {"name": "users", "mountPath": USER_FILES.directory, "readOnly": True},
        {"name": "config", "mountPath": "/etc/rabbitmq", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    spec: dict[str, Any] = {
        "replicas": broker.replicas,
        "serviceName": headless,
        # Nodes wait for each other at boot; starting them one by one would deadlock a restart
        # of the whole cluster.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": selector_labels(cluster, RABBITMQ)},
        "template": {
            "metadata": {
                "labels": labels(cluster, RABBITMQ),
                "annotations": {CONFIG_HASH_ANNOTATION: config_hash},
            },
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(RABBITMQ_UID),
                "terminationGracePeriodSeconds": 60,
                "topologySpreadConstraints": spread_across_nodes(cluster, RABBITMQ),
                "affinity": prefer_other_nodes(cluster, RABBITMQ),
                "initContainers": [
                    {
                        "name": "prepare",
                        "image": broker.image,
                        "command": ["sh", "-c", prepare_script(cluster)],
                        "securityContext": container_security_context(),
                        "resources": container_resources(
                            {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"cpu": "100m", "memory": "32Mi"},
                            },
                            broker.ephemeral_storage,
                        ),
                        "volumeMounts": [
                            {"name": DATA_VOLUME, "mountPath": DATA_DIR},
                            {"name": "erlang-cookie", "mountPath": COOKIE_MOUNT, "readOnly": True},
                            {
                                "name": "credentials",
                                "mountPath": USER_FILES.credentials,
                                "readOnly": True,
                            },
                            {"name": "users", "mountPath": USER_FILES.directory},
                        ],
                    }
                ],
                "containers": [
                    {
                        "name": "rabbitmq",
                        "image": broker.image,
                        "env": [
                            {
                                "name": "MY_POD_NAME",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            },
                            {"name": "RABBITMQ_USE_LONGNAME", "value": "true"},
                            {
                                "name": "RABBITMQ_NODENAME",
                                "value": f"rabbit@$(MY_POD_NAME).{headless}.{cluster.namespace}",
                            },
                            {"name": "RABBITMQ_CONFIG_FILES", "value": USER_FILES.config_files},
                        ],
                        "ports": [
                            {"name": "amqp", "containerPort": AMQP_PORT, "protocol": "TCP"},
                            {"name": "stream", "containerPort": STREAM_PORT, "protocol": "TCP"},
                            {
                                "name": "management",
                                "containerPort": MANAGEMENT_PORT,
                                "protocol": "TCP",
                            },
                            {
                                "name": "prometheus",
                                "containerPort": PROMETHEUS_PORT,
                                "protocol": "TCP",
                            },
                            {"name": "epmd", "containerPort": EPMD_PORT, "protocol": "TCP"},
                            {
                                "name": "cluster-links",
                                "containerPort": DISTRIBUTION_PORT,
                                "protocol": "TCP",
                            },
                        ],
                        "readinessProbe": {
                            "tcpSocket": {"port": "amqp"},
                            "initialDelaySeconds": 10,
                            "periodSeconds": 10,
                            "failureThreshold": 3,
                        },
                        # Generous: a node syncing queues at boot is slow, and a restart then
                        # only makes it slower.
                        "livenessProbe": {
                            "tcpSocket": {"port": "epmd"},
                            "initialDelaySeconds": 60,
                            "periodSeconds": 20,
                            "failureThreshold": 6,
                        },
                        "resources": container_resources(
                            broker_resources(broker.memory), broker.ephemeral_storage
                        ),
                        "securityContext": container_security_context(),
                        # A node that fails at boot leaves its last log lines as the reason,
                        # which BrokerReady then shows.
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "volumeMounts": volume_mounts,
                    }
                ],
                "volumes": [
                    *data_volume,
                    {"name": "config", "configMap": {"name": name}},
                    {
                        "name": "erlang-cookie",
                        "secret": {
                            "secretName": name,
                            "items": [{"key": COOKIE_KEY, "path": ".erlang.cookie"}],
                        },
                    },
                    {
                        "name": "credentials",
                        "secret": {
                            "secretName": name,
                            "items": [
                                {"key": key, "path": key}
                                for key in (
                                    USERNAME_KEY,
                                    PASSWORD_KEY,
                                    BACKEND_USERNAME_KEY,
                                    BACKEND_PASSWORD_KEY,
                                )
                            ],
                            "defaultMode": 0o440,
                            # A Secret made before the backend user has no such keys: mounted
                            # without them, the script then defines the administrator only.
                            "optional": True,
                        },
                    },
                    # A few bytes, in memory: the credentials never reach the node's disk.
                    {"name": "users", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                    empty_dir("tmp", broker.ephemeral_storage),
                ],
            },
        },
    }
    if claim_templates:
        spec["volumeClaimTemplates"] = claim_templates
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(cluster, name=name, component=RABBITMQ),
        "spec": spec,
    }
