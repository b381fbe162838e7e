"""The Secret ``<name>-rabbitmq``: broker credentials, generated once, and the backends' AMQP
URL. Two users: the administrator (the operator's, for the management API) and the backends'
own, whose permissions reach only the chat's resources (``broker_users``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chatoperator.builders.meta import RABBITMQ, child_name, digest, metadata
from chatoperator.builders.network import AMQP_PORT
from chatoperator.spec import Cluster, SecretKeyRef

USERNAME_KEY = "username"
PASSWORD_KEY = "password"
COOKIE_KEY = "erlang-cookie"
BACKEND_USERNAME_KEY = "backend-username"
BACKEND_PASSWORD_KEY = "backend-password"
URL_KEY = "url"
"""The backends' AMQP URL, as the backend user (in a Secret made before that user existed, the
administrator's: such a broker has no backend user)."""

VHOST = "/"
"""The operator's broker has one virtual host, the default."""


@dataclass(frozen=True)
class BrokerCredentials:
    username: str
    password: str
    backend_username: str
    backend_password: str
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
    url = (
        f"amqp://{credentials.backend_username}:{credentials.backend_password}"
        f"@{host}:{AMQP_PORT}/{quote(VHOST, safe='')}"
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(cluster, name=child_name(cluster, RABBITMQ), component=RABBITMQ),
        "type": "Opaque",
        "stringData": {
            USERNAME_KEY: credentials.username,
            PASSWORD_KEY: credentials.password,
            BACKEND_USERNAME_KEY: credentials.backend_username,
            BACKEND_PASSWORD_KEY: credentials.backend_password,
            COOKIE_KEY: credentials.erlang_cookie,
            URL_KEY: url,
        },
    }
