"""A connection's writes over real sockets on 127.0.0.1: frames straight to the transport, the
close after them, and the transport's write buffer as the slow-consumer bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from chatserver import closecodes, wsframe
from chatserver.access import Identity
from chatserver.closecodes import CLOSE_TIMEOUT
from chatserver.connection import Connection
from tests.support.rawws import open_raw_websocket


@dataclass
class Served:
    """The server side of each accepted WebSocket, handed to the test."""

    port: int
    outbox_bytes: int = 64 * 1024
    connections: asyncio.Queue[tuple[Connection, asyncio.Transport]] = field(
        default_factory=asyncio.Queue
    )
    slow: list[Connection] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a handler has stopped its connection."""


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    state = Served(port=0)

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        connection = Connection(
            ws,
            transport=transport,
            session_id="s1",
            identity=Identity(user="u", name="u", client="c"),
            outbox_bytes=state.outbox_bytes,
            on_slow=state.slow.append,
        )
        state.connections.put_nowait((connection, transport))
        async for _ in ws:
            pass
        await connection.stop()
        state.ended.set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


async def accepted(served: Served) -> tuple[Connection, asyncio.Transport]:
    async with asyncio.timeout(5):
        return await served.connections.get()


async def test_frames_arrive_in_order_and_the_close_follows_them(served: Served) -> None:
    payloads = [b'{"n":1}', b'{"n":"' + b"2" * 1000 + b'"}', b'{"n":"' + b"3" * 70_000 + b'"}']
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{served.port}/ws") as ws,
    ):
        connection, _ = await accepted(served)
        connection.send(payloads[0])
        shared = wsframe.encode_text(payloads[1])
        connection.send_wire(shared)
        connection.send(payloads[2])
        connection.close_soon(closecodes.SERVICE_RESTART, "bye")
        connection.send(b'{"after":"close"}')  # dropped: a close was requested
        received = [await ws.receive() for _ in payloads]
        closing = await ws.receive()
    assert [m.data.encode() for m in received] == payloads
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert (closing.data, closing.extra) == (closecodes.SERVICE_RESTART, "bye")
    assert not connection.open


async def test_an_idle_client_takes_one_frame_larger_than_its_bound(served: Served) -> None:
    served.outbox_bytes = 1024
    big = b'{"text":"' + b"x" * 200_000 + b'"}'
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{served.port}/ws", max_msg_size=0) as ws,
    ):
        connection, _ = await accepted(served)
        connection.send(big)
        message = await ws.receive()
    assert message.data.encode() == big
    assert served.slow == []


async def test_a_client_that_does_not_read_is_cut_past_its_bound(served: Served) -> None:
    _, writer = await open_raw_websocket(served.port, receive_buffer=4096)
    try:
        connection, transport = await accepted(served)
        frame = wsframe.encode_text(b'{"text":"' + b"x" * 50_000 + b'"}')
        sent = 0
        # The kernel's buffers fill first (a few MiB at most), then the transport's.
        while sent < 400 and not served.slow:
            connection.send_wire(frame)
            sent += 1
            await asyncio.sleep(0)  # let the loop flush what the kernel takes
        assert served.slow == [connection], f"not cut after {sent} frames of 50 kB"
        assert not connection.open
        # Checked before each write: at most the bound (plus the close frame) is pending.
        assert transport.get_write_buffer_size() <= served.outbox_bytes + 16
        pending = transport.get_write_buffer_size()
        connection.send_wire(frame)  # after the cut nothing more is written
        assert transport.get_write_buffer_size() == pending
        assert served.slow == [connection]
        async with asyncio.timeout(CLOSE_TIMEOUT + 1):  # the handler is never held longer
            await served.ended.wait()
        assert transport.is_closing()
    finally:
        writer.close()


async def test_aiohttp_writes_each_frame_whole_to_the_transport_we_write_to() -> None:
    """connection.py's safety argument, checked against the installed aiohttp: an uncompressed
    frame goes through `request.transport.write` (the transport this module writes to) within
    the first step of `send_frame`, so our frames and aiohttp's never interleave."""
    checked = asyncio.Event()
    problems: list[str] = []

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        writes: list[bytes] = []
        write = transport.write
        transport.write = lambda data: (writes.append(bytes(data)), write(data))[1]
        for payload, send in (
            (b"x" * 100, ws.send_bytes),  # header + message in one write
            (b"y" * 70_000, ws.send_bytes),  # header, then message
        ):
            writes.clear()
            step = send(payload)
            try:
                step.send(None)
                problems.append(f"send of {len(payload)} bytes suspended before it finished")
                step.close()
            except StopIteration:
                pass
            written = b"".join(writes)
            if written[2:].find(payload) < 0 or written[0] != 0x82:
                problems.append(f"frame of {len(payload)} bytes not written whole: {written[:8]!r}")
        writes.clear()
        step = ws.ping(b"p")
        try:
            step.send(None)
            problems.append("ping suspended before it finished")
            step.close()
        except StopIteration:
            pass
        if writes != [bytes((0x89, 1)) + b"p"]:
            problems.append(f"ping not written whole: {writes!r}")
        transport.write = write
        checked.set()
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with (
            asyncio.timeout(10),
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0) as ws,
        ):
            await checked.wait()
            async for _ in ws:
                pass
    finally:
        await runner.cleanup()
    assert problems == []
