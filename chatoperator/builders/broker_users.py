"""Who may use the operator's broker: the operator, as its administrator, and the backends, as a
user with no tags whose permissions reach only the chat's own exchanges and streams.

The users reach RabbitMQ as a definitions file the broker imports at every boot
(``load_definitions``): they exist before the first client connects, on every node, and again
after a node on an emptyDir restarts blank, without the operator having to visit it first.
The init container writes the file from the Secret's files onto a memory volume, so the
passwords stay out of the pod spec and every container's environment."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from chatoperator.builders.broker_secret import (
    BACKEND_PASSWORD_KEY,
    BACKEND_USERNAME_KEY,
    PASSWORD_KEY,
    USERNAME_KEY,
    VHOST,
)
from chatoperator.builders.meta import chat_cluster_name
from chatoperator.spec import Cluster

SERVER_NAMED_QUEUES = r"amq\.gen-.*"
"""The exclusive queue each backend declares without a name, for presence and typing."""


def backend_permissions(cluster: Cluster) -> str:
    """The backend user's configure, write and read pattern: every exchange and stream of this
    ChatCluster (``chat.<namespace>.<name>.``) and the queues RabbitMQ names for it; another
    cluster's rooms on the same broker are refused (ACCESS_REFUSED)."""
    own = re.escape(f"chat.{chat_cluster_name(cluster)}.") + ".*"
    return f"^({own}|{SERVER_NAMED_QUEUES})$"


@dataclass(frozen=True)
class UserFiles:
    """Where the init container finds the Secret's files and writes what RabbitMQ reads."""

    credentials: str
    """The Secret's keys, one file each."""
    directory: str
    """A directory of the broker's own: the definitions, and beside them the config directory."""

    @property
    def config_files(self) -> str:
        """``RABBITMQ_CONFIG_FILES``: RabbitMQ parses every file in it as rabbitmq.conf, so the
        definitions (JSON) stay out of it."""
        return f"{self.directory}/conf.d"

    @property
    def definitions(self) -> str:
        return f"{self.directory}/definitions.json"


def write_users_script(cluster: Cluster, files: UserFiles) -> str:
    """A POSIX shell script (run with ``set -eu``) that writes the definitions file and the
    config line that loads it.

    A Secret made before the backend user existed has no such keys (its volume marks them
    optional): then only the administrator is defined, and the backends, whose URL in that
    Secret names the administrator, keep working. Credentials are escaped for JSON (``\\`` and
    ``"``); a newline in one makes the file invalid, and the broker then refuses to boot."""
    creds = files.credentials
    admin_grant = json.dumps(".*")
    backend_grant = json.dumps(backend_permissions(cluster))
    return "\n".join(
        [
            "umask 077",
            f"for key in {USERNAME_KEY} {PASSWORD_KEY}; do",
            f'  [ -s "{creds}/$key" ] || {{ echo "the broker Secret has no $key" >&2; exit 1; }}',
            "done",
            """json() { sed 's/[\\\\"]/\\\\&/g' "$1"; }""",
            """user() { printf '{"name":"%s","password":"%s","tags":"%s"}' """
            """"$(json "$1")" "$(json "$2")" "$3"; }""",
            """grant() { printf '{"user":"%s","vhost":"%s","configure":%s,"write":%s,"read":%s}' """
            f""""$(json "$1")" {shlex.quote(VHOST)} "$2" "$2" "$2"; }}""",
            f"users=$(user {creds}/{USERNAME_KEY} {creds}/{PASSWORD_KEY} administrator)",
            f"grants=$(grant {creds}/{USERNAME_KEY} {shlex.quote(admin_grant)})",
            f"if [ -s {creds}/{BACKEND_USERNAME_KEY} ]; then",
            f'  users="$users,$(user {creds}/{BACKEND_USERNAME_KEY}'
            f" {creds}/{BACKEND_PASSWORD_KEY} '')\"",
            f'  grants="$grants,$(grant {creds}/{BACKEND_USERNAME_KEY}'
            f' {shlex.quote(backend_grant)})"',
            "fi",
            """printf '{"users":[%s],"vhosts":[{"name":"%s"}],"permissions":[%s]}\\n' """
            f""""$users" {shlex.quote(VHOST)} "$grants" > {files.definitions}""",
            f"mkdir -p {files.config_files}",
            f"printf 'load_definitions = %s\\n' {files.definitions}"
            f" > {files.config_files}/10-definitions.conf",
        ]
    )
