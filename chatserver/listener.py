"""The listening socket: which connections a process takes, and how long a new one may take to
say what it wants. In front of aiohttp, which bounds neither.

Every accepted connection passes through a `Guard` before aiohttp sees it:
- Caps: at most `max_connections` open at once (lowered at start to what the file descriptor
  limit leaves room for: running out of descriptors stalls accepting and every probe with it)
  and at most `max_connections_per_ip` from one client address. A connection over a cap is
  answered `503` at once and closed; aiohttp never sees it.
- Handshake timeout: a new connection that has not sent a whole request head (up to its blank
  line) within `handshake_timeout_seconds` is dropped, so idle and half-sent requests cannot
  hold sockets. After the head, aiohttp's own keep-alive timeout and the WebSocket heartbeat
  bound the connection.
- Refusals and timeouts are logged once per `REPORT_SECONDS` with their counts, never once per
  connection: a flood of connections must not become a flood of log lines.

The guard wraps aiohttp's per-connection protocol and forwards every event to it unchanged,
so aiohttp works as if it had accepted the connection itself.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from collections.abc import Callable
from typing import Final

from aiohttp import web

from chatserver.settings import ListenSettings

log = logging.getLogger(__name__)

BACKLOG: Final = 128
"""Listen backlog; asyncio also accepts up to this many connections in one go."""
FD_RESERVE: Final = BACKLOG + 64
"""File descriptors kept out of the connection cap: one accept burst (taken before the caps are
checked), the broker's sockets, the listening socket, log and static files."""
REPORT_SECONDS: Final = 10.0
BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Connection: close\r\n\r\ntoo many connections\n"
)
_HEAD_END: Final = b"\r\n\r\n"


def connection_cap(configured: int, *, descriptors_each: int) -> int:
    """`configured`, or less if this process's file descriptor limit cannot hold that many
    connections of `descriptors_each` descriptors (the frontend's relay holds two)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, (soft - FD_RESERVE) // descriptors_each))


class Guard:
    """The caps and the timeout of one process, with its counts of open connections."""

    def __init__(self, settings: ListenSettings, *, max_connections: int) -> None:
        self._max = max_connections
        self._max_per_ip = settings.max_connections_per_ip
        self.handshake_timeout = settings.handshake_timeout_seconds
        self._open = 0
        self._per_ip: Counter[str] = Counter()
        self._unreported: Counter[str] = Counter()
        self._report: asyncio.TimerHandle | None = None

    def admit(self, ip: str) -> bool:
        """Count a new connection from `ip` in, or refuse it (False) when over a cap."""
        if self._open >= self._max:
            self.note("over max connections")
            return False
        if self._max_per_ip and self._per_ip[ip] >= self._max_per_ip:
            self.note("over max connections per address")
            return False
        self._open += 1
        self._per_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self._open -= 1
        self._per_ip[ip] -= 1
        if not self._per_ip[ip]:
            del self._per_ip[ip]  # the table holds only addresses with open connections

    def note(self, event: str) -> None:
        """Count an event for the next report: the first after a quiet spell is logged at
        once, the rest summed up every REPORT_SECONDS."""
        self._unreported[event] += 1
        if self._report is None:
            self._flush()

    def _flush(self) -> None:
        if not self._unreported:
            self._report = None
            return
        log.warning(
            "refused connections",
            extra={"counts": dict(self._unreported), "seconds": REPORT_SECONDS},
        )
        self._unreported.clear()
        self._report = asyncio.get_running_loop().call_later(REPORT_SECONDS, self._flush)


class _Guarded(asyncio.Protocol):
    """One accepted connection: admitted by the guard, then handed to aiohttp's handler (made
    only then), every event forwarded to it."""

    __slots__ = ("_deadline", "_guard", "_handler", "_ip", "_make_handler", "_tail")

    def __init__(self, guard: Guard, make_handler: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make_handler = make_handler
        self._handler: asyncio.Protocol | None = None
        self._ip = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""
        """The last bytes received while the head is incomplete (its end may span reads)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport), "a TCP server's transports"
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        if not self._guard.admit(ip):
            transport.write(BUSY)
            transport.close()
            return
        self._ip = ip
        self._deadline = asyncio.get_running_loop().call_later(
            self._guard.handshake_timeout, self._too_slow, transport
        )
        self._handler = self._make_handler()
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return
        if self._deadline is not None:
            seen = self._tail + data
            if _HEAD_END in seen:
                self._deadline.cancel()
                self._deadline = None
                self._tail = b""
            else:
                self._tail = seen[-(len(_HEAD_END) - 1) :]
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._handler is None else self._handler.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handler is None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
        self._guard.release(self._ip)
        self._handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def _too_slow(self, transport: asyncio.Transport) -> None:
        self._deadline = None
        self._guard.note("request head not sent in time")
        transport.abort()


class GuardedSite(web.BaseSite):
    """aiohttp's TCPSite, with every connection going through `guard` first."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, guard: Guard) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "the runner is set up before its sites"
        guard = self._guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Guarded(guard, server),
            self._host,
            self._port,
            backlog=BACKLOG,
            reuse_address=True,
        )
