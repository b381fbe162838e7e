"""Abuse and its limits on a real backend (memory broker): what closes a connection with 1008,
what does not, and that nothing a client sends after the close is decided takes effect."""

from __future__ import annotations

import asyncio

import orjson

from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.support.chatclient import ChatClient
from tests.support.polling import eventually
from tests.support.rawws import open_raw_websocket, text_frame


async def backend(spawn_chat: SpawnChat) -> ChatProcess:
    process = spawn_chat("backend")
    await asyncio.to_thread(process.wait_ready)
    return process


async def test_pings_between_bad_frames_do_not_excuse_them(spawn_chat: SpawnChat) -> None:
    server = await backend(spawn_chat)
    abuser = await ChatClient.connect(server.url)
    try:
        for _ in range(60):
            if abuser.closed.done():
                break
            await abuser.ws.send_str("not json")
            await abuser.ws.send_str('{"type": "ping"}')
        assert await abuser.wait_closed() == 1008
    finally:
        await abuser.close()


async def test_nothing_sent_after_the_close_is_decided_takes_effect(spawn_chat: SpawnChat) -> None:
    server = await backend(spawn_chat)
    # One write: a join, 50 bad frames, then a send that must never happen.
    join = orjson.dumps({"type": "join", "room": "lobby"})
    late = orjson.dumps({"type": "send", "room": "lobby", "text": "after 1008", "ref": "late"})
    burst = text_frame(join) + b"".join(text_frame(b"nope") for _ in range(50)) + text_frame(late)
    _, writer = await open_raw_websocket(server.port, query="name=abuser")
    writer.write(burst)
    await writer.drain()
    witness = await ChatClient.connect(server.url, name="witness")
    try:
        # The abuser's session ends (its close times out: it never reads), then the room's
        # log is what the witness sees.
        await eventually(lambda: server.stats()["connections"] == 1, what="abuser gone")
        joined = await witness.join("lobby")
        assert joined["history"] == []
    finally:
        writer.close()
        await witness.close()


async def test_a_hundred_joins_at_once_are_rate_limited_not_cut(spawn_chat: SpawnChat) -> None:
    """What a client in 100 rooms does when it reconnects: the excess is refused with
    `rate_limited`, which is not abuse, and the client joins them all by retrying."""
    server = await backend(spawn_chat)
    client = await ChatClient.connect(server.url, name="busy")
    rooms = {f"room-{n:03d}" for n in range(100)}
    try:
        for room in sorted(rooms):
            await client.send({"type": "join", "room": room})
        pending = set(rooms)
        async with asyncio.timeout(60):
            while pending:
                frame = await client.expect_any("joined", "error")
                if frame["type"] == "joined":
                    pending.discard(frame["room"])
                else:
                    assert frame["code"] == "rate_limited", frame
                    await asyncio.sleep(0.1)
                    await client.send({"type": "join", "room": frame["room"]})
        assert not client.closed.done()
        assert set(server.stats()["rooms"]) >= rooms
    finally:
        await client.close()
