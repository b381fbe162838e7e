"""Who may open /ws, and as whom (DESIGN section 7): the Origin check, open-mode identity and
token mode's JWT verification.

The Origin check stops cross-site WebSocket hijacking: a page on another site may make a
visitor's browser open our /ws, but the browser then sends that site's Origin. Requests without
an Origin come from non-browser clients, which a third-party page cannot drive, so they pass.

Token mode pins the accepted algorithms to the configured key's type: an HMAC secret accepts
only HS256/384/512, a public key only its own family. A token's `alg` header therefore never
chooses how it is checked (no `none`, no HS token "signed" with a public key as the secret).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from chatserver.access import Access, BadPatterns, Identity, parse_patterns
from chatserver.contract import MAX_NAME_CHARS, MAX_SUB_CHARS
from chatserver.settings import (
    AuthSettings,
    SettingsError,
    check_secret_length,
    read_secret_file,
)

log = logging.getLogger(__name__)

AUDIENCE: Final = "chatcluster"
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Unicode categories a name or user id may not hold: controls (C0 and C1), format characters
(bidi overrides, zero-width), line and paragraph separators."""
_HMAC_ALGORITHMS: Final = ("HS256", "HS384", "HS512")
_RSA_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGORITHMS: Final = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def origin_allowed(origin: str | None, *, host: str, allowed: frozenset[str]) -> bool:
    """True when `origin` (the request's Origin header) may use /ws on the server at `host`.

    Same-origin compares host and port with the Host header but not the scheme: behind a TLS
    terminating ingress the page is https while this process sees plain http.
    """
    if origin is None:
        return True
    origin = origin.strip().lower()
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # includes the literal "null" of sandboxed frames and file:// pages
    default_port = "443" if parts.scheme == "https" else "80"
    return _with_port(parts.netloc, default_port) == _with_port(host.lower(), default_port)


def _with_port(netloc: str, default_port: str) -> str:
    if netloc.endswith("]") or ":" not in netloc.rsplit("]", 1)[-1]:
        return f"{netloc}:{default_port}"
    return netloc


class NameRefused(ValueError):
    """A display name with nothing visible left once made safe."""


def open_identity(query: Mapping[str, str]) -> Identity:
    """Open mode: the display name and client id are whatever the client says, made safe; no
    name gets a guest name, a name with nothing visible in it is refused (NameRefused)."""
    asked = query.get("name", "")
    name = display_name(asked)
    if asked and not name:
        raise NameRefused("name: has no visible characters")
    name = name or f"guest-{secrets.token_hex(2)}"
    return Identity(user=name, name=name, client=_client_id(query))


def display_name(raw: str) -> str:
    """`raw` as others may see it: composed (NFC, so one name has one form), without controls,
    format characters (bidi overrides, zero-width ones) or line and paragraph separators, which
    would let a name reorder, hide or break the text around it; trimmed; at most MAX_NAME_CHARS.
    Empty when nothing visible is left."""
    kept = "".join(c for c in unicodedata.normalize("NFC", raw) if not _invisible(c))
    return kept.strip()[:MAX_NAME_CHARS]


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in _INVISIBLE


def _client_id(query: Mapping[str, str]) -> str:
    """The client's own id (the dedupe key); a missing or unusable one gets a random id, so
    dedupe still works within the session."""
    client = query.get("client", "")
    return client if _CLIENT_ID.fullmatch(client) else secrets.token_hex(8)


class TokenRefused(Exception):
    """A token that does not grant a session; the message is short and safe to show."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token allows."""

    user: str
    """The `sub` claim."""
    name: str
    """The `name` claim made safe, or `user`."""
    access: Access
    expires_at: float
    """When a session on this token ends: `exp` plus the leeway (Unix seconds)."""


