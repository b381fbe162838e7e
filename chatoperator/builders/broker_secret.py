"""The Secret ``<name>-rabbitmq``: broker credentials, generated once, and the AMQP URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatoperator.builders.meta import RABBITMQ, child_name, digest, metadata
from chatoperator.builders.network import AMQP_PORT
from chatoperator.spec import Cluster, SecretKeyRef

USERNAME_KEY = "username"
PASSWORD_KEY = "password"
COOKIE_KEY = "erlang-cookie"
URL_KEY = "url"


@dataclass(frozen=True)
class BrokerCredentials:
    username: str
    password: str
    erlang_cookie: str

    def __repr__(self) -> str:
        # Credentials never reach a log line, even through an exception's repr.
        return "BrokerCredentials(<redacted>)"


def broker_url_ref(cluster: Cluster) -> SecretKeyRef:
    """Where the backends read ``RABBITMQ_URL``: the external broker's Secret, or ours."""
    external = cluster.spec.rabbitmq.external_url
    return external or SecretKeyRef(name=child_name(cluster, RABBITMQ), key=URL_KEY)


def broker_url_digest(encoded_url: str) -> str:
    """What the backends' config hash holds of the AMQP URL: a digest of the Secret's
    base64 ``data`` value as the API returns it (it stands for the value just as well, and the
    URL itself never enters an object)."""
    return digest(encoded_url)


def build_broker_secret(cluster: Cluster, credentials: BrokerCredentials) -> dict[str, Any]:
    host = f"{child_name(cluster, RABBITMQ)}.{cluster.namespace}.svc"
    url = f"amqp://{credentials.username}:{credentials.password}@{host}:{AMQP_PORT}/%2F"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(cluster, name=child_name(cluster, RABBITMQ), component=RABBITMQ),
        "type": "Opaque",
        "stringData": {
            USERNAME_KEY: credentials.username,
            PASSWORD_KEY: credentials.password,
            COOKIE_KEY: credentials.erlang_cookie,
            URL_KEY: url,
        },
    }
