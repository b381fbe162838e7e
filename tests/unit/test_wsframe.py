"""The server's WebSocket text frames: checked against the RFC by an independent reader, and
read by aiohttp's own client off a real socket for each of the three length encodings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from chatserver.wsframe import encode_text
from tests.unit.rfc6455 import text_frame_payload

# Each side of the two length-encoding boundaries, and the empty payload.
BOUNDARY_SIZES = [0, 1, 125, 126, 127, 0xFFFF, 0x10000, 0x10001]
HEADER_SIZE = {0: 2, 1: 2, 125: 2, 126: 4, 127: 4, 0xFFFF: 4, 0x10000: 10, 0x10001: 10}


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_the_length_takes_its_shortest_encoding(size: int) -> None:
    payload = b"a" * size
    wire = encode_text(payload)
    assert len(wire) == HEADER_SIZE[size] + size
    assert text_frame_payload(wire) == payload


@given(st.binary(max_size=300))
def test_any_payload_comes_back_whole(payload: bytes) -> None:
    assert text_frame_payload(encode_text(payload)) == payload


@given(st.integers(min_value=0, max_value=0x10100))
def test_any_size_gets_a_valid_header(size: int) -> None:
    assert len(text_frame_payload(encode_text(b"x" * size))) == size


@given(st.text(max_size=200))
def test_the_frame_ends_with_the_payload_unchanged(text: str) -> None:
    payload = text.encode()
    assert encode_text(payload).endswith(payload)


# One JSON-ish payload per length encoding (7-, 16- and 64-bit), with multi-byte UTF-8 in it.
PAYLOADS = [
    '{"type":"pong","text":"é"}',
    '{"text":"' + "ü" * 10_000 + '"}',
    '{"text":"' + "z" * 100_000 + '"}',
]


@pytest.fixture
async def frames_server() -> AsyncIterator[str]:
    """A WebSocket endpoint that writes the PAYLOADS as pre-encoded frames straight to the
    transport, as the backend does, then closes through aiohttp."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        assert request.transport is not None
        for payload in PAYLOADS:
            request.transport.write(encode_text(payload.encode()))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_aiohttp_client_reads_every_length_encoding(frames_server: str) -> None:
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.ws_connect(frames_server) as ws,
    ):
        received = [await ws.receive() for _ in PAYLOADS]
        closing = await ws.receive()
    assert [message.type for message in received] == [aiohttp.WSMsgType.TEXT] * len(PAYLOADS)
    assert [message.data for message in received] == PAYLOADS
    assert closing.type is aiohttp.WSMsgType.CLOSE
