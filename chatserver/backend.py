"""The backend's aiohttp application: /ws sessions, health, readiness, stats and metrics.

`create_backend_app(settings, broker)` builds it; the broker connection, the presence loop and
the token expiry sweep run as `cleanup_ctx` background tasks for the app's whole life. Draining
(SIGTERM) is driven by `cli.py` through `drain_backend`, while the listening socket is still
open so `/readyz` can answer 503 during the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from chatserver import closecodes, protocol, wsframe
from chatserver.access import OPEN, Access, Identity
from chatserver.auth import (
    NameRefused,
    TokenRefused,
    TokenVerifier,
    open_identity,
    origin_allowed,
    refreshed_identity,
    token_identity,
)
from chatserver.broker.base import Broker
from chatserver.closecodes import CLOSE_TIMEOUT
from chatserver.connection import Connection
from chatserver.gate import Admitted, FrameGate
from chatserver.hub import Hub
from chatserver.metrics import CONTENT_TYPE, ChatMetrics
from chatserver.protocol import ProtocolError
from chatserver.settings import BackendSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Lifecycle:
    """Where the process is in its life, as far as clients and probes should know."""

    draining: bool = False
    """Set at SIGTERM: /readyz answers 503 and new /ws connections are refused."""


SETTINGS = web.AppKey("settings", BackendSettings)
BROKER = web.AppKey("broker", Broker)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", ChatMetrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
VERIFIER: web.AppKey[TokenVerifier | None] = web.AppKey("verifier")
"""Token mode's verifier; None in open mode."""


def create_backend_app(settings: BackendSettings, broker: Broker) -> web.Application:
    app = web.Application()
    add_backend(app, settings, broker)
    return app


def add_backend(app: web.Application, settings: BackendSettings, broker: Broker) -> None:
    """Install the backend's routes and background tasks on `app` (`chatserver dev` adds the
    UI routes beside them on the same app). Raises SettingsError for an unusable token key."""
    app[VERIFIER] = TokenVerifier.from_settings(settings.auth)
    metrics = ChatMetrics()
    app[SETTINGS] = settings
    app[BROKER] = broker
    app[METRICS] = metrics
    app[LIFECYCLE] = Lifecycle()
    app[HUB] = Hub(broker, pod=settings.pod, settings=settings.chat, metrics=metrics)
    app.router.add_get("/ws", handle_ws)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/api/stats", handle_stats)
    app.cleanup_ctx.append(_run_broker)


async def _run_broker(app: web.Application) -> AsyncIterator[None]:
    hub, broker = app[HUB], app[BROKER]
    await broker.start(hub)
    loops = [
        asyncio.create_task(hub.presence.run(), name="presence"),
        asyncio.create_task(hub.run_expiry(), name="token-expiry"),
    ]
    yield
    for loop in loops:
        loop.cancel()
    for loop in loops:
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    await hub.presence.announce_gone()
    await broker.close()


async def drain_backend(app: web.Application, *, budget: float) -> None:
    """SIGTERM: not ready at once, every client told to reconnect and closed with 1012 behind
    what was already sent to it, all within `budget` seconds. Closes run concurrently, one task
    per connection."""
    app[LIFECYCLE].draining = True
    hub = app[HUB]
    hub.drain("server restarting")
    log.info("draining", extra={"connections": hub.stats()["connections"]})
    try:
        async with asyncio.timeout(budget):
            await hub.wait_empty()
    except TimeoutError:
        log.warning("drain budget spent; cutting the sessions left")
        hub.cut_all("server restarting")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await hub.wait_empty()


async def handle_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def handle_readyz(request: web.Request) -> web.Response:
    if request.app[LIFECYCLE].draining:
        return web.Response(status=503, text="draining\n")
    hub = request.app[HUB]
    if not hub.broker_connected:
        return web.Response(status=503, text="broker unavailable\n")
    if (blocked := hub.broker_blocked) is not None:
        # Sends and new rooms would be refused: let the load balancer pick another backend.
        return web.Response(status=503, text=f"broker blocked: {blocked}\n")
    if hub.room_limit_reached:
        # Still ready: every room that exists works, on this backend as on any other.
        return web.Response(text="ready; new rooms refused: the cluster holds all it may\n")
    return web.Response(text="ready\n")


async def handle_metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def handle_stats(request: web.Request) -> web.Response:
    # Anyone who reaches the port may ask; in token mode, where rooms are access-controlled,
    # their names (which rooms exist, how busy) are not for them.
    tokens = request.app[VERIFIER] is not None
    return web.json_response(request.app[HUB].stats(room_names=not tokens))


