"""The chatcluster operator: keeps every ChatCluster's children in their desired state.

Layers point one way: ``handlers`` (kopf glue) -> ``reconcile`` (one pass) -> ``builders`` (pure
desired objects) and ``status`` (pure conditions) -> ``kube`` (the only API client). ``spec``
turns the custom resource into typed values; ``crd`` renders the CustomResourceDefinition from
the same defaults. Nothing here talks to the chat servers except the ``/api/stats`` poll.
"""
