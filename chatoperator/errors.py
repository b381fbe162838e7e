"""The kinds of failure a reconcile pass can meet, so the runtime knows whether to retry.

- ``InvalidSpec``: the ChatCluster asks for something that cannot be built, or the API server
  refused an object built from it (HTTP 400/422). The user's to fix: reported in status and
  events, not retried until the next change (or resync).
- ``NotPermitted``: the API server says the operator may not do this (HTTP 401/403). The
  installation's to fix (its RBAC), not the user's: reported in status and events, and retried
  with a growing delay, since granting the permission changes nothing the operator watches.
- ``BrokerCredentialsLost``: the broker Secret is gone while a broker that uses its credentials
  (or the data that holds them) is still there. A human's to resolve, since new credentials would
  lock every backend out: reported, never fixed by generating new ones.
- ``TransientError``: the API was briefly unavailable, throttled or in conflict; retried with a
  growing delay.
"""


class InvalidSpec(Exception):
    """The ChatCluster asks for something the operator cannot build, or the API refused it.

    Raised for states the CRD schema cannot reject (a referenced Secret without the key, for
    instance) and for the API server's own refusals of an object. Reported in status and as a
    Warning event; the next spec change retries.
    """


class NotPermitted(Exception):
    """The operator's credentials do not allow a request (a gap in its RBAC, not a bad spec)."""


class BrokerCredentialsLost(Exception):
    """The operator's broker Secret was deleted, but the broker still knows the old credentials."""


class TransientError(Exception):
    """The API was briefly unavailable or in conflict; the pass retries with a growing delay."""
