"""The two kinds of failure a reconcile pass can meet, so handlers know whether to retry."""


class InvalidSpec(Exception):
    """The ChatCluster asks for something the operator cannot build; retrying will not help.

    Raised for states the CRD schema cannot reject (a referenced Secret without the key, for
    instance). Reported in status and as a Warning event; the next spec change retries.
    """


class TransientError(Exception):
    """The API was briefly unavailable or in conflict; the pass retries with a growing delay."""
