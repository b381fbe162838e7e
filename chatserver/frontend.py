"""The frontend: serves the browser UI and relays /ws to a backend.

`chatserver frontend` serves `static/index.html` at `/` and the rest of `static/` under
`/static/`, and relays each `/ws` connection, frame by frame in both directions, to a backend.
Close codes and reasons pass through both ways, so a backend's 1008, 1012 (draining) or 4001
(token expired) reaches the browser as is; a backend lost without a close frame reaches it as
1012. The relay bounds what waits for each browser as a backend does (`CHAT_OUTBOX_BYTES`) and
cuts a slow browser itself with 4008. A backend that refuses the handshake with 401 or 403
(token mode) refuses this request, not every request: the browser gets the same status, and no
other backend is tried.

Extension of the contract: `BACKEND_URL` may list several backends, comma-separated. For each
new `/ws` connection the frontend tries them in the listed order and relays to the first that
accepts the WebSocket handshake. A browser whose backend died therefore lands on the next one
when it reconnects. (In Kubernetes the single URL of the backend Service is the normal case.)

The query string (`name`, `client`, `token`) goes to the backend byte for byte as the browser
encoded it. The frontend checks the browser's Origin itself and does not forward it: to the
backend the relay is a non-browser client. `chatserver dev` serves the same UI routes beside
the backend's own /ws in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler, Middleware
from yarl import URL

from chatserver import closecodes, contract, wsframe
from chatserver.auth import origin_allowed
from chatserver.closecodes import CLOSE_TIMEOUT
from chatserver.settings import FrontendSettings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
CONNECT_TIMEOUT = 5.0
"""Seconds for one backend to accept the handshake before the next one is tried."""
CLIENT_FRAME_LIMIT = wsframe.reader_limit(contract.DEFAULT_MAX_FRAME_BYTES)
"""Frames from browsers: the backend's default hard limit, enforced here already (1009)."""
HEARTBEAT = 25.0
"""Ping interval on both legs; see `ChatSettings.heartbeat_seconds`."""
_DATA = frozenset({WSMsgType.TEXT, WSMsgType.BINARY})
_UNSENDABLE = frozenset({1004, 1005, 1006, 1015})
"""Close codes RFC 6455 forbids in a close frame (they describe, they are not sent)."""
_REFUSALS: dict[int, type[web.HTTPClientError]] = {
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
}
"""Handshake answers of a backend that are about the request itself, passed on as they are."""

FRONTEND_SETTINGS = web.AppKey("frontend_settings", FrontendSettings)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
RELAYS = web.AppKey("relays", set[web.WebSocketResponse])
DRAINING = web.AppKey("draining", asyncio.Event)


SECURITY_HEADERS: Final = {
    # Only the app's own files run and style the page: no inline script or style, no eval, no
    # other origin (`data:` images are the stylesheet's own icons). /ws is same-origin.
    "Content-Security-Policy": "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
}
"""Sent with every response of a process that serves the UI."""
LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def add_ui_routes(app: web.Application) -> None:
    """`/` and `/static/`, with the security headers; shared with `chatserver dev`."""
    app.router.add_get("/", handle_index)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR)
    app.on_response_prepare.append(_add_security_headers)


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def only_hosts(names: frozenset[str]) -> Middleware:
    """`chatserver dev`: answer only requests whose Host is one of `names` (port aside), else
    421. A page on another site can point a name it controls at 127.0.0.1 (DNS rebinding) and
    then talk to a laptop's dev server as a same-origin page; its Host header is still its
    own name."""

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _hostname(request.host) not in names:
            raise web.HTTPMisdirectedRequest(
                text="this development server answers only to its own host names\n"
            )
        return await handler(request)

    return check_host


def dev_host_names(bind_host: str, allowed_origins: frozenset[str]) -> frozenset[str]:
    """The names `chatserver dev` answers to: loopback's, the address it listens on, and the
    hosts of `CHAT_ALLOWED_ORIGINS`."""
    names = set(LOCAL_HOSTS)
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(bind_host.lower())
    names.update(_hostname(urlsplit(origin).netloc) for origin in allowed_origins)
    return frozenset(names)


