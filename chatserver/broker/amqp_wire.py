"""What the RabbitMQ broker puts on the wire: names, message kinds, presence beats. No I/O.

Layout for one chat cluster `<c>`:
- `chat.<c>.rooms`, a direct exchange; each room's log is the durable stream queue
  `chat.<c>.room.<room>` bound to it with the room as routing key.
- `chat.<c>.presence`, a fanout exchange; each backend reads it through a server-named
  exclusive queue of its own.

A stream carries two kinds of entries, told apart by the `chat-kind` header: records (the hub's
bytes) and sync markers, which `follow` appends to learn when a consumer has caught up and which
are never delivered to the listener.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import orjson

from chatserver.broker.base import PresenceBeat

KIND_HEADER: Final = "chat-kind"
KIND_RECORD: Final = "record"
KIND_SYNC: Final = "sync"
SYNC_TOKEN_HEADER: Final = "chat-sync"
OFFSET_HEADER: Final = "x-stream-offset"
"""Set by RabbitMQ on every delivery from a stream: the entry's offset in that stream."""

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
"""Cluster and room names become parts of AMQP names (at most 255 bytes); anything outside this
set is refused before it can reach the broker, where a bad name closes the channel."""


def check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} must be 1-100 of A-Z a-z 0-9 _ . -")
    return name


@dataclass(frozen=True, slots=True)
class Topology:
    """The AMQP names of one chat cluster."""

    cluster: str

    def __post_init__(self) -> None:
        check_name("cluster", self.cluster)

    @property
    def rooms_exchange(self) -> str:
        return f"chat.{self.cluster}.rooms"

    @property
    def presence_exchange(self) -> str:
        return f"chat.{self.cluster}.presence"

    def room_stream(self, room: str) -> str:
        return f"chat.{self.cluster}.room.{check_name('room', room)}"


def delivery_offset(headers: Mapping[str, Any] | None) -> int:
    """The stream offset of a delivery; ValueError when the delivery did not come from a stream."""
    offset = (headers or {}).get(OFFSET_HEADER)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ValueError(f"delivery without an integer {OFFSET_HEADER} header")
    return offset


def encode_beat(beat: PresenceBeat) -> bytes:
    """A beat as compact JSON; one-letter keys because every backend sends one every few seconds."""
    return orjson.dumps(
        {"p": beat.pod, "s": beat.sessions, "r": dict(beat.rooms), "t": beat.ts, "g": beat.gone}
    )


def decode_beat(body: bytes) -> PresenceBeat:
    """The inverse of `encode_beat`; ValueError for anything else (another version, garbage)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"presence beat is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("presence beat is not a JSON object")
    pod, sessions, rooms = data.get("p"), data.get("s"), data.get("r")
    ts, gone = data.get("t"), data.get("g")
    if (
        isinstance(pod, str)
        and _is_count(sessions)
        and isinstance(rooms, dict)
        and all(isinstance(room, str) and _is_count(n) for room, n in rooms.items())
        and isinstance(ts, int | float)
        and not isinstance(ts, bool)
        and isinstance(gone, bool)
    ):
        return PresenceBeat(pod=pod, sessions=sessions, rooms=rooms, ts=float(ts), gone=gone)
    raise ValueError(f"malformed presence beat: {body[:200]!r}")


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
