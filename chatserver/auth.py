"""Who may open /ws, and as whom: the Origin check and open-mode identity (DESIGN section 7).

The Origin check stops cross-site WebSocket hijacking: a page on another site may make a
visitor's browser open our /ws, but the browser then sends that site's Origin. Requests without
an Origin come from non-browser clients, which a third-party page cannot drive, so they pass.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from chatserver.connection import Identity

MAX_NAME_CHARS = 64
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


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


def open_identity(query: Mapping[str, str]) -> Identity:
    """Open mode: the display name and client id are whatever the client says, made safe.

    A missing or unusable client id gets a random one, so dedupe still works within the session.
    """
    name = _UNPRINTABLE.sub("", query.get("name", "")).strip()[:MAX_NAME_CHARS]
    if not name:
        name = f"guest-{secrets.token_hex(2)}"
    client = query.get("client", "")
    if not _CLIENT_ID.fullmatch(client):
        client = secrets.token_hex(8)
    return Identity(user=name, name=name, client=client)
