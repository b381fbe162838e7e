"""Limits of the HTTP and WebSocket surface on real processes (memory broker): frame sizes,
handshakes and connection caps, and what the processes log about them."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from chatserver import contract
from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually


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


async def open_from(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to 127.0.0.1:`port` from the loopback `address` (127.0.0.0/8 is all
    ours), so a test can be one client among others."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))


async def closed_by_server(reader: asyncio.StreamReader, *, within: float) -> bytes:
    """Everything the server sent until it closed the connection."""
    async with asyncio.timeout(within):
        return await reader.read()


def lines_at(process: ChatProcess, level: str) -> list[str]:
    return [line for line in process.log_text().splitlines() if f'"level":"{level}"' in line]


@pytest.mark.parametrize("command", ["backend", "frontend"])
async def test_an_idle_or_half_sent_request_is_closed_after_the_handshake_timeout(
    spawn_chat: SpawnChat, command: str
) -> None:
    process = spawn_chat(command, env={"CHAT_HANDSHAKE_TIMEOUT_SECONDS": "1"})
    await started(process)
    idle_reader, idle = await open_from("127.0.0.1", process.port)
    half_reader, half = await open_from("127.0.0.1", process.port)
    half.write(b"GET /ws?name=slow HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websock")
    try:
        assert await closed_by_server(idle_reader, within=5) == b""
        assert await closed_by_server(half_reader, within=5) == b""
    finally:
        idle.close()
        half.close()


async def test_a_session_outlives_the_handshake_timeout(spawn_chat: SpawnChat) -> None:
    process = spawn_chat("backend", env={"CHAT_HANDSHAKE_TIMEOUT_SECONDS": "1"})
    await started(process)
    client = await ChatClient.connect(process.url)
    try:
        await asyncio.sleep(2)  # the timeout passing is the point of this test
        await client.send({"type": "ping"})
        await client.expect("pong")
    finally:
        await client.close()


@pytest.mark.parametrize("command", ["backend", "frontend"])
async def test_connections_over_the_per_address_cap_are_refused_and_logged_once(
    spawn_chat: SpawnChat, command: str
) -> None:
    process = spawn_chat(command, env={"CHAT_MAX_CONNECTIONS_PER_IP": "20"})
    await started(process)
    flood = [await open_from("127.0.0.2", process.port) for _ in range(60)]
    try:
        answers = await asyncio.gather(
            *(closed_by_server(reader, within=5) for reader, _ in flood[20:])
        )
        assert all(answer.startswith(b"HTTP/1.1 503") for answer in answers)
        assert await asyncio.to_thread(process.status, "/healthz") == 200  # another address
    finally:
        for _, writer in flood:
            writer.close()
    refusals = [line for line in lines_at(process, "warning") if "refused connections" in line]
    assert 1 <= len(refusals) <= 2, refusals


async def test_a_small_file_limit_neither_starves_healthz_nor_floods_the_log(
    spawn_chat: SpawnChat,
) -> None:
    process = spawn_chat("backend", env={"CHAT_HANDSHAKE_TIMEOUT_SECONDS": "2"}, nofile=256)
    await started(process)
    idle = [await open_from("127.0.0.2", process.port) for _ in range(300)]
    try:
        # Idle sockets are dropped after the handshake timeout, and the process never runs
        # out of file descriptors meanwhile: /healthz answers again within seconds.
        await eventually(lambda: process.status("/healthz") == 200, within=10, what="healthz")
    finally:
        for _, writer in idle:
            writer.close()
    assert lines_at(process, "error") == []
    assert len(lines_at(process, "warning")) <= 6
