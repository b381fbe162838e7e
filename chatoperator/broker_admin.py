"""Keeping a policy on the operator's own RabbitMQ through its management API (HTTP, port 15672).

The one place the operator talks to the broker. It reads the policy first and writes only when
it differs, so a steady cluster costs the broker one GET per resync.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from chatoperator.builders.broker_policy import BrokerPolicy
from chatoperator.builders.meta import digest
from chatoperator.status.observed import PolicyOutcome

log = logging.getLogger(__name__)

_ERROR_TEXT_CHARS = 200
"""How much of an error answer goes into status: enough for RabbitMQ's reason."""


def ensure_policy(
    policy: BrokerPolicy, *, username: str, password: str, timeout: float
) -> PolicyOutcome:
    """Make the broker hold ``policy``; never raises for anything the broker or network does."""
    body_digest = digest(policy.body)
    url = "/".join(
        (
            policy.management_url,
            "api/policies",
            urllib.parse.quote(policy.vhost, safe=""),
            urllib.parse.quote(policy.name, safe=""),
        )
    )
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(method: str, data: bytes | None = None) -> Any:
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text else None

    try:
        try:
            current = call("GET")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            current = None
        if not _holds(current, policy.body):
            call("PUT", json.dumps(policy.body).encode())
            log.info("policy %s set on %s: %s", policy.name, policy.management_url, policy.body)
    except urllib.error.HTTPError as error:
        answer = error.read(_ERROR_TEXT_CHARS).decode(errors="replace").strip()
        return PolicyOutcome(
            body_digest,
            "Refused",
            f"the broker's management API answered {error.code} {error.reason}: {answer}",
        )
    except (OSError, ValueError) as error:  # URLError and timeouts are OSErrors
        return PolicyOutcome(
            body_digest, "Unreachable", f"no answer from {policy.management_url}: {error}"
        )
    return PolicyOutcome(body_digest, "Applied", "")


def _holds(current: Any, wanted: dict[str, Any]) -> bool:
    return isinstance(current, dict) and all(current.get(k) == v for k, v in wanted.items())
