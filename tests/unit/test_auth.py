from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chatserver.access import Access, Identity
from chatserver.auth import (
    NameRefused,
    TokenRefused,
    TokenVerifier,
    open_identity,
    origin_allowed,
    refreshed_identity,
    token_identity,
)
from chatserver.settings import AuthSettings, SettingsError, auth_settings_from_env

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
    identity = open_identity({"client": "x" * 500})
    assert identity.name.startswith("guest-")
    assert len(identity.client) == 16
    assert open_identity({}).client != open_identity({}).client


def test_a_name_with_nothing_visible_is_refused() -> None:
    with pytest.raises(NameRefused):
        open_identity({"name": "\x07\u200b\u202e"})


def test_names_are_capped() -> None:
    assert len(open_identity({"name": "n" * 1000}).name) == 64


# Token mode.

SECRET = "s" * 32


def hs_verifier(*, leeway: float = 0.0) -> TokenVerifier:
    verifier = TokenVerifier.from_settings(
        AuthSettings(mode="jwt", secret=SECRET, leeway_seconds=leeway)
    )
    assert verifier is not None
    return verifier


def claims(**overrides: Any) -> dict[str, Any]:
    """Default claims with `overrides` (None removes one); `exp` and `nbf` are given in seconds
    from now, so a test means the same whenever it runs."""
    base: dict[str, Any] = {"sub": "u-1", "aud": "chatcluster", "exp": 60}
    base.update(overrides)
    now = time.time()
    return {k: now + v if k in ("exp", "nbf") else v for k, v in base.items() if v is not None}


def hs_token(secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRefused) as refused:
        verifier.verify(token)
    return str(refused.value)


def test_a_good_token_grants_its_claims() -> None:
    before = time.time()
    grant = hs_verifier(leeway=5).verify(
        hs_token(name="Ada", rooms=["general", "team-*"], post=["team-*"], create=["team-*"])
    )
    assert (grant.user, grant.name) == ("u-1", "Ada")
    assert grant.access == Access(join=("general", "team-*"), post=("team-*",), create=("team-*",))
    assert before + 65 <= grant.expires_at <= time.time() + 65


def test_absent_claims_mean_all_rooms_and_the_sub_as_name() -> None:
    grant = hs_verifier().verify(hs_token())
    assert (grant.name, grant.access) == ("u-1", Access(join=None, post=None))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -30}, "expired"),
        ({"nbf": 30}, "not valid yet"),
        ({"aud": "other"}, "audience"),
        ({"aud": None}, "aud"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
        ({"sub": "a\nb"}, "sub"),
        ({"name": 7}, "name"),
        ({"rooms": ["Bad Room"]}, "rooms"),
        ({"post": "general"}, "post"),
        ({"create": True}, "create"),
    ],
)
def test_bad_claims_are_refused(overrides: dict[str, Any], reason: str) -> None:
    assert reason in refusal(hs_verifier(), hs_token(**overrides))


def test_the_leeway_tolerates_a_little_clock_skew() -> None:
    hs_verifier(leeway=5).verify(hs_token(exp=-2, nbf=2))


def test_a_wrong_signature_is_refused() -> None:
    assert "Signature" in refusal(hs_verifier(), hs_token(secret="t" * 32))


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert "alg" in refusal(hs_verifier(), unsigned)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_an_hs_token_keyed_with_the_public_key_is_refused_by_a_public_key_server() -> None:
    """The classic key confusion: the attacker knows the public key and uses it as an HMAC
    secret. The server pins RS* to its RSA key, so the token's `alg` is never trusted."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = _public_pem(private)
    head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    body = _b64(orjson.dumps(claims()))
    signature = hmac.new(pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{head}.{body}.{_b64(signature)}"
    verifier = TokenVerifier.from_settings(AuthSettings(mode="jwt", public_key=pem))
    assert verifier is not None
    assert "alg" in refusal(verifier, forged)
    verifier.verify(jwt.encode(claims(), private, algorithm="RS256"))


def test_ec_keys_accept_their_own_curve_only() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    verifier = TokenVerifier.from_settings(
        AuthSettings(mode="jwt", public_key=_public_pem(private))
    )
    assert verifier is not None
    assert verifier.verify(jwt.encode(claims(), private, algorithm="ES256")).user == "u-1"
    other = ec.generate_private_key(ec.SECP256R1())
    assert "Signature" in refusal(verifier, jwt.encode(claims(), other, algorithm="ES256"))


def _public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (AuthSettings(mode="jwt", public_key="not a key"), "CHAT_AUTH_PUBLIC_KEY"),
        (AuthSettings(mode="jwt", secret="-----BEGIN PUBLIC KEY-----" + "x" * 32), "PEM"),
    ],
)
def test_unusable_keys_stop_the_server(settings: AuthSettings, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        TokenVerifier.from_settings(settings)


def test_open_mode_has_no_verifier() -> None:
    assert TokenVerifier.from_settings(AuthSettings()) is None


def test_token_identity_takes_the_name_from_the_token_and_the_client_from_the_query() -> None:
    grant = hs_verifier().verify(hs_token(name="Ada"))
    identity = token_identity(grant, {"name": "Mallory", "client": "tab-1"})
    assert identity == Identity(user="u-1", name="Ada", client="tab-1", verified=True)


def test_a_refresh_keeps_the_user_and_the_client() -> None:
    current = Identity(user="u-1", name="Ada", client="tab-1")
    renamed = refreshed_identity(current, hs_verifier().verify(hs_token(name="Ada L.")))
    assert renamed == Identity(user="u-1", name="Ada L.", client="tab-1", verified=True)
    with pytest.raises(TokenRefused, match="another user"):
        refreshed_identity(current, hs_verifier().verify(hs_token(sub="u-2")))


def rotate(path: Any, text: str) -> None:
    """Replace a key file the way a Secret volume does: a new file renamed over the old one."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text)
    fresh.replace(path)


def file_verifier(path: Any) -> TokenVerifier:
    settings = auth_settings_from_env({"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET_FILE": str(path)})
    verifier = TokenVerifier.from_settings(settings)
    assert verifier is not None
    return verifier


def test_a_rotated_key_file_is_read_again_without_a_restart(tmp_path: Any) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET)
    verifier = file_verifier(path)
    assert verifier.verify(hs_token()).user == "u-1"
    rotated = "r" * 40
    rotate(path, rotated)
    assert verifier.verify(hs_token(rotated)).user == "u-1"
    assert refusal(verifier, hs_token(SECRET)).startswith("invalid token")


def test_a_rotated_key_file_without_a_usable_key_keeps_the_key_in_use(tmp_path: Any) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET)
    verifier = file_verifier(path)
    rotate(path, "too short")
    assert verifier.verify(hs_token()).user == "u-1"
    path.unlink()  # between a volume's swaps, for an instant
    assert verifier.verify(hs_token()).user == "u-1"
