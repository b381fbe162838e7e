"""What every builder is given: the cluster, plus the facts about the world they depend on."""

from __future__ import annotations

from dataclasses import dataclass

from chatoperator.spec import Cluster


@dataclass(frozen=True)
class BuildInput:
    cluster: Cluster
    broker_url_digest: str
    """A digest of the AMQP URL the backends use (never the URL itself), read by reconcile from
    the broker Secret: new credentials change the backends' config hash and so roll them."""
    operator_namespace: str | None = None
    """Where the operator's own pods run (``POD_NAMESPACE``), so the backends' NetworkPolicy can
    admit them (they read ``/api/stats``); None for an operator outside the cluster."""
