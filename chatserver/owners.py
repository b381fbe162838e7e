"""Who owns a message, as clients may be told (issue 13). Pure.

A message's owner may edit and delete it: in token mode the token's `sub`, in open mode the
sending browser's `client` id. In open mode that id is the owner's only credential (whoever
presents it may edit), so it is never sent to anyone: message frames carry its SHA-256 digest,
which cannot be turned back into the id, and the server compares digests. A `client` id is
what the browser generated (ids.js: 128 random bits), so the digest cannot be found by guessing
either. In token mode the digest of the `sub` is used alike, so clients compare one field in
both modes.
"""

from __future__ import annotations

import hashlib


def owner_of(*, sub: str | None, client: str) -> str:
    """The owner digest of messages sent by `sub` (token mode) or `client` (open mode)."""
    # The prefixes keep a `sub` from ever having the digest of an equal `client` id.
    key = f"sub:{sub}" if sub is not None else f"client:{client}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]
