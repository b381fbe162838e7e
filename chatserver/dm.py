"""Direct messages (token mode, issue 13): the one room two `sub`s share, and who may be in it.

A direct-message room is named `dm-` and the first `DM_DIGEST_CHARS` hex digits of SHA-256 over
the pair of subs, sorted and JSON-encoded (so no pair of strings encodes like another pair).
Either person asking lands in the same room, the name fits the room-name rule whatever the subs
hold, and it names nobody. Nobody else can join it: a `dm` frame names the other person, and the
server computes the room from that and the asker's *verified* sub, so reaching the pair's room
means being one of them (or finding a SHA-256 second preimage); a plain `join` of a name of this
shape is refused. Knowing a room's name (anyone who knows both subs can compute it) gives nothing.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

import orjson

from chatserver.contract import DM_DIGEST_CHARS, DM_ROOM_PATTERN, DM_ROOM_PREFIX

DM_ROOM: Final = re.compile(DM_ROOM_PATTERN)
"""The reserved names, matched with `fullmatch`."""


def dm_room(sub: str, other: str) -> str:
    """The direct-message room of `sub` and `other`: the same whichever of them asks."""
    digest = hashlib.sha256(orjson.dumps(sorted((sub, other)))).hexdigest()
    return DM_ROOM_PREFIX + digest[:DM_DIGEST_CHARS]


def is_dm_room(room: str) -> bool:
    """True for a name reserved for direct messages (joined with `dm` frames only)."""
    return DM_ROOM.fullmatch(room) is not None