class TokenVerifier:
    """Checks tokens against one configured key: signature, `exp`, `nbf`, `aud`, then claims.

    A key read from a file (`AuthSettings.key_file`) is read again when the file changes: a
    Secret volume replaces its files in place, so a rotated key takes effect without a restart.
    The check is one `stat` per token; a changed file that holds no usable key keeps the key in
    use (and says so in the log) rather than refusing every token.
    """

    def __init__(self, settings: AuthSettings, key: Any, algorithms: tuple[str, ...]) -> None:
        self._settings = settings
        self._key = key
        self._algorithms = list(algorithms)
        self._file_stamp = _stamp(settings.key_file)
        self.leeway = settings.leeway_seconds
        """Seconds of clock skew tolerated on `exp` and `nbf`."""

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenVerifier | None:
        """None in open mode; raises SettingsError for a key the server cannot use."""
        if settings.mode == "none":
            return None
        return cls(settings, *_key_of(settings))

    def _reload_if_changed(self) -> None:
        path = self._settings.key_file
        stamp = _stamp(path)
        if path is None or stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        try:
            text = read_secret_file(path, "the token key file")
            if self._settings.secret is not None:
                check_secret_length(text)
                settings = replace(self._settings, secret=text)
            else:
                settings = replace(self._settings, public_key=text.strip())
            self._key, algorithms = _key_of(settings)
        except SettingsError as exc:
            log.warning("token key file %s changed but is not usable, kept the key: %s", path, exc)
            return
        self._algorithms = list(algorithms)
        log.info("token key file %s changed: verifying with the new key", path)

    def verify(self, token: str) -> Grant:
        self._reload_if_changed()
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=AUDIENCE,
                leeway=self.leeway,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(f"token audience is not {AUDIENCE}") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"invalid token: {exc}") from None
        return _grant(claims, leeway=self.leeway)


def _key_of(settings: AuthSettings) -> tuple[Any, tuple[str, ...]]:
    """The verification key and the algorithms it admits; SettingsError if it is unusable."""
    if settings.secret is not None:
        if settings.secret.lstrip().startswith("-----BEGIN"):
            raise SettingsError("CHAT_AUTH_SECRET: holds a PEM key; use CHAT_AUTH_PUBLIC_KEY")
        return settings.secret.encode(), _HMAC_ALGORITHMS
    assert settings.public_key is not None, "settings require a secret or a public key"
    try:
        key = load_pem_public_key(settings.public_key.encode())
    except ValueError as exc:
        raise SettingsError(f"CHAT_AUTH_PUBLIC_KEY: not a PEM public key ({exc})") from None
    return key, _algorithms_of(key)


def _stamp(path: str | None) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (a Secret volume swaps a symlink)."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _algorithms_of(key: object) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
        return (_EC_ALGORITHMS[key.curve.name],)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("EdDSA",)
    raise SettingsError(
        "CHAT_AUTH_PUBLIC_KEY: use an RSA, EC (P-256, P-384, P-521) or Ed25519 public key"
    )


def _grant(claims: Mapping[str, Any], *, leeway: float) -> Grant:
    user = claims["sub"]
    if (
        not isinstance(user, str)
        or not 0 < len(user) <= MAX_SUB_CHARS
        or any(_invisible(c) for c in user)
    ):
        raise TokenRefused(f"sub: must be 1-{MAX_SUB_CHARS} printable characters")
    name = claims.get("name")
    if name is not None and not isinstance(name, str):
        raise TokenRefused("name: must be a string")
    try:
        join = _patterns(claims, "rooms")
        post = _patterns(claims, "post")
        create = _patterns(claims, "create")
    except BadPatterns as exc:
        raise TokenRefused(str(exc)) from None
    return Grant(
        user=user,
        name=display_name(name or "") or user[:MAX_NAME_CHARS],
        access=Access(join=join, post=post, create=create),
        expires_at=float(claims["exp"]) + leeway,
    )


def _patterns(claims: Mapping[str, Any], claim: str) -> tuple[str, ...] | None:
    return None if claim not in claims else parse_patterns(claims[claim], claim=claim)


def token_identity(grant: Grant, query: Mapping[str, str]) -> Identity:
    """Token mode: user and name from the token (`?name=` is ignored), the client id still
    from the query, as it only keys dedupe."""
    return Identity(user=grant.user, name=grant.name, client=_client_id(query), verified=True)


def refreshed_identity(current: Identity, grant: Grant) -> Identity:
    """The identity after a `refresh` with `grant`; a token for another user is refused, as a
    connection never changes hands."""
    if grant.user != current.user:
        raise TokenRefused("refresh: the token is for another user")
    return Identity(user=grant.user, name=grant.name, client=current.client, verified=True)
