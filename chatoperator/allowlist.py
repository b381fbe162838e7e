"""What a ChatCluster may name, as the operator's installer allows it: images and Secrets.

Whoever may create a ChatCluster runs the images it names and has the Secrets it names mounted
into pods running them (deploy/README.md, "What creating a ChatCluster grants"). The installer
can narrow both: ``CHATCLUSTER_ALLOWED_IMAGES`` (image patterns) and ``CHATCLUSTER_SECRET_LABEL``
(a label a Secret must carry, as ``<label>=true``, to be named). A ChatCluster that names
anything else is refused as an invalid spec, with the rule it broke. Pure: the Secrets' labels
are read by the caller.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from chatoperator.spec import Cluster, Images

SECRET_LABEL_VALUE = "true"


def refused_images(cluster: Cluster, patterns: tuple[str, ...], defaults: Images) -> list[str]:
    """The images the cluster names that no pattern allows (none when there is no pattern).
    The operator's own defaults are always allowed: a ChatCluster that names no image gets them."""
    if not patterns:
        return []
    named = (cluster.spec.image, cluster.spec.rabbitmq.image)
    return [
        image
        for image in dict.fromkeys(named)
        if image not in (defaults.chatserver, defaults.rabbitmq)
        and not any(fnmatch.fnmatchcase(image, pattern) for pattern in patterns)
    ]


def named_secrets(cluster: Cluster) -> list[str]:
    """The Secrets the cluster names (its own broker Secret is the operator's, not named)."""
    refs = (cluster.spec.auth.secret, cluster.spec.rabbitmq.external_url)
    return list(dict.fromkeys(ref.name for ref in refs if ref is not None))


def labelled(secret: Mapping[str, object] | None, label: str) -> bool:
    """Whether a Secret, as the API returns it, carries ``<label>=true``."""
    metadata = (secret or {}).get("metadata") or {}
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return isinstance(labels, Mapping) and labels.get(label) == SECRET_LABEL_VALUE
