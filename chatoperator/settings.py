"""The operator's own settings, read from the environment in one place (``from_env``)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from chatoperator.spec import Images

T = TypeVar("T")

DEFAULT_CHATSERVER_IMAGE = "chatcluster/chatserver:0.1.0"
"""The image ``make images`` builds."""
DEFAULT_RABBITMQ_IMAGE = "rabbitmq:3.13-management"

FIELD_MANAGER = "chatcluster-operator"
"""The one server-side-apply field manager every child is applied under."""

HANDOVER_FIELD_MANAGER = "chatcluster-operator-handover"
"""Holds the backend replicas for a moment while the HPA takes them over (see reconcile.py)."""


@dataclass(frozen=True)
class OperatorSettings:
    images: Images
    """Images for pods whose ChatCluster names none: ``CHATCLUSTER_DEFAULT_IMAGE`` and
    ``CHATCLUSTER_RABBITMQ_IMAGE``. The chatserver default is the image ``make images`` builds.
    Any RabbitMQ with stream queues will do: they exist since 3.9, and the tests run the chat
    server against 3.10 (Debian bookworm's package)."""

    namespace: str | None = None
    """The namespace of the operator's own pod (``POD_NAMESPACE``, from the downward API); None
    when it runs outside the cluster."""
    resync_seconds: float = 30.0
    """Seconds between level-triggered passes over every ChatCluster (children's own events
    trigger passes at once; this catches anything missed and refreshes ``usersOnline``)."""

    stats_timeout_seconds: float = 2.0
    """Seconds to wait for a backend's /api/stats (past it, ``usersOnline`` simply stays stale)
    and for each answer of the broker's management API."""

    retry_delay_seconds: float = 2.0
    """Seconds before a pass that met a transient API error runs again; doubled on every
    further failure in a row, up to ``max_retry_delay_seconds``."""

    max_retry_delay_seconds: float = 300.0
    """The longest wait between retries, so a long outage still ends in a pass soon after."""

    allowed_images: tuple[str, ...] = ()
    """Image patterns (``fnmatch``) a ChatCluster's ``image`` and ``rabbitmq.image`` must match
    (``CHATCLUSTER_ALLOWED_IMAGES``, comma-separated); none: any image. The default images are
    always allowed."""

    secret_label: str | None = None
    """A label a Secret must carry as ``<label>=true`` for a ChatCluster to name it
    (``CHATCLUSTER_SECRET_LABEL``); None: any Secret of the ChatCluster's namespace."""

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff: the delay after ``attempt`` failures in a row (0-based)."""
        return float(min(self.retry_delay_seconds * 2**attempt, self.max_retry_delay_seconds))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        """Read the environment (``os.environ`` by default); raises SettingsError naming the
        variable whose value cannot be used."""
        env = os.environ if env is None else env
        return cls(
            images=Images(
                chatserver=_read(
                    env, "CHATCLUSTER_DEFAULT_IMAGE", _image, DEFAULT_CHATSERVER_IMAGE
                ),
                rabbitmq=_read(env, "CHATCLUSTER_RABBITMQ_IMAGE", _image, DEFAULT_RABBITMQ_IMAGE),
            ),
            namespace=env.get("POD_NAMESPACE", "").strip() or None,
            resync_seconds=_read(
                env, "CHATCLUSTER_RESYNC_SECONDS", _positive_seconds, cls.resync_seconds
            ),
            stats_timeout_seconds=_read(
                env,
                "CHATCLUSTER_STATS_TIMEOUT_SECONDS",
                _positive_seconds,
                cls.stats_timeout_seconds,
            ),
            retry_delay_seconds=_read(
                env, "CHATCLUSTER_RETRY_DELAY_SECONDS", _positive_seconds, cls.retry_delay_seconds
            ),
            allowed_images=_read(env, "CHATCLUSTER_ALLOWED_IMAGES", _patterns, ()),
            secret_label=env.get("CHATCLUSTER_SECRET_LABEL", "").strip() or None,
        )


class SettingsError(ValueError):
    """An environment variable has a value the operator cannot use."""


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from exc


def _positive_seconds(raw: str) -> float:
    value = float(raw)
    if not 0 < value < math.inf:
        raise ValueError("must be a number of seconds > 0")
    return value


def _patterns(raw: str) -> tuple[str, ...]:
    patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
    for pattern in patterns:
        _image(pattern)
    return patterns


def _image(raw: str) -> str:
    if any(c.isspace() for c in raw):
        raise ValueError("an image reference has no spaces")
    return raw
