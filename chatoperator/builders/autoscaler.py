"""The HorizontalPodAutoscaler ``<name>-backend``, when ``backend.autoscaling.enabled``."""

from __future__ import annotations

from typing import Any

from chatoperator.builders.meta import BACKEND, child_name, metadata
from chatoperator.spec import Cluster


def build_backend_autoscaler(cluster: Cluster) -> dict[str, Any]:
    autoscaling = cluster.spec.backend.autoscaling
    name = child_name(cluster, BACKEND)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(cluster, name=name, component=BACKEND),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_percent,
                        },
                    },
                }
            ],
        },
    }
