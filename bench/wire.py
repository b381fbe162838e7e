"""The wire protocols the load generator speaks, sans I/O: text frames in, events out.

Every server is driven through the same raw aiohttp WebSocket, so the generator pays the same
per-frame cost on each side; only the framing differs:

- chatserver: protocol v1 of DESIGN.md section 4 (JSON objects, several per frame when the
  server batches them with `\\n`).
- python-socketio: Engine.IO v4 packets carrying Socket.IO v5 packets over
  `/socket.io/?EIO=4&transport=websocket` (one packet per WebSocket frame). Engine.IO opens with
  `0{...}`, the client then connects the default namespace with `40`; `2` is the server's ping,
  answered `3`; `42[...]` is an event and `43<id>[...]` the acknowledgement of an event the
  client sent with id `<id>`.
- Centrifugo: its JSON client protocol (v2) on `/connection/websocket`. The client speaks first
  (`{"id":1,"connect":{}}`); commands carry an `id` that their reply repeats, but a reply names
  neither the channel nor the publication, so a `CentrifugoWire` remembers what each pending id
  was for: one instance per connection. Publications arrive as `{"push":{"channel":..,"pub":
  {"data":..,"offset":..}}}`; an empty reply `{}` is the server's ping, answered `{}`. Several
  replies may share a frame, one per line. A client that lost its server resubscribes with
  Centrifugo's own recovery: `{"subscribe":{"channel":..,"recover":true,"offset":<the last
  offset it got>,"epoch":<the channel's epoch from its first subscribe reply>}}`, answered with
  `recovered`, `was_recovering`, the missed `publications`, `epoch` and `offset`.

A message's `text` carries its send time (`encode_text`), so receivers measure end-to-end
latency without any clock other than the generator's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

WARMUP_PREFIX: Final = "warmup "
"""Start of the text of the messages sent before the measurement (followed by the sender's
index) to prove that fan-out works end to end, from every sender to every member."""


class WireError(Exception):
    """The server said something the benchmark cannot go on with (a refusal or an error)."""


@dataclass(frozen=True, slots=True)
class Ready:
    """The session is open: the client may join rooms."""


@dataclass(frozen=True, slots=True)
class Delivered:
    text: str
    id: str
    """The message's id, the same on every server (chatserver: its room log's offset)."""


@dataclass(frozen=True, slots=True)
class Joined:
    room: str
    history: tuple[Delivered, ...] = ()
    """Messages replayed by the join, in order (chatserver only)."""
    truncated: bool = False
    """Messages after `since` were not all given back: chatserver's `truncated` (no longer
    retained); Centrifugo's recovery answered without `recovered: true`."""


@dataclass(frozen=True, slots=True)
class Acked:
    ref: str
    id: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The server answered a frame with an error; `ref` names the `send` it answers."""

    code: str
    message: str
    ref: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame the client must send back at once (a handshake step or a pong)."""

    frame: str


Event = Ready | Joined | Acked | Delivered | Refused | Reply


class Wire(Protocol):
    """How one server family is spoken to by one connection; no method does I/O."""

    name: str

    def path(self, *, client_id: str) -> str:
        """Path and query of the WebSocket URL for one client."""
        ...

    def hello(self, *, client_id: str, seq: int) -> str | None:
        """The frame the client sends first, when the protocol opens with the client."""
        ...

    def join(self, room: str, *, seq: int, since: str | None = None) -> str:
        """The frame that joins `room`; `seq` is unique per connection. With `since` (a message
        id), the join asks for every retained message after it."""
        ...

    def send(self, *, room: str, text: str, ref: str, seq: int) -> str:
        """The frame that publishes `text` to `room`, answered by `Acked(ref)`."""
        ...

    def parse(self, data: str) -> list[Event]:
        """Events in one server text frame; raises `WireError` when the session is refused."""
        ...


def encode_text(sent_ns: int) -> str:
    """A message text carrying its send time (the generator's monotonic clock, ns)."""
    return str(sent_ns)


def encode_warmup(sender: int) -> str:
    return f"{WARMUP_PREFIX}{sender}"


def decode_text(text: str) -> int | None:
    """The send time carried by a measured message, None for a warmup message."""
    return None if text.startswith(WARMUP_PREFIX) else int(text)


def warmup_sender(text: str) -> int:
    """The sender index carried by a warmup message."""
    return int(text.removeprefix(WARMUP_PREFIX))


class ChatWire:
    """chatserver's protocol v1."""

    name = "chatcluster"

    def path(self, *, client_id: str) -> str:
        return f"/ws?name={client_id}&client={client_id}"

    def hello(self, *, client_id: str, seq: int) -> str | None:
        return None  # the server opens with `welcome`

    def join(self, room: str, *, seq: int, since: str | None = None) -> str:
        frame = {"type": "join", "room": room}
        if since is not None:
            frame["since"] = since
        return orjson.dumps(frame).decode()

    def send(self, *, room: str, text: str, ref: str, seq: int) -> str:
        return orjson.dumps({"type": "send", "room": room, "text": text, "ref": ref}).decode()

    def parse(self, data: str) -> list[Event]:
        events: list[Event] = []
        for line in data.split("\n"):
            frame = orjson.loads(line)
            kind = frame.get("type")
            if kind == "message":
                events.append(_delivered(frame))
            elif kind == "ack":
                events.append(Acked(frame["ref"], frame["id"]))
            elif kind == "joined":
                history = tuple(_delivered(message) for message in frame["history"])
                events.append(Joined(frame["room"], history, frame["truncated"]))
            elif kind == "welcome":
                events.append(Ready())
            elif kind == "error":
                events.append(Refused(frame["code"], frame["message"], frame.get("ref")))
            # presence, pong: nothing to measure.
        return events


