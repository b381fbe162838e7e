"""Reading ``users_online`` from a ChatCluster's backends (``GET /api/stats``)."""

from __future__ import annotations

import json
import logging
import urllib.request

from chatoperator.builders.meta import BACKEND, child_name
from chatoperator.builders.network import BACKEND_PORT

log = logging.getLogger(__name__)


def stats_url(*, namespace: str, name: str) -> str:
    # Any backend answers for the whole cluster (users_online is cluster-wide), so the Service
    # is enough.
    return f"http://{child_name(name, BACKEND)}.{namespace}.svc:{BACKEND_PORT}/api/stats"


def read_users_online(*, namespace: str, name: str, timeout: float) -> int | None:
    """The cluster's users online, or None when no backend answered in time (value goes stale)."""
    url = stats_url(namespace=namespace, name=name)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            stats = json.load(response)
        return int(stats["users_online"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.debug("no stats from %s: %s", url, error)
        return None
