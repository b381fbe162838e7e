"""The peer: python-socketio on aiohttp, fanning out through RabbitMQ with AsyncAioPikaManager.

Idiomatic python-socketio, as its docs show it: an `AsyncServer` with the aio-pika client
manager (one fanout exchange; every server process consumes every message and emits it to its
local members of the room), rooms with `enter_room`, and a `send` event that emits the message to
the room and acknowledges the sender. The message has the same fields as a chatserver `message`
frame, so both servers move payloads of the same size.

Run as `python -m bench.peers.socketio_server` with PORT, RABBITMQ_URL, SOCKETIO_CHANNEL (the
exchange; one per benchmark run) and POD_NAME in the environment.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import socketio  # type: ignore[import-untyped]
from aiohttp import web


def create_app(*, rabbitmq_url: str, channel: str, pod: str) -> web.Application:
    manager = socketio.AsyncAioPikaManager(rabbitmq_url, channel=channel)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
    app = web.Application()
    sio.attach(app)
    ids = itertools.count(1)

    @sio.event  # type: ignore[untyped-decorator]
    async def join(sid: str, room: str) -> dict[str, str]:
        await sio.enter_room(sid, room)
        return {"room": room}

    @sio.event  # type: ignore[untyped-decorator]
    async def send(sid: str, data: dict[str, Any]) -> dict[str, str]:
        message_id = f"{pod}-{next(ids)}"
        message = {
            "type": "message",
            "room": data["room"],
            "id": message_id,
            "user": sid,
            "text": data["text"],
            "ts": time.time(),
            "pod": pod,
        }
        await sio.emit("message", message, room=data["room"])
        return {"ref": data["ref"], "id": message_id}

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app.router.add_get("/readyz", readyz)
    return app


def main() -> None:
    app = create_app(
        rabbitmq_url=os.environ["RABBITMQ_URL"],
        channel=os.environ.get("SOCKETIO_CHANNEL", "socketio"),
        pod=os.environ.get("POD_NAME", "socketio"),
    )
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None)


if __name__ == "__main__":
    main()