def _delivered(message: dict[str, Any]) -> Delivered:
    return Delivered(message["text"], message["id"])


_ACK: Final = re.compile(r"43(\d+)(.*)", re.DOTALL)


class SocketIOWire:
    """Engine.IO v4 / Socket.IO v5 over a plain WebSocket, default namespace."""

    name = "python-socketio"

    def path(self, *, client_id: str) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    def hello(self, *, client_id: str, seq: int) -> str | None:
        return None  # Engine.IO opens with the server's `0{...}`

    def join(self, room: str, *, seq: int, since: str | None = None) -> str:
        if since is not None:
            raise ValueError("python-socketio keeps no history: a join cannot ask `since`")
        return _event(seq, "join", room)

    def send(self, *, room: str, text: str, ref: str, seq: int) -> str:
        return _event(seq, "send", {"room": room, "text": text, "ref": ref})

    def parse(self, data: str) -> list[Event]:
        if data.startswith("42"):
            name, payload = orjson.loads(data[2:])
            return [Delivered(payload["text"], payload["id"])] if name == "message" else []
        if match := _ACK.fullmatch(data):
            (answer,) = orjson.loads(match.group(2))
            return (
                [Joined(answer["room"])]
                if "room" in answer
                else [Acked(answer["ref"], answer["id"])]
            )
        if data == "2":
            return [Reply("3")]
        if data.startswith("40"):
            return [Ready()]
        if data.startswith("0"):
            return [Reply("40")]
        if data.startswith(("41", "44", "1")):
            raise WireError(f"socket.io refused or closed the session: {data[:200]}")
        return []


def _event(seq: int, name: str, payload: Any) -> str:
    return f"42{seq}" + orjson.dumps([name, payload]).decode()


class CentrifugoWire:
    """Centrifugo's JSON client protocol; keeps the pending command ids of one connection."""

    name = "centrifugo"

    def __init__(self) -> None:
        self._pending: dict[int, tuple[str, str]] = {}
        """Command id -> (`connect` | `subscribe` | `recover` | `publish`, the channel or the
        send's ref)."""
        self._epochs: dict[str, str] = {}
        """Channel -> its stream's epoch, from the last subscribe reply: offsets count within
        an epoch, so a recovery names both. Kept across the client's connections."""

    def path(self, *, client_id: str) -> str:
        return "/connection/websocket"

    def hello(self, *, client_id: str, seq: int) -> str | None:
        self._pending[seq] = ("connect", client_id)
        return _command(seq, "connect", {"name": client_id})

    def join(self, room: str, *, seq: int, since: str | None = None) -> str:
        if since is None:
            self._pending[seq] = ("subscribe", room)
            return _command(seq, "subscribe", {"channel": room})
        if room not in self._epochs:
            raise ValueError(f"no epoch known for {room!r}: nothing to recover from")
        self._pending[seq] = ("recover", room)
        recovery = {"recover": True, "offset": int(since), "epoch": self._epochs[room]}
        return _command(seq, "subscribe", {"channel": room, **recovery})

    def send(self, *, room: str, text: str, ref: str, seq: int) -> str:
        self._pending[seq] = ("publish", ref)
        return _command(seq, "publish", {"channel": room, "data": {"text": text}})

    def parse(self, data: str) -> list[Event]:
        return [event for line in data.split("\n") if (event := self._reply(line)) is not None]

    def _reply(self, line: str) -> Event | None:
        reply = orjson.loads(line)
        if not reply:
            return Reply("{}")  # the server's ping
        if "push" in reply:
            push = reply["push"]
            if "pub" in push:
                return _publication(push["pub"])
            if "disconnect" in push:
                raise WireError(f"centrifugo disconnected the client: {push['disconnect']}")
            return None  # join/leave and the like: nothing to measure
        kind, subject = self._pending.pop(reply["id"])
        if "error" in reply:
            error = reply["error"]
            # A temporary error may be retried, as the contract lets chatserver's clients do.
            code = "unavailable" if error.get("temporary") else str(error["code"])
            return Refused(code, error.get("message", ""), subject if kind == "publish" else None)
        if kind == "connect":
            return Ready()
        if kind in ("subscribe", "recover"):
            return self._subscribed(subject, reply["subscribe"], recovering=kind == "recover")
        return Acked(subject, "")  # a publish reply carries no offset

    def _subscribed(self, channel: str, result: dict[str, Any], *, recovering: bool) -> Joined:
        # Fields left at their zero value are omitted (protobuf's JSON): a missing `recovered`
        # is false.
        if epoch := result.get("epoch"):
            self._epochs[channel] = epoch
        replayed = tuple(_publication(pub) for pub in result.get("publications", ()))
        lost = recovering and not (result.get("was_recovering") and result.get("recovered"))
        return Joined(channel, replayed, truncated=lost)


def _command(seq: int, method: str, params: dict[str, Any]) -> str:
    return orjson.dumps({"id": seq, method: params}).decode()


def _publication(pub: dict[str, Any]) -> Delivered:
    # Offsets exist when the channel keeps history, which the bench's config turns on.
    return Delivered(pub["data"]["text"], str(pub.get("offset", "")))


WIRES: Final[dict[str, Callable[[], Wire]]] = {
    "chatcluster": ChatWire,
    "python-socketio": SocketIOWire,
    "centrifugo-memory": CentrifugoWire,
    "centrifugo-redis": CentrifugoWire,
}
"""A new wire per connection, by system (as `bench.servers.SPECS` names them): Centrifugo's
differ only in their engine."""