def _hostname(host: str) -> str:
    """`host` (a Host header or a netloc) without its port, lowercased."""
    host = host.lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def handle_index(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        return web.Response(status=503, text="The chat UI is not installed (static/index.html).\n")
    return web.FileResponse(index, headers={"Cache-Control": "no-cache"})


def create_frontend_app(settings: FrontendSettings) -> web.Application:
    app = web.Application()
    app[FRONTEND_SETTINGS] = settings
    app[RELAYS] = set()
    app[DRAINING] = asyncio.Event()
    add_ui_routes(app)
    app.router.add_get("/ws", handle_ws_relay)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.cleanup_ctx.append(_http_session)
    return app


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[HTTP_SESSION] = session
        yield


async def drain_frontend(app: web.Application, *, budget: float) -> None:
    """SIGTERM: not ready, then every relayed browser closed with 1012 (concurrently)."""
    app[DRAINING].set()
    relays = app[RELAYS]
    closes = [
        asyncio.create_task(
            ws.close(code=closecodes.SERVICE_RESTART, message=b"frontend restarting")
        )
        for ws in list(relays)
    ]
    if closes:
        await asyncio.wait(closes, timeout=budget)


async def handle_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def handle_readyz(request: web.Request) -> web.Response:
    if request.app[DRAINING].is_set():
        return web.Response(status=503, text="draining\n")
    return web.Response(text="ready\n")


async def handle_ws_relay(request: web.Request) -> web.StreamResponse:
    settings = request.app[FRONTEND_SETTINGS]
    if request.app[DRAINING].is_set():
        raise web.HTTPServiceUnavailable(text="draining\n")
    if not origin_allowed(
        request.headers.get("Origin"), host=request.host, allowed=settings.allowed_origins
    ):
        raise web.HTTPForbidden(text="origin not allowed\n")
    upstream = await _connect_upstream(
        # Raw, as the browser encoded it: the decoded form would turn a `#` or `&` in a name
        # into a fragment or a new parameter (and lose the client id behind it).
        request.app[HTTP_SESSION],
        settings.backend_urls,
        request.rel_url.raw_query_string,
    )
    if upstream is None:
        raise web.HTTPBadGateway(text="no backend accepted the connection\n")
    browser = web.WebSocketResponse(
        # Uncompressed: the relay writes the browser's frames itself (see `_relay_to_browser`).
        compress=False,
        heartbeat=HEARTBEAT,
        max_msg_size=CLIENT_FRAME_LIMIT,
        timeout=CLOSE_TIMEOUT,
    )
    try:
        await browser.prepare(request)
        transport = request.transport
        if transport is None:  # the browser left during the handshake
            return browser
        request.app[RELAYS].add(browser)
        await _relay_both_ways(browser, upstream, transport, outbox_bytes=settings.outbox_bytes)
    finally:
        request.app[RELAYS].discard(browser)
        await upstream.close()
    return browser


async def _connect_upstream(
    session: aiohttp.ClientSession, backend_urls: tuple[str, ...], query_string: str
) -> aiohttp.ClientWebSocketResponse | None:
    for base in backend_urls:
        url = URL(f"{base}/ws?{query_string}" if query_string else f"{base}/ws", encoded=True)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await session.ws_connect(
                    url,
                    heartbeat=HEARTBEAT,
                    max_msg_size=0,  # the backend is trusted; `joined` with history can be big
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status in _REFUSALS:
                raise _REFUSALS[exc.status](text="access refused by the backend\n") from None
            # Never the exception itself: its repr holds the URL, and the URL the user's token.
            status = exc.status if isinstance(exc, aiohttp.ClientResponseError) else None
            log.warning(
                "backend refused /ws",
                extra={"backend": base, "error": type(exc).__name__, "status": status},
            )
    return None


async def _relay_both_ways(
    browser: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    transport: asyncio.Transport,
    *,
    outbox_bytes: int,
) -> None:
    to_backend = asyncio.create_task(_relay_to_backend(browser, upstream))
    to_browser = asyncio.create_task(
        _relay_to_browser(upstream, browser, transport, outbox_bytes=outbox_bytes)
    )
    # Whichever side ends first closes the other with its close code, which ends the other
    # relay; the wait is bounded in case the other side never answers the close.
    await asyncio.wait((to_backend, to_browser), return_when=asyncio.FIRST_COMPLETED)
    _, late = await asyncio.wait((to_backend, to_browser), timeout=CLOSE_TIMEOUT * 2)
    for task in late:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _relay_to_backend(
    browser: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    """Browser frames to the backend; a slow backend slows this browser alone."""
    with contextlib.suppress(ConnectionError):
        while (message := await browser.receive()).type in _DATA:
            if message.type is WSMsgType.TEXT:
                await upstream.send_str(message.data)
            else:
                await upstream.send_bytes(message.data)  # the backend answers it with an error
    code, reason = _close_of(browser, message)
    with contextlib.suppress(ConnectionError):
        await upstream.close(code=code, message=reason)


async def _relay_to_browser(
    upstream: aiohttp.ClientWebSocketResponse,
    browser: web.WebSocketResponse,
    transport: asyncio.Transport,
    *,
    outbox_bytes: int,
) -> None:
    """Backend frames to the browser, written to its transport without waiting (as the
    backend writes to its clients, `connection.py`): a browser with more than `outbox_bytes`
    pending is cut here with 4008. Waiting for it instead would stop this relay reading the
    backend, which would then cut the relay, and its close frame, queued behind everything
    the browser has not read, would never reach the browser."""
    while (message := await upstream.receive()).type in _DATA:
        wire = wsframe.encode_text(
            message.data.encode() if message.type is WSMsgType.TEXT else message.data
        )
        pending = transport.get_write_buffer_size()
        if pending and pending + len(wire) > outbox_bytes:
            await _cut(browser, transport)
            return
        transport.write(wire)
    code, reason = _close_of(upstream, message)
    with contextlib.suppress(ConnectionError):
        await browser.close(code=code, message=reason)


def _close_of(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, last: aiohttp.WSMessage
) -> tuple[int, bytes]:
    """The close code and reason to pass on from a side that ended with `last`."""
    code = source.close_code
    if code is None or code in _UNSENDABLE or last.type is WSMsgType.CLOSED:
        # Lost without a close frame (aiohttp reports an end of stream as 1000): reconnect.
        return closecodes.SERVICE_RESTART, b""
    reason = last.extra if last.type is WSMsgType.CLOSE and isinstance(last.extra, str) else ""
    return code, reason.encode()


async def _cut(browser: web.WebSocketResponse, transport: asyncio.Transport) -> None:
    """Close a slow browser without waiting for it to read: the close frame queues behind what
    is pending and gets CLOSE_TIMEOUT to get through, then the TCP connection is dropped."""
    asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)
    with contextlib.suppress(ConnectionError):
        await browser.close(code=closecodes.SLOW_CONSUMER, message=b"slow consumer", drain=False)
