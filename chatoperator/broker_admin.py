"""Visiting the operator's own RabbitMQ through its management API (HTTP, port 15672): keep the
room policy and the queue limit in place, reclaim idle rooms, and read which nodes form the
cluster and which rooms exist.

The one place the operator talks to the broker. It reads what it keeps first and writes only
when it differs, so a steady cluster costs the broker four GETs per resync.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from typing import Any

from chatoperator.builders.broker_capacity import NodeLimits
from chatoperator.builders.broker_policy import BrokerPolicy, queue_limit, settings_digest
from chatoperator.status.observed import BrokerHeadroom, BrokerVisit

log = logging.getLogger(__name__)

_MAX_QUEUES = "max-queues"
_ERROR_TEXT_CHARS = 200
"""How much of an error answer goes into status: enough for RabbitMQ's reason."""


def visit_broker(
    policy: BrokerPolicy,
    *,
    username: str,
    password: str,
    timeout: float,
    reclaim: Collection[str] = (),
) -> BrokerVisit:
    """Make the broker hold ``policy``, delete the room streams of ``reclaim`` that are still
    unused, and report what it saw; never raises for anything the broker or the network does."""
    body_digest = settings_digest(policy)
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(method: str, *path: str, data: bytes | None = None, query: str = "") -> Any:
        quoted = (urllib.parse.quote(part, safe="") for part in path)
        url = "/".join((policy.management_url, "api", *quoted)) + query
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text else None

    try:
        nodes = call("GET", "nodes")
        try:
            current = call("GET", "policies", policy.vhost, policy.name)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            current = None
        if not _holds(current, policy.body):
            body = json.dumps(policy.body).encode()
            call("PUT", "policies", policy.vhost, policy.name, data=body)
            log.info("policy %s set on %s: %s", policy.name, policy.management_url, policy.body)
        allowed, max_queues = queue_limit(policy, _smallest_limits(nodes))
        limits = call("GET", "vhost-limits", policy.vhost)
        if not limits or limits[0]["value"].get(_MAX_QUEUES) != max_queues:
            body = json.dumps({"value": max_queues}).encode()
            call("PUT", "vhost-limits", policy.vhost, _MAX_QUEUES, data=body)
            log.info("max-queues %d set on %s", max_queues, policy.management_url)
        streams = _room_streams(call, policy)
        unused = {name for name, consumers in streams.items() if consumers == 0}
        # Listed just now, so a room joined since the visit that found it idle is spared; one
        # joined in the milliseconds before the delete loses its history (RabbitMQ's
        # if-unused does not guard streams), and its backends resume it under a new epoch.
        reclaimed = tuple(n for n in reclaim if n in unused and n not in policy.kept_streams)
        for name in reclaimed:
            try:
                call("DELETE", "queues", policy.vhost, name)
            except urllib.error.HTTPError as error:
                if error.code != 404:
                    raise
            log.info("room stream %s reclaimed: unused for %d s", name, policy.idle_room_seconds)
        running = tuple(sorted(str(node["name"]) for node in nodes if node.get("running")))
        room_count = len(streams) - len(reclaimed)
        still_unused = tuple(sorted(unused - set(reclaimed) - policy.kept_streams))
        alarms = tuple(
            f"{kind} on {node['name']}"
            for node in nodes
            for kind, field in (("memory", "mem_alarm"), ("disk", "disk_free_alarm"))
            if node.get(field)
        )
        headroom = _busiest(nodes)
    except urllib.error.HTTPError as error:
        answer = error.read(_ERROR_TEXT_CHARS).decode(errors="replace").strip()
        return BrokerVisit(
            body_digest,
            "Refused",
            f"the broker's management API answered {error.code} {error.reason}: {answer}",
        )
    except OSError as error:  # URLError and timeouts are OSErrors
        return BrokerVisit(
            body_digest, "Unreachable", f"no answer from {policy.management_url}: {error}"
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return BrokerVisit(
            body_digest, "Refused", f"unexpected answer from {policy.management_url}: {error!r}"
        )
    return BrokerVisit(
        body_digest,
        "Applied",
        "",
        running_nodes=running,
        rooms=room_count,
        allowed_rooms=allowed,
        alarms=alarms,
        headroom=headroom,
        unused_rooms=still_unused,
        reclaimed=reclaimed,
    )


def _smallest_limits(nodes: list[dict[str, Any]]) -> NodeLimits | None:
    """The least descriptors and memory a node may use, over the nodes that report them (a
    node does a few seconds after it starts); None while none does."""
    reported = [
        n for n in nodes if all(isinstance(n.get(f), int) for f in ("fd_total", "mem_limit"))
    ]
    if not reported:
        return None
    return NodeLimits(
        descriptors=min(int(n["fd_total"]) for n in reported),
        memory_bytes=min(int(n["mem_limit"]) for n in reported),
    )


def _busiest(nodes: list[dict[str, Any]]) -> BrokerHeadroom | None:
    """The node nearest a limit, by the larger of its descriptor and memory shares. A node
    reports its figures a few seconds after it starts: until then it is left out."""
    fields = ("fd_used", "fd_total", "mem_used", "mem_limit")
    reported = [
        BrokerHeadroom(str(n["name"]), *(int(n[f]) for f in fields))
        for n in nodes
        if n.get("running") and all(isinstance(n.get(f), int) and n[f] >= 0 for f in fields)
    ]
    if not reported:
        return None
    return max(
        reported,
        key=lambda h: max(
            h.file_descriptors_used / max(h.file_descriptors_limit, 1),
            h.memory_used_bytes / max(h.memory_limit_bytes, 1),
        ),
    )


_PAGE_SIZE = 500
"""The management API's largest page."""


def _room_streams(call: Callable[..., Any], policy: BrokerPolicy) -> dict[str, int]:
    """Every room stream of the cluster (the policy's pattern), with its consumer count."""
    streams: dict[str, int] = {}
    most_pages = queue_limit(policy, None)[1] // _PAGE_SIZE + 2  # the limit bounds the list
    for page in range(1, most_pages + 1):
        fields = {
            "page": page,
            "page_size": _PAGE_SIZE,
            "columns": "name,consumers",
            "name": policy.body["pattern"],
            "use_regex": "true",
        }
        answer = call("GET", "queues", policy.vhost, query="?" + urllib.parse.urlencode(fields))
        streams.update((str(q["name"]), int(q.get("consumers") or 0)) for q in answer["items"])
        if page >= int(answer["page_count"]):
            break
    return streams


def _holds(current: Any, wanted: dict[str, Any]) -> bool:
    return isinstance(current, dict) and all(current.get(k) == v for k, v in wanted.items())