async def handle_ws(request: web.Request) -> web.StreamResponse:
    """One session, top to bottom: check (origin, then token), accept, welcome, read loop,
    clean up. Every refusal happens before the upgrade, as a plain HTTP answer."""
    settings, hub = request.app[SETTINGS], request.app[HUB]
    if request.app[LIFECYCLE].draining:
        raise web.HTTPServiceUnavailable(text="draining: connect to another backend\n")
    if not origin_allowed(
        request.headers.get("Origin"), host=request.host, allowed=settings.chat.allowed_origins
    ):
        raise web.HTTPForbidden(text="origin not allowed\n")
    verifier = request.app[VERIFIER]
    identity, access, expires_at = _admit(request, verifier)
    ws = web.WebSocketResponse(
        # Per-connection zlib state would forbid sharing one encoded frame, and connection.py
        # relies on aiohttp writing uncompressed frames synchronously.
        compress=False,
        heartbeat=settings.chat.heartbeat_seconds,
        max_msg_size=wsframe.reader_limit(settings.chat.max_frame_bytes),
        timeout=CLOSE_TIMEOUT,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the client left during the handshake
        return ws
    connection = Connection(
        ws,
        transport=transport,
        session_id=uuid.uuid4().hex,
        identity=identity,
        access=access,
        expires_at=expires_at,
        outbox_bytes=settings.chat.outbox_bytes,
        on_slow=hub.on_slow_consumer,
    )
    gate = FrameGate(settings.chat, tokens=verifier is not None)
    hub.attach(connection)
    try:
        await _read_loop(connection, gate, hub, request.app[METRICS], verifier)
    finally:
        hub.detach(connection)
        await connection.stop()
    return ws


def _admit(
    request: web.Request, verifier: TokenVerifier | None
) -> tuple[Identity, Access, float | None]:
    """Who the session is, what it may do and until when; raises 401 for a missing or refused
    token."""
    if verifier is None:
        try:
            return open_identity(request.query), OPEN, None
        except NameRefused as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
    token = request.query.get("token")
    try:
        if not token:
            raise TokenRefused("token required: /ws?token=<JWT>")
        grant = verifier.verify(token)
    except TokenRefused as exc:
        raise web.HTTPUnauthorized(
            text=f"{exc}\n", headers={"WWW-Authenticate": 'Bearer realm="chatcluster"'}
        ) from None
    return token_identity(grant, request.query), grant.access, grant.expires_at


async def _read_loop(
    connection: Connection,
    gate: FrameGate,
    hub: Hub,
    metrics: ChatMetrics,
    verifier: TokenVerifier | None,
) -> None:
    async for message in connection.ws:  # ends on close; over-long frames close with 1009
        # Once a close is decided (abuse, drain, expiry, a slow-consumer cut), frames still on
        # their way have no effect: the session is over, only the close handshake is left.
        if message.type is WSMsgType.ERROR or not connection.open:
            return
        try:
            data = message.data if message.type is WSMsgType.TEXT else None
            await _dispatch(gate.admit(data, connection), connection, hub, gate, verifier)
        except ProtocolError as exc:
            metrics.client_errors.labels(exc.code).inc()
            error = protocol.encode_error(exc.code, exc.message, ref=exc.ref, room=exc.room)
            connection.send(error)
            if gate.refused(exc.code):
                connection.close_soon(closecodes.POLICY_VIOLATION, "too many bad frames")


async def _dispatch(
    frame: Admitted,
    connection: Connection,
    hub: Hub,
    gate: FrameGate,
    verifier: TokenVerifier | None,
) -> None:
    """Carry out a frame the gate admitted."""
    # A client's sends are handled one at a time, in order: its messages keep their order in
    # the room. Many clients still append concurrently.
    if isinstance(frame, protocol.Ping):
        connection.send(protocol.PONG)
    elif isinstance(frame, protocol.Send):
        await hub.send(connection, frame)
    elif isinstance(frame, protocol.Update):
        await hub.update(connection, frame)
    elif isinstance(frame, protocol.Join):
        await hub.join(
            connection,
            frame.room,
            since=frame.since,
            updates=frame.updates,
            dm_with=frame.dm_with,
        )
    elif isinstance(frame, protocol.Leave):
        hub.leave(connection, frame.room)
    elif isinstance(frame, protocol.RoomsQuery):
        hub.rooms(connection, frame)
    elif isinstance(frame, protocol.Older):
        await hub.older(connection, frame)
    elif isinstance(frame, protocol.Typing):
        # Ephemeral: one per room per interval is relayed, the rest dropped unanswered.
        if gate.typing_due(frame.room):
            await hub.typing(connection, frame.room)
    else:
        assert verifier is not None, "the gate admits a refresh only where tokens are used"
        _refresh(frame, connection, hub, verifier)


def _refresh(
    frame: protocol.Refresh, connection: Connection, hub: Hub, verifier: TokenVerifier
) -> None:
    """Verify the new token as at connect time; a refused one changes nothing."""
    try:
        grant = verifier.verify(frame.token)
        identity = refreshed_identity(connection.identity, grant)
    except TokenRefused as exc:
        raise ProtocolError(closecodes.FORBIDDEN, str(exc)) from None
    hub.reauthorize(connection, identity, grant.access, grant.expires_at)
