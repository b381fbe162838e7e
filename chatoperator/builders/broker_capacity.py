"""The rooms one broker node holds, from its file descriptors and its memory (issue 17).

Every room is a RabbitMQ stream, and each backend with a member in a room reads that stream: a
node pays for both for as long as the room exists, idle or not. Measured with
``python -m bench --scenario capacity`` (bench/README.md, "Capacity") on Debian's RabbitMQ
3.10.8 with the management plugin, at 1 000 and 3 000 rooms each read by three backends: per
room, 5.0 descriptors (2.0 for the stream, 1.0 per reader) and 200-250 KiB of memory (of which
40-75 KiB per reader: memory moves with the garbage collector, so the figures are ranges). The
costs below are rounded up from those, with a margin.

Counted as if every backend read every room on one node: the worst case, so a cap holds however
members and connections fall (backends take the broker's nodes in turn, nothing keeps their
readers apart). A node holds at most one replica of each stream, so replication (broker HA)
does not add to any one node's cost. What each limit does when reached decides the margin: out
of descriptors, RabbitMQ 3.10 fails every stream read of every room with INTERNAL_ERROR until it
restarts; out of memory it raises an alarm and blocks every publisher (``BrokerReady`` says so).

Costs are in hundredths of a descriptor, so that the CRD's CEL rule, which has integers only,
computes exactly what the operator does.
"""

from __future__ import annotations

from dataclasses import dataclass

CENTI_DESCRIPTORS_PER_ROOM = 200
"""A stream's segment and index files, open on every node with a replica, read or not."""
CENTI_DESCRIPTORS_PER_READER = 125
"""What one more backend reading the room adds (measured 1.01 and 1.16)."""
DESCRIPTOR_RESERVE = 128
"""The node's own files, its listeners and its client connections (an idle node with the
management plugin had 36 open, measured; each backend adds two connections)."""
DESCRIPTOR_FLOOR = 16384
"""The least descriptor limit the project's RabbitMQ image starts with: its entrypoint raises
the soft limit to the hard one and refuses to start below this (the test node's runtime gives
20000; containerd and Docker usually 1048576). The CRD sizes ``chat.maxRooms`` against it."""

MEMORY_PER_ROOM = 144 * 1024
"""A stream's own memory on a node, with the management plugin's statistics of it (a stream and
its first reader: 200 KiB, measured)."""
MEMORY_PER_READER = 64 * 1024
"""What one more backend reading the room adds: the reader's buffers and the statistics of its
consumer (measured 40-75 KiB)."""
MEMORY_RESERVE = 256 * 1024**2
"""A node with its plugins and the backends' connections, before any room (175 MiB measured
idle, 215 MiB extrapolated from the rooms' slope), with room for the garbage collector."""
MEMORY_HIGH_WATERMARK_PERCENT = 60
"""The share of the node's memory past which it raises a memory alarm and blocks publishers
(``vm_memory_high_watermark.relative``); the rest is left for the garbage collector's peaks."""


@dataclass(frozen=True)
class NodeLimits:
    """What one broker node may use: its descriptor limit and its memory alarm threshold."""

    descriptors: int
    memory_bytes: int


def configured_limits(memory_bytes: int) -> NodeLimits:
    """The limits a node of the operator's broker starts with at the least: the image's
    descriptor floor and ``rabbitmq.memory`` up to the watermark."""
    return NodeLimits(DESCRIPTOR_FLOOR, memory_bytes * MEMORY_HIGH_WATERMARK_PERCENT // 100)


def rooms_within(limits: NodeLimits, backends: int) -> int:
    """The most rooms a node with these limits holds, every room read by ``backends``."""
    centi_descriptors = CENTI_DESCRIPTORS_PER_ROOM + CENTI_DESCRIPTORS_PER_READER * backends
    memory = MEMORY_PER_ROOM + MEMORY_PER_READER * backends
    return max(
        0,
        min(
            100 * (limits.descriptors - DESCRIPTOR_RESERVE) // centi_descriptors,
            (limits.memory_bytes - MEMORY_RESERVE) // memory,
        ),
    )


def descriptors_rule(rooms: str, backends: str) -> str:
    """A CEL expression (of two CEL integer expressions), true when ``rooms`` rooms read by
    ``backends`` fit the descriptor floor, as ``rooms_within`` computes it."""
    return (
        f"{rooms} * ({CENTI_DESCRIPTORS_PER_ROOM} + {CENTI_DESCRIPTORS_PER_READER} * {backends})"
        f" <= {100 * (DESCRIPTOR_FLOOR - DESCRIPTOR_RESERVE)}"
    )


def memory_rule(rooms: str, backends: str, memory_bytes: str) -> str:
    """A CEL expression, true when ``rooms`` rooms read by ``backends`` fit a node given
    ``memory_bytes``, as ``rooms_within`` computes it from ``configured_limits``."""
    return (
        f"{rooms} * ({MEMORY_PER_ROOM} + {MEMORY_PER_READER} * {backends})"
        f" <= {memory_bytes} * {MEMORY_HIGH_WATERMARK_PERCENT} / 100 - {MEMORY_RESERVE}"
    )
