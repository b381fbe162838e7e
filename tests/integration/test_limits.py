"""Limits of the HTTP and WebSocket surface on real processes (memory broker): frame sizes,
handshakes and connection caps, and what the processes log about them."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from chatserver import contract
from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.support.chatclient import ChatClient


async def started(*processes: ChatProcess) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in processes))


def padded_ping(size: int) -> str:
    """A `ping` frame of exactly `size` bytes."""
    head = '{"type":"ping","pad":"'
    return head + "x" * (size - len(head) - 2) + '"}'


@pytest.mark.parametrize("via", ["backend", "frontend"])
async def test_a_frame_of_exactly_the_limit_is_accepted_and_one_byte_more_closes(
    spawn_chat: SpawnChat, via: str
) -> None:
    backend = spawn_chat("backend")
    front = spawn_chat("frontend", backend_urls=[backend.url])
    await started(backend, front)
    url = backend.url if via == "backend" else front.url
    client = await ChatClient.connect(url)
    try:
        limit = contract.DEFAULT_MAX_FRAME_BYTES
        await client.ws.send_str(padded_ping(limit))
        await client.expect("pong")
        await client.ws.send_str(padded_ping(limit + 1))
        assert await client.wait_closed() == 1009
    finally:
        await client.close()


@pytest.mark.parametrize("command", ["backend", "frontend"])
async def test_an_oversized_request_line_is_a_warning_without_its_target(
    spawn_chat: SpawnChat, command: str
) -> None:
    process = spawn_chat(command)
    await started(process)
    reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
    try:
        target = "/ws?name=" + "secretive" * 1000
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        async with asyncio.timeout(10):
            assert b" 400 " in await reader.readline()
    finally:
        writer.close()
    [line] = [line for line in process.log_text().splitlines() if "aiohttp.server" in line]
    entry = orjson.loads(line)
    assert entry["level"] == "warning"
    assert "secretive" not in line
    assert entry["error"] == "LineTooLong"
