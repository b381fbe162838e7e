"""A strict reader of one server-to-client WebSocket text frame, written from RFC 6455
section 5.2 independently of `chatserver.wsframe`, for tests that check its output."""

from __future__ import annotations


def text_frame_payload(wire: bytes) -> bytes:
    """The payload of `wire`, which must be exactly one final, unmasked text frame whose length
    uses the shortest encoding; anything else fails an assertion."""
    assert len(wire) >= 2, wire
    assert wire[0] == 0b1000_0001, f"FIN + text expected, got {wire[0]:#010b}"
    assert not wire[1] & 0x80, "a server must not mask its frames"
    length, start = wire[1] & 0x7F, 2
    if length == 126:
        length, start = int.from_bytes(wire[2:4], "big"), 4
        assert length >= 126, "16-bit length used for a 7-bit size"
    elif length == 127:
        length, start = int.from_bytes(wire[2:10], "big"), 10
        assert length >= 0x10000, "64-bit length used for a 16-bit size"
        assert length < 1 << 63, "the 64-bit length's most significant bit must be 0"
    assert len(wire) == start + length, f"header says {length} bytes, {len(wire) - start} follow"
    return wire[start:]


def text_frame_payloads(wire: bytes) -> list[bytes]:
    """The payloads of `wire`, one or more frames back to back, each checked as above."""
    payloads = []
    while wire:
        length, start = wire[1] & 0x7F, 2 if len(wire) >= 2 else 0
        if length == 126:
            length, start = int.from_bytes(wire[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(wire[2:10], "big"), 10
        payloads.append(text_frame_payload(wire[: start + length]))
        wire = wire[start + length :]
    return payloads
