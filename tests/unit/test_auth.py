from __future__ import annotations

import pytest

from chatserver.auth import open_identity, origin_allowed

ALLOWED = frozenset({"https://chat.example.com"})


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "localhost:8080", True),
        ("http://localhost:8080", "localhost:8080", True),
        ("https://chat.internal", "chat.internal", True),  # TLS ended at the ingress
        ("http://chat.internal:80", "chat.internal", True),
        ("https://chat.example.com", "backend:3000", True),
        ("HTTPS://CHAT.EXAMPLE.COM", "backend:3000", True),
        ("http://localhost:8081", "localhost:8080", False),
        ("https://evil.example.net", "localhost:8080", False),
        ("null", "localhost:8080", False),
        ("file://", "localhost:8080", False),
        ("http://[::1]:8080", "[::1]:8080", True),
    ],
)
def test_origin_check(origin: str | None, host: str, allowed: bool) -> None:
    assert origin_allowed(origin, host=host, allowed=ALLOWED) is allowed


def test_identity_from_the_query() -> None:
    identity = open_identity({"name": "  Ada\x00 Lovelace ", "client": "tab-42"})
    assert (identity.user, identity.name, identity.client) == (
        "Ada Lovelace",
        "Ada Lovelace",
        "tab-42",
    )


def test_missing_or_unusable_values_get_safe_defaults() -> None:
    identity = open_identity({"name": "\x07", "client": "x" * 500})
    assert identity.name.startswith("guest-")
    assert len(identity.client) == 16
    assert open_identity({}).client != open_identity({}).client


def test_names_are_capped() -> None:
    assert len(open_identity({"name": "n" * 1000}).name) == 64
