"""The chatcluster operator: keeps every ChatCluster's children in their desired state.

Layers point one way (import-linter checks them): ``handlers`` (kopf glue) -> ``runtime`` (the
work queue, the one way into a pass, and its retry policy) -> ``reconcile`` (one pass, with
``drift`` deciding what needs an apply) -> ``builders`` (pure desired objects) and ``status``
(pure conditions) -> ``kube`` (the only API client). ``spec`` turns the custom resource into
typed values; ``crd`` renders the CustomResourceDefinition from the same defaults. Of the chat
server, only ``chatserver.contract`` is imported; nothing here talks to the chat servers except
the ``/api/stats`` poll.
"""
