"""How API failures become the operator's kinds of error (``kube.py``), without an API server."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from chatoperator.errors import InvalidSpec, NotPermitted, TransientError
from chatoperator.kube import _api_errors


def refusal(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="refused")
    error.body = json.dumps({"message": message})
    return error


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidSpec),
        (422, InvalidSpec),
        (401, NotPermitted),
        (403, NotPermitted),
        (409, TransientError),
        (429, TransientError),
        (503, TransientError),
    ],
)
def test_each_refusal_is_blamed_on_what_can_fix_it(status: int, kind: type[Exception]) -> None:
    with pytest.raises(kind), _api_errors("apply Deployment demo-backend"):
        raise refusal(status, "the API server's words")


def test_a_refusal_carries_the_api_servers_message() -> None:
    words = 'cannot create resource "horizontalpodautoscalers"'
    with pytest.raises(NotPermitted, match=words), _api_errors("apply HorizontalPodAutoscaler x"):
        raise refusal(403, words)
