"""A small WebSocket chat client for tests: connect, send frames, await the frames you expect.

A background task reads every server frame (splitting `\\n`-batched ones), keeps all `message`
frames in arrival order in `messages`, and queues the rest for `expect()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

Frame = dict[str, Any]
DEFAULT_TIMEOUT = 10.0
_refs = itertools.count(1)


class ChatClient:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._session = session
        self.ws = ws
        self.frames: list[Frame] = []
        """Frames not consumed by `expect()` yet (messages included)."""
        self.messages: list[Frame] = []
        """Every `message` frame received, in order."""
        self.closed = asyncio.get_running_loop().create_future()
        """Resolves with the close code once the server closed the connection."""
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.welcome: Frame = {}

    @classmethod
    async def connect(
        cls,
        base_url: str,
        *,
        name: str | None = None,
        client: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        within: float = DEFAULT_TIMEOUT,
    ) -> ChatClient:
        """Open /ws and wait for `welcome` (raises aiohttp.WSServerHandshakeError if refused)."""
        named = {k: v for k, v in (("name", name), ("client", client)) if v is not None}
        params = {**named, **(params or {})}
        session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(within):
                ws = await session.ws_connect(
                    f"{base_url}/ws", params=params, headers=headers, max_msg_size=0
                )
        except BaseException:
            await session.close()
            raise
        chat = cls(session, ws)
        chat.welcome = await chat.expect("welcome", within=within)
        return chat

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._session.close()

    async def send(self, frame: Frame) -> None:
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def expect(self, type_: str, within: float = DEFAULT_TIMEOUT, **fields: Any) -> Frame:
        """Consume and return the first unconsumed frame of this type with these field values."""
        return await self._take(
            lambda f: f.get("type") == type_ and all(f.get(k) == v for k, v in fields.items()),
            what=f"{type_} {fields}",
            within=within,
        )

    async def expect_any(self, *types: str, within: float = DEFAULT_TIMEOUT) -> Frame:
        """Consume and return the first unconsumed frame of any of these types."""
        return await self._take(lambda f: f.get("type") in types, what=str(types), within=within)

    async def join(self, room: str, *, since: str | None = None) -> Frame:
        frame: Frame = {"type": "join", "room": room}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        return await self.expect("joined", room=room)

    async def say(self, room: str, text: str, *, ref: str | None = None) -> Frame:
        """Send and wait for the answer to this ref: an `ack` or an `error`."""
        ref = ref or f"ref-{next(_refs)}"
        await self.send({"type": "send", "room": room, "text": text, "ref": ref})
        return await self.expect_answer(ref)

    async def expect_answer(self, ref: str, within: float = DEFAULT_TIMEOUT) -> Frame:
        return await self._take(
            lambda f: f.get("type") in ("ack", "error") and f.get("ref") == ref,
            what=ref,
            within=within,
        )

    async def _take(self, matches: Callable[[Frame], bool], *, what: str, within: float) -> Frame:
        def find() -> Frame | None:
            for i, frame in enumerate(self.frames):
                if matches(frame):
                    return self.frames.pop(i)
            return None

        async with asyncio.timeout(within), self._arrived:
            while (found := find()) is None:
                if self.closed.done():
                    raise ConnectionError(f"closed ({self.closed.result()}) awaiting {what}")
                await self._arrived.wait()
            return found

    async def wait_messages(self, count: int, within: float = DEFAULT_TIMEOUT) -> list[Frame]:
        """Until at least `count` messages arrived in total."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.messages) >= count or self.closed.done())
        if len(self.messages) < count:
            raise ConnectionError(f"closed after {len(self.messages)} of {count} messages")
        return self.messages

    async def wait_closed(self, within: float = DEFAULT_TIMEOUT) -> int:
        async with asyncio.timeout(within):
            return await asyncio.shield(self.closed)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frames = [orjson.loads(line) for line in message.data.split("\n")]
                async with self._arrived:
                    for frame in frames:
                        if frame.get("type") == "message":
                            self.messages.append(frame)
                        self.frames.append(frame)
                    self._arrived.notify_all()
        finally:
            if not self.closed.done():
                self.closed.set_result(self.ws.close_code)
            async with self._arrived:
                self._arrived.notify_all()
