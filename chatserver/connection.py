"""One client's WebSocket: the bounded, synchronous path of frames to it, and its close.

Nobody awaits a client. A frame is written straight to the client's transport: the hub's
fan-out encodes a message once into a complete WebSocket frame (`wsframe`) and hands the same
bytes to every member (`send_wire`); replies to this client alone are framed when sent (`send`).
What the kernel cannot take at once waits in the transport's write buffer, and that buffer is
the client's bound: a client with more than `outbox_bytes` pending there is cut at once with
`SLOW_CONSUMER` and recovers with `join since=` after reconnecting. There is no task and no
await per message; the only task a connection starts is the one that closes it. Each server
frame carries one JSON object: the kernel's socket buffer absorbs bursts, so nothing is gained
by batching (the contract still allows batches, so clients split on newlines).

Writing frames beside aiohttp's own is safe, as read in aiohttp 3.14's
`aiohttp/_websocket/writer.py` (pyproject pins the 3.14 line, and
`tests/unit/test_connection.py` fails if the first two points stop holding):
- `web_ws.WebSocketResponse._pre_start` gives its `WebSocketWriter` `request._protocol.transport`,
  the transport `request.transport` returns and this module writes to.
- With compression off (`compress=False`, set in backend.py), `WebSocketWriter.send_frame`
  calls `_write_websocket_frame` directly, without its lock and with no await before it, and that
  method writes the frame with synchronous `transport.write` calls (`header + message`, or
  `header` then `message` above 16 KiB). aiohttp's frames (pong, heartbeat ping, close) and
  ours are each written whole within one step of the event loop: they never interleave inside a
  frame.
- The close frame goes through the same transport, so it follows whatever is still buffered:
  a close after a drain reaches the client after everything sent before it.
- aiohttp's flow control (`send_frame` awaits a drain once its own byte count passes its limit)
  does not count our bytes; the bound here is checked against the transport's whole buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import web

from chatserver import closecodes, wsframe
from chatserver.access import OPEN, Access, Identity
from chatserver.closecodes import CLOSE_TIMEOUT


class Connection:
    """A session: identity and access, joined rooms, and the bounded writes to its socket."""

    __slots__ = (  # one per connection: no instance dict
        "_close_code",
        "_close_reason",
        "_closer",
        "_cut",
        "_on_slow",
        "_outbox_bytes",
        "_transport",
        "access",
        "expires_at",
        "identity",
        "last_presence",
        "rooms",
        "session_id",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        transport: asyncio.Transport,
        session_id: str,
        identity: Identity,
        outbox_bytes: int,
        on_slow: Callable[[Connection], None],
        access: Access = OPEN,
        expires_at: float | None = None,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self.session_id = session_id
        self.identity = identity
        self.access = access
        """What this session may join and post to; a token `refresh` replaces it."""
        self.expires_at = expires_at
        """When the session's token expires (Unix seconds, leeway included); None in open
        mode."""
        self.rooms: set[str] = set()
        self.last_presence = b""
        """The last `presence` wire frame sent here, so unchanged counts are not resent."""
        self._outbox_bytes = outbox_bytes
        self._on_slow = on_slow
        self._close_code: int | None = None
        self._close_reason = ""
        self._closer: asyncio.Task[None] | None = None
        self._cut = False

    @property
    def open(self) -> bool:
        """False once a close is requested: sending more would be wasted."""
        return self._close_code is None

    def send(self, frame: bytes) -> None:
        """Frame and write one encoded server frame meant for this client alone."""
        self.send_wire(wsframe.encode_text(frame))

    def send_wire(self, wire: bytes) -> None:
        """Write one complete WebSocket frame (shared by every recipient); never blocks. Cuts
        the client if more than `outbox_bytes` would be pending."""
        transport = self._transport
        if self._close_code is not None or transport.is_closing():
            return
        pending = transport.get_write_buffer_size()
        # A client with nothing pending takes any frame (a `joined` with a long history may be
        # big on its own); the bound is then `outbox_bytes` plus one frame.
        if pending and pending + len(wire) > self._outbox_bytes:
            self._on_slow(self)
            self.cut(closecodes.SLOW_CONSUMER, "slow consumer")
            return
        transport.write(wire)

    def close_soon(self, code: int, reason: str) -> None:
        """Close after what was already sent (drain, policy violations): the close frame
        follows it through the transport."""
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
            self._closer = asyncio.create_task(self._close(), name=f"close-{self.session_id}")

    def cut(self, code: int, reason: str) -> None:
        """Close now, without waiting for the client to read what is pending."""
        if self._cut:
            return
        self._cut = True
        self._close_code, self._close_reason = code, reason
        if self._closer is not None:
            self._closer.cancel()  # a close waiting for this client to drain
        self._closer = asyncio.create_task(self._abandon(), name=f"cut-{self.session_id}")

    async def stop(self) -> None:
        """After the read loop ended: finish the close under way or start one, bounded; a client
        that holds it up longer is dropped."""
        self.close_soon(closecodes.NORMAL, "")
        closer = self._closer
        assert closer is not None, "close_soon (or an earlier cut) starts the closer"
        _, late = await asyncio.wait([closer], timeout=CLOSE_TIMEOUT)
        if late:
            closer.cancel()
            self._transport.abort()

    async def _abandon(self) -> None:
        """Close without waiting on a socket the client is not reading: queue the close frame
        behind what is already buffered and give it CLOSE_TIMEOUT to get through, then drop
        the TCP connection."""
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._transport.abort)
        with contextlib.suppress(ConnectionError):
            await self.ws.close(
                code=self._close_code or closecodes.NORMAL,
                message=self._close_reason.encode(),
                drain=False,  # waiting for this client to read is what a cut avoids
            )

    async def _close(self) -> None:
        # Bounded: a client that never answers must not hold its handler (or a drain) open.
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(
                    code=self._close_code or closecodes.NORMAL,
                    message=self._close_reason.encode(),
                )
        except TimeoutError:
            # The client does not even take the close frame (a slow consumer's socket is full):
            # drop the TCP connection rather than wait for buffers it will never read.
            self._transport.abort()
        except ConnectionError:
            pass
