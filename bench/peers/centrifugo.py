"""The peer Centrifugo (v6): where its binary comes from and the config file the bench writes.

The binary is built from the Go module proxy by `hack/centrifugo.sh` into a cache outside the
repository (`~/.cache/chatcluster/centrifugo/<version>/`), once; a cold build takes minutes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Final

BUILD_SCRIPT: Final = Path(__file__).resolve().parents[2] / "hack" / "centrifugo.sh"
HISTORY_SIZE: Final = 100
"""Publications kept per channel: chatserver's default room history, so both pay for one."""
HISTORY_TTL: Final = "300s"
"""How long a channel's history lives after its last publication; well past any run."""


def binary() -> Path:
    """The cached Centrifugo binary, built first when missing (minutes, printed on stderr)."""
    built = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True, timeout=1800
    )
    return Path(built.stdout.splitlines()[-1])


def config(*, port: int, redis_url: str | None, redis_prefix: str) -> dict[str, Any]:
    """One node's config: the memory engine, or with `redis_url` the Redis engine (every node of
    a run on the same Redis and `redis_prefix`, so they form one cluster)."""
    engine: dict[str, Any] = (
        {"type": "memory"}
        if redis_url is None
        else {"type": "redis", "redis": {"address": [redis_url], "prefix": redis_prefix}}
    )
    return {
        # Loopback only, like every process the bench starts.
        "http_server": {"address": "127.0.0.1", "port": port},
        # Warnings and errors only: a log line per connection would cost the measured CPU.
        "log": {"level": "warn"},
        # The load generator's clients hold no JWT, as chatserver's `anonymous` auth mode.
        "client": {"allow_anonymous_connect_without_token": True},
        "channel": {
            "without_namespace": {
                # Clients subscribe and publish themselves, as on the other systems (no backend
                # in the path). Centrifugo grants a permission `_for_client` and extends it to
                # clients without a user (ours: no token) with `_for_anonymous`. Publishing is
                # for subscribers only, as chatserver lets only members send to a room.
                "allow_subscribe_for_client": True,
                "allow_subscribe_for_anonymous": True,
                "allow_publish_for_subscriber": True,
                "allow_publish_for_anonymous": True,
                # A history per channel, as chatserver keeps per room, with recovery forced so
                # every publication carries its offset (the message id in the bench's records).
                "history_size": HISTORY_SIZE,
                "history_ttl": HISTORY_TTL,
                "force_recovery": True,
            }
        },
        "engine": engine,
        # GET /health answers 200 once the node runs: the bench's readiness probe.
        "health": {"enabled": True},
        # Nothing to serve but clients: no server API, no phoning home.
        "http_api": {"disabled": True},
        "usage_stats": {"disabled": True},
    }
