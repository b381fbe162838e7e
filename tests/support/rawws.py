"""A bare-bones WebSocket client over a plain socket, for clients that misbehave on purpose
(never read, never answer a close), which a real client library will not do."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct


async def open_raw_websocket(
    port: int, *, query: str = "", receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Handshake with /ws on 127.0.0.1:`port`; the reader is then left to the caller."""
    sock = socket.socket()
    if receive_buffer is not None:  # before connect, so the TCP window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode(errors="replace"))
    return reader, writer


async def join_unread(
    port: int, room: str, *, query: str = "name=sloth"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client with a small receive window that joins `room` and then reads nothing (until the
    caller reads from the returned reader)."""
    reader, writer = await open_raw_websocket(port, query=query, receive_buffer=4096)
    writer.write(text_frame(b'{"type": "join", "room": "%s"}' % room.encode()))
    await writer.drain()
    return reader, writer


def text_frame(payload: bytes) -> bytes:
    """One masked (as clients must) final TEXT frame."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


async def read_close(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Read (unmasked) server frames until the close frame; its code and reason."""
    while True:
        first, second = await reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await reader.readexactly(8))
        payload = await reader.readexactly(size)
        if first & 0x0F == 0x8:  # close
            (code,) = struct.unpack("!H", payload[:2])
            return code, payload[2:].decode()
