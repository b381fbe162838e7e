"""One client's WebSocket: who it is, a bounded outbox and the one task that writes to it.

Nobody awaits a client but its own writer task. Producers (the hub's fan-out, the read loop's
replies) call `send()`, which only appends bytes to the outbox; a client whose outbox overflows
is cut at once with `SLOW_CONSUMER` and recovers with `join since=` after reconnecting. The
writer drains everything queued into one WebSocket frame, `\\n`-separated (the contract lets
servers batch), so a burst costs one write per client rather than one per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from chatserver import closecodes
from chatserver.ratelimit import TokenBucket

log = logging.getLogger(__name__)

BATCH_BYTES = 64 * 1024
"""Largest batch written as one frame: big enough to absorb bursts, small enough that a client
never has to reassemble a huge frame."""
CLOSE_TIMEOUT = 2.0
"""Seconds to send a close frame and hear the answer; a client that does not answer is dropped."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on the other end. Open mode trusts the query string; token mode (later) will fill
    the same fields from verified claims, so nothing above this type needs to change."""

    user: str
    """Stable user id; in open mode the display name."""
    name: str
    """Display name shown with messages."""
    client: str
    """Stable id of the client program (a browser tab's stored id); with a send's `ref` it is
    the dedupe key, so a retry through another backend is recognised."""


class Connection:
    """A session: identity, joined rooms, rate limit, and the outbox with its writer task."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        transport: asyncio.Transport | None,
        session_id: str,
        identity: Identity,
        bucket: TokenBucket,
        outbox_bytes: int,
        on_slow: Callable[[Connection], None],
    ) -> None:
        self.ws = ws
        self._transport = transport
        self.session_id = session_id
        self.identity = identity
        self.bucket = bucket
        self.rooms: set[str] = set()
        self.last_presence = b""
        """The last `presence` frame sent here, so unchanged counts are not resent."""
        self._outbox: deque[bytes] = deque()
        self._queued = 0
        self._outbox_bytes = outbox_bytes
        self._on_slow = on_slow
        self._wakeup = asyncio.Event()
        self._close_code: int | None = None
        self._close_reason = ""
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        """False once a close is requested: sending more would be wasted."""
        return self._close_code is None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.session_id}")

    def send(self, frame: bytes) -> None:
        """Queue one encoded frame; never blocks. Cuts the client if its outbox is full."""
        if self._close_code is not None:
            return
        # An empty outbox takes any frame (a `joined` with a long history may be big on its
        # own); the bound is then `outbox_bytes` plus one frame.
        if self._queued and self._queued + len(frame) > self._outbox_bytes:
            self._on_slow(self)
            self.cut(closecodes.SLOW_CONSUMER, "slow consumer")
            return
        self._outbox.append(frame)
        self._queued += len(frame)
        self._wakeup.set()

    def close_soon(self, code: int, reason: str) -> None:
        """Close after what is already queued has been written (drain, policy violations)."""
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
            self._wakeup.set()

    def cut(self, code: int, reason: str) -> None:
        """Drop the outbox and close now, even if the writer is stuck on this client's socket."""
        if self._closer is not None:
            return
        self._close_code, self._close_reason = code, reason
        self._outbox.clear()
        self._queued = 0
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(self._abandon(), name=f"cut-{self.session_id}")

    async def stop(self) -> None:
        """After the read loop ended: flush, close the socket, and end the writer (bounded)."""
        self.close_soon(closecodes.NORMAL, "")
        tasks = [task for task in (self._writer, self._closer) if task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in late:
                task.cancel()
        if not self.ws.closed:
            await self._close()

    async def _write_loop(self) -> None:
        try:
            while True:
                if not self._outbox:
                    if self._close_code is not None:
                        break
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                await self.ws.send_frame(self._take_batch(), WSMsgType.TEXT)
        except ConnectionError:
            return  # the client went away; the read loop sees it too and cleans up
        await self._close()

    def _take_batch(self) -> bytes:
        first = self._outbox.popleft()
        batch = [first]
        size = len(first)
        while self._outbox and size + len(self._outbox[0]) < BATCH_BYTES:
            frame = self._outbox.popleft()
            batch.append(frame)
            size += len(frame) + 1
        self._queued -= sum(len(frame) for frame in batch)
        return batch[0] if len(batch) == 1 else b"\n".join(batch)

    async def _abandon(self) -> None:
        """Close without waiting on a socket the client is not reading: queue the close frame
        behind what is already buffered, give it CLOSE_TIMEOUT to get through, then drop the
        TCP connection."""
        with contextlib.suppress(ConnectionError):
            await self.ws.close(
                code=self._close_code or closecodes.NORMAL,
                message=self._close_reason.encode(),
                drain=False,  # the cancelled writer may have left aiohttp's drain waiter dead
            )
        if self._transport is not None:
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._transport.abort)

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
            if self._transport is not None:
                self._transport.abort()
        except ConnectionError:
            pass
