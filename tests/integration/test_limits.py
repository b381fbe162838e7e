"""Limits of the HTTP and WebSocket surface on real processes (memory broker): frame sizes,
handshakes and connection caps, and what the processes log about them."""

from __future__ import annotations

import asyncio

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
