"""Who a session is and which rooms it may join and post to: its `Identity`, room patterns and
the `Access` policy built from them. Plain values, whatever the mode.

Pure and small on purpose: a session's `Access` is asked before every join and send, so the
rules live here once, whatever the mode. Open mode carries `OPEN` (everything allowed) and an
identity from the query string; token mode builds both from the verified token's claims
(`auth.py`), so nothing that uses them depends on the mode.

Pattern syntax: a pattern is a room name (`protocol.ROOM_NAME`'s characters, lowercase letters,
digits, `_` and `-`) in which `*` stands for any run, possibly empty, of those characters; no
other character is special. `team-*` matches `team-a` and `team-` but not `teams`; `*` matches
every room. A room must first be a valid room name (the protocol refuses any other before
asking), and patterns are checked against `PATTERN` when the token is read, so `?`, `[` and `]`
(which `fnmatch` would treat as wildcards) never reach `fnmatchcase`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate
from typing import Final

PATTERN: Final = re.compile(r"[a-z0-9_*-]{1,64}")
"""A room pattern, matched with `fullmatch`."""
MAX_PATTERNS: Final = 100
"""Patterns per claim; a token listing more is refused rather than scanned on every join."""


class BadPatterns(ValueError):
    """A `rooms` or `post` claim that is not a list of room patterns."""


def parse_patterns(value: object, *, claim: str) -> tuple[str, ...]:
    """Validate one claim's value: a list of at most MAX_PATTERNS strings matching PATTERN."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadPatterns(f"{claim}: must be a list of room patterns")
    if len(value) > MAX_PATTERNS:
        raise BadPatterns(f"{claim}: at most {MAX_PATTERNS} patterns")
    bad = [item for item in value if not PATTERN.fullmatch(item)]
    if bad:
        raise BadPatterns(f"{claim}: {bad[:3]} do not match {PATTERN.pattern}")
    return tuple(value)


def room_matches(room: str, patterns: Iterable[str]) -> bool:
    """True when the (already valid) room name matches one of the patterns."""
    return any(fnmatchcase(room, pattern) for pattern in patterns)


@functools.lru_cache(maxsize=256)
def _any_of(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """`room_matches` for `patterns` as one compiled expression: the room directory asks it of
    every room it lists, where `room_matches` would run each pattern in turn (up to
    MAX_PATTERNS)."""
    if not patterns:
        return lambda _: False
    match = re.compile("|".join(translate(pattern) for pattern in patterns)).match
    return lambda room: match(room) is not None


@dataclass(frozen=True, slots=True)
class Access:
    """What one session may do. None means no restriction."""

    join: tuple[str, ...] | None
    """Patterns of the rooms the session may join (the `rooms` claim)."""
    post: tuple[str, ...] | None
    """Patterns of the rooms it may post to (the `post` claim; absent means the same as join)."""
    create: tuple[str, ...] | None = None
    """Patterns of the rooms it may create, that is join before they exist (the `create`
    claim); absent means what the server's `CHAT_ROOM_CREATION` says for everyone."""

    def may_join(self, room: str) -> bool:
        return self.join is None or room_matches(room, self.join)

    def joinable(self) -> Callable[[str], bool]:
        """`may_join` for many rooms at once (the room directory)."""
        return (lambda _: True) if self.join is None else _any_of(self.join)

    def may_post(self, room: str) -> bool:
        patterns = self.join if self.post is None else self.post
        return patterns is None or room_matches(room, patterns)

    def may_create(self, room: str, *, anyone: bool) -> bool:
        """May the session create `room` (one it may join)? `anyone`: the server lets everyone
        create rooms (`CHAT_ROOM_CREATION=anyone`); a `create` claim decides instead."""
        return anyone if self.create is None else room_matches(room, self.create)


OPEN: Final = Access(join=None, post=None)
"""Open mode: every room may be joined and posted to."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on the other end. Open mode trusts the query string; token mode fills the same
    fields from verified claims (`auth.py`), so nothing above this type depends on the mode."""

    user: str
    """Stable user id: the token's `sub`; in open mode the display name."""
    name: str
    """Display name shown with messages."""
    client: str
    """Stable id of the client program (a browser tab's stored id); with a send's `ref` (and
    `sub`) it is the dedupe key, so a retry through another backend is recognised."""
    verified: bool = False
    """Token mode: `user` is the token's verified `sub`. Open mode verifies nobody."""

    @property
    def sub(self) -> str | None:
        """The verified user id, which messages carry and resends are keyed on; None in open
        mode, where anyone may claim any name or client id."""
        return self.user if self.verified else None
