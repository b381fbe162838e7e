"""WebSocket text frames as a server sends them (RFC 6455 section 5.2), encoded once. Pure.

A server's frames are never masked (section 5.1: only client-to-server frames are), so one
frame's bytes, header included, are the same for every recipient. The hub encodes a message
into a complete frame once and writes those bytes to every member's socket
(`connection.Connection.send_wire`).
"""

from __future__ import annotations

import struct
from typing import Final

_FIN_TEXT: Final = 0x81
"""FIN set (the whole message in one frame), RSV bits clear (no extension), opcode 1: text."""
_LEN16: Final = struct.Struct("!BBH")
_LEN64: Final = struct.Struct("!BBQ")


def encode_text(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying `payload`, which must be valid UTF-8
    (the chat protocol's frames are orjson output, which always is).

    The length takes the shortest form the RFC allows, as it requires: 7 bits up to 125 bytes,
    then 16 bits up to 65,535, then 64 bits.
    """
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 0x10000:
        return _LEN16.pack(_FIN_TEXT, 126, size) + payload
    return _LEN64.pack(_FIN_TEXT, 127, size) + payload


def reader_limit(max_frame_bytes: int) -> int:
    """aiohttp's `max_msg_size` for a hard limit of `max_frame_bytes`: its reader refuses a
    frame of exactly `max_msg_size` bytes, the contract only frames above the limit."""
    return max_frame_bytes + 1
