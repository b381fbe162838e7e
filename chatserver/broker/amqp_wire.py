"""How the RabbitMQ broker lays a cluster out on AMQP: names, message kinds, headers. No I/O.

Layout for one chat cluster `<c>`:
- `chat.<c>.rooms`, a direct exchange; each room's log is the durable stream queue
  `chat.<c>.room.<room>` bound to it with the room as routing key.
- `chat.<c>.presence`, a fanout exchange; each backend reads it through a server-named
  exclusive queue of its own.
- `chat.<c>.typing`, a fanout exchange for typing signals (issue 13), bound to that same queue;
  a delivery's exchange tells the two apart.

A stream carries three kinds of entries, told apart by the `chat-kind` header: records (the
hub's bytes); sync markers, which `follow` appends to learn when a consumer has caught up; and
epoch claims, which propose the epoch of a new stream. Only records reach the listener.

The `chat-epoch` header carries an epoch: on a claim, the one proposed; on a record or a sync
marker, the epoch its writer had read from the stream (a stamp; entries written before their
writer knew it carry none). `rabbitmq.py` says how a reader settles the stream's epoch from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from chatserver.contract import MAX_CLUSTER_CHARS, MAX_ROOM_NAME_CHARS, room_stream_prefix

KIND_HEADER: Final = "chat-kind"
KIND_RECORD: Final = "record"
KIND_SYNC: Final = "sync"
KIND_EPOCH: Final = "epoch"
SYNC_TOKEN_HEADER: Final = "chat-sync"
EPOCH_HEADER: Final = "chat-epoch"
OFFSET_HEADER: Final = "x-stream-offset"
"""Set by RabbitMQ on every delivery from a stream: the entry's offset in that stream."""

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_MAX_CHARS: Final = {"cluster": MAX_CLUSTER_CHARS, "room": MAX_ROOM_NAME_CHARS}
"""Cluster and room names become parts of AMQP names of at most 255 bytes (the longest is
`chat.<cluster>.room.<room>`); anything else is refused before it can reach the broker, where a
bad name closes the channel."""


def check_name(kind: str, name: str) -> str:
    limit = _MAX_CHARS[kind]
    if not (_NAME.fullmatch(name) and len(name) <= limit):
        raise ValueError(f"{kind} name {name!r} must be 1-{limit} of A-Z a-z 0-9 _ . -")
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

    @property
    def typing_exchange(self) -> str:
        return f"chat.{self.cluster}.typing"

    def room_stream(self, room: str) -> str:
        return room_stream_prefix(self.cluster) + check_name("room", room)


def delivery_offset(headers: Mapping[str, Any] | None) -> int:
    """The stream offset of a delivery; ValueError when the delivery did not come from a stream."""
    offset = (headers or {}).get(OFFSET_HEADER)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ValueError(f"delivery without an integer {OFFSET_HEADER} header")
    return offset


def header_epoch(headers: Mapping[str, Any]) -> int | None:
    """The epoch an entry carries (claimed or stamped), None when it carries none."""
    epoch = headers.get(EPOCH_HEADER)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch <= 0:
        return None
    return epoch
