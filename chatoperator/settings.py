"""The operator's own settings, read from the environment in one place (``from_env``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chatoperator.spec import Images

FIELD_MANAGER = "chatcluster-operator"
"""The one server-side-apply field manager every child is applied under."""

HANDOVER_FIELD_MANAGER = "chatcluster-operator-handover"
"""Holds the backend replicas for a moment while the HPA takes them over (see reconcile.py)."""


@dataclass(frozen=True)
class OperatorSettings:
    images: Images
    """Images for pods whose ChatCluster names none: ``CHATCLUSTER_DEFAULT_IMAGE`` and
    ``CHATCLUSTER_RABBITMQ_IMAGE``. The chatserver default is the image ``make images`` builds;
    RabbitMQ 3.13 is the oldest line with stream queues and the ``rabbitmq_stream`` plugin."""

    resync_seconds: float = 30.0
    """Seconds between level-triggered passes over every ChatCluster (children's own events
    trigger passes at once; this catches anything missed and refreshes ``usersOnline``)."""

    stats_timeout_seconds: float = 2.0
    """Seconds to wait for a backend's /api/stats; past it, ``usersOnline`` simply stays stale."""

    retry_delay_seconds: float = 2.0
    """Seconds before a pass that met a transient API error runs again; doubled on every
    further failure in a row, up to ``max_retry_delay_seconds``."""

    max_retry_delay_seconds: float = 300.0
    """The longest wait between retries, so a long outage still ends in a pass soon after."""

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff: the delay after ``attempt`` failures in a row (0-based)."""
        return float(min(self.retry_delay_seconds * 2**attempt, self.max_retry_delay_seconds))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if env is None else env
        return cls(
            images=Images(
                chatserver=env.get("CHATCLUSTER_DEFAULT_IMAGE", "chatcluster/chatserver:0.1.0"),
                rabbitmq=env.get("CHATCLUSTER_RABBITMQ_IMAGE", "rabbitmq:3.13-management"),
            ),
            resync_seconds=float(env.get("CHATCLUSTER_RESYNC_SECONDS", cls.resync_seconds)),
            stats_timeout_seconds=float(
                env.get("CHATCLUSTER_STATS_TIMEOUT_SECONDS", cls.stats_timeout_seconds)
            ),
            retry_delay_seconds=float(
                env.get("CHATCLUSTER_RETRY_DELAY_SECONDS", cls.retry_delay_seconds)
            ),
        )
