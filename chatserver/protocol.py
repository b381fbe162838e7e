"""Chat protocol v1, sans I/O: client frames parsed into typed values, server frames encoded.

This is the only module that reads client JSON. Parsing either returns one of the frame types
below or raises `ProtocolError` carrying the contract's error code; nothing else escapes, so a
malformed frame can never take its connection (or any other) down.

Server frames are encoded to bytes with orjson once; a `message` frame's bytes are reused as is
for every recipient and inside the `history` of `joined` frames. orjson escapes every control
character, so encoded frames never contain a raw newline and can be batched `\\n`-separated.

What backends exchange with each other (message records, presence beats) is not client
protocol: it lives in `interchange.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from chatserver import closecodes, contract
from chatserver.ids import MessageId, parse_id
from chatserver.interchange import ACTIONS, Change, Person

PROTOCOL_VERSION: Final = contract.PROTOCOL_VERSION
ROOM_NAME: Final = re.compile(contract.ROOM_NAME_PATTERN)
"""Room names (DESIGN section 4), matched with `fullmatch`."""
MAX_REF_CHARS: Final = 128
"""A `ref` is a client's dedupe key, typically a UUID; longer ones are refused."""
MAX_TOKEN_CHARS: Final = 8192
"""A `refresh` token longer than this is refused unread (aiohttp caps the request line of
`/ws?token=` near the same size)."""


class ProtocolError(Exception):
    """A client frame the server refuses; becomes an `error` frame with `code`, and with the
    `ref` of a refused `send` or the `room` of a refused `join`."""

    def __init__(
        self, code: str, message: str, *, ref: str | None = None, room: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.room = room


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    since: MessageId | None
    """The last message the client saw (its `id`), or None for the whole window. An id of any
    epoch, or of the format before epochs, is accepted here: whether it can be placed in the
    room's log is the log's question (`history.RoomHistory.recover`)."""
    updates: bool = False
    """The client takes `update` frames (added to v1 by issue 13): without it, a client of the
    release before, none reach it, in `history` or live."""
    dm_with: str | None = None
    """Set by the gate for a `dm` it admitted: the other person's `sub` (never parsed from a
    `join`, which may not name a direct-message room)."""


@dataclass(frozen=True, slots=True)
class DirectJoin:
    """Token mode: join the direct-message room shared with the person `other` (added to v1 by
    issue 13). The gate turns it into the `Join` of that room (`dm.dm_room`)."""

    other: str
    """The other person's `sub`, as their `members` entries and messages carry it."""
    since: MessageId | None
    updates: bool = False
    """As `Join.updates`."""


@dataclass(frozen=True, slots=True)
class RoomsQuery:
    """A page of the room directory (added to v1 by issue 13)."""

    query: str
    """Lowercased; "" lists every room."""
    offset: int
    """Matching rooms to skip."""


@dataclass(frozen=True, slots=True)
class Leave:
    room: str


@dataclass(frozen=True, slots=True)
class Send:
    room: str
    text: str
    ref: str


@dataclass(frozen=True, slots=True)
class Update:
    """An `edit`, `delete` or `react` of an earlier message (added to v1 by issue 13)."""

    room: str
    ref: str
    change: Change
    text: str
    """An edit's new text; empty otherwise."""


@dataclass(frozen=True, slots=True)
class Older:
    """A page of the room's messages before `before` (added to v1 by issue 13)."""

    room: str
    before: MessageId
    """The oldest message the client shows. Whether it can be placed in the room's log is the
    log's question, as for `Join.since`."""
    limit: int | None
    """Messages wanted (positive), None for the server's page size; the server cuts it to
    its configured maximum."""


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Refresh:
    """Token mode: a new token for this connection (verified by the backend, not here)."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Typing:
    """The client's person is typing in `room` (added to v1 by issue 13)."""

    room: str


ClientFrame = (
    Join | Leave | Send | Update | Older | Ping | Refresh | Typing | DirectJoin | RoomsQuery
)


def parse_client_frame(data: str | bytes, *, max_text_bytes: int) -> ClientFrame:
    """Parse one client text frame; raises `ProtocolError` for anything the contract refuses."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(closecodes.BAD_REQUEST, f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(closecodes.BAD_REQUEST, "a frame must be a JSON object")
    kind = obj.get("type")
    if kind == "send":
        return _parse_send(obj, max_text_bytes=max_text_bytes)
    if kind == "join":
        return Join(room=_room(obj), since=_since(obj), updates=_updates(obj))
    if kind == "dm":
        return _parse_direct_join(obj)
    if kind == "rooms":
        return _parse_rooms_query(obj)
    if kind == "leave":
        return Leave(room=_room(obj))
    if kind in ACTIONS:
        return _parse_update(obj, kind, max_text_bytes=max_text_bytes)
    if kind == "older":
        return _parse_older(obj)
    if kind == "ping":
        return Ping()
    if kind == "typing":
        return Typing(room=_room(obj))
    if kind == "refresh":
        token = obj.get("token")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise ProtocolError(
                closecodes.BAD_REQUEST, f"token: must be a string of 1-{MAX_TOKEN_CHARS} characters"
            )
        return Refresh(token=token)
    if not isinstance(kind, str):
        raise ProtocolError(closecodes.BAD_REQUEST, "type: missing or not a string")
    raise ProtocolError(closecodes.BAD_REQUEST, f"unknown type {kind[:40]!r}")


def _parse_send(obj: Mapping[str, Any], *, max_text_bytes: int) -> Send:
    ref = _ref(obj)
    room = _room_of_request(obj, ref)
    return Send(room=room, text=_text(obj, ref, max_text_bytes=max_text_bytes), ref=ref)


def _parse_update(obj: Mapping[str, Any], action: str, *, max_text_bytes: int) -> Update:
    ref = _ref(obj)
    room = _room_of_request(obj, ref)
    target = obj.get("id")
    target_id = parse_id(target) if isinstance(target, str) else None
    if target_id is None:
        raise ProtocolError(closecodes.BAD_REQUEST, "id: must be a message id (string)", ref=ref)
    text = _text(obj, ref, max_text_bytes=max_text_bytes) if action == "edit" else ""
    emoji, on = obj.get("emoji", ""), obj.get("on", False)
    if action == "react" and emoji not in contract.REACTIONS:
        raise ProtocolError(
            closecodes.BAD_REQUEST, f"emoji: must be one of {' '.join(contract.REACTIONS)}", ref=ref
        )
    if action == "react" and not isinstance(on, bool):
        raise ProtocolError(closecodes.BAD_REQUEST, "on: must be true or false", ref=ref)
    change = Change(
        target=target_id,
        action=action,  # type: ignore[arg-type]  # one of ACTIONS, as the caller checked
        emoji=emoji if action == "react" else "",
        on=on if action == "react" else False,
    )
    return Update(room=room, ref=ref, change=change, text=text)


def _ref(obj: Mapping[str, Any]) -> str:
    ref = obj.get("ref")
    if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REF_CHARS:
        raise ProtocolError(
            closecodes.BAD_REQUEST, f"ref: must be a string of 1-{MAX_REF_CHARS} characters"
        )
    return ref


def _room_of_request(obj: Mapping[str, Any], ref: str) -> str:
    """The room of a frame with a `ref`, whose refusal carries it."""
    try:
        return _room(obj)
    except ProtocolError as exc:
        raise ProtocolError(exc.code, exc.message, ref=ref) from None


def _text(obj: Mapping[str, Any], ref: str, *, max_text_bytes: int) -> str:
    text = obj.get("text")
    if not isinstance(text, str):
        raise ProtocolError(closecodes.BAD_REQUEST, "text: must be a string", ref=ref)
    if not text.strip():
        raise ProtocolError(closecodes.BAD_REQUEST, "text: must not be empty", ref=ref)
    # orjson has already refused lone surrogates, so the text always encodes.
    size = len(text.encode())
    if size > max_text_bytes:
        raise ProtocolError(
            closecodes.TOO_LARGE, f"text is {size} bytes, over {max_text_bytes}", ref=ref
        )
    return text


def _since(obj: Mapping[str, Any]) -> MessageId | None:
    since = obj.get("since")
    since_id = parse_id(since) if isinstance(since, str) else None
    if since is not None and since_id is None:
        raise ProtocolError(closecodes.BAD_REQUEST, "since: must be a message id (string)")
    return since_id


def _updates(obj: Mapping[str, Any]) -> bool:
    updates = obj.get("updates", False)
    if not isinstance(updates, bool):
        raise ProtocolError(closecodes.BAD_REQUEST, "updates: must be true or false")
    return updates


def _parse_direct_join(obj: Mapping[str, Any]) -> DirectJoin:
    other = obj.get("with")
    if not isinstance(other, str) or not 0 < len(other) <= contract.MAX_SUB_CHARS:
        raise ProtocolError(
            closecodes.BAD_REQUEST, f"with: must be a sub of 1-{contract.MAX_SUB_CHARS} characters"
        )
    return DirectJoin(other=other, since=_since(obj), updates=_updates(obj))


def _parse_rooms_query(obj: Mapping[str, Any]) -> RoomsQuery:
    query = obj.get("query", "")
    if not isinstance(query, str) or len(query) > contract.DIRECTORY_QUERY_MAX_CHARS:
        raise ProtocolError(
            closecodes.BAD_REQUEST,
            f"query: must be a string of at most {contract.DIRECTORY_QUERY_MAX_CHARS} characters",
        )
    offset = obj.get("offset", 0)
    if type(offset) is not int or not 0 <= offset <= contract.DIRECTORY_KNOWN_MAX:
        raise ProtocolError(
            closecodes.BAD_REQUEST,
            f"offset: must be a whole number from 0 to {contract.DIRECTORY_KNOWN_MAX}",
        )
    return RoomsQuery(query=query.strip().lower(), offset=offset)


def _parse_older(obj: Mapping[str, Any]) -> Older:
    room = _room(obj)
    before = obj.get("before")
    before_id = parse_id(before) if isinstance(before, str) else None
    if before_id is None:
        raise ProtocolError(closecodes.BAD_REQUEST, "before: must be a message id (string)")
    limit = obj.get("limit")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ProtocolError(closecodes.BAD_REQUEST, "limit: must be a positive whole number")
    return Older(room=room, before=before_id, limit=limit)


def _room(obj: Mapping[str, Any]) -> str:
    room = obj.get("room")
    if not isinstance(room, str):
        raise ProtocolError(closecodes.BAD_REQUEST, "room: must be a string")
    if not ROOM_NAME.fullmatch(room):
        raise ProtocolError(
            closecodes.INVALID_ROOM, f"room {room[:70]!r} does not match {ROOM_NAME.pattern}"
        )
    return room


# Server frames.


def encode_welcome(
    *,
    session: str,
    user: str,
    pod: str,
    users_online: int,
    rooms: Sequence[str],
    rate_per_second: float,
    rate_burst: int,
    owner: str,
    sub: str | None = None,
) -> bytes:
    """`rooms` (the cluster's always-present rooms), `rate` (this connection's token bucket,
    so a client can pace itself rather than be refused), `owner` (the digest this session's
    messages carry, `owners.owner_of`: a client knows which it may edit) and `sub` (token
    mode: the token's user id, which this session's messages carry) extend the contract's
    welcome frame."""
    frame: dict[str, object] = {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "session": session,
        "user": user,
        "pod": pod,
        "users_online": users_online,
        "rooms": list(rooms),
        "rate": {"per_second": rate_per_second, "burst": rate_burst},
        "owner": owner,
    }
    if sub is not None:
        frame["sub"] = sub
    return orjson.dumps(frame)


def encode_message(
    *,
    room: str,
    id: str,
    user: str,
    text: str,
    ts: float,
    pod: str,
    owner: str,
    sub: str | None = None,
) -> bytes:
    """`sub` (token mode: the sender's verified user id) extends the contract's message frame,
    so two people who chose one display name can be told apart; `owner` (issue 13) is the
    digest of who may edit it (`owners.owner_of`)."""
    frame: dict[str, object] = {
        "type": "message",
        "room": room,
        "id": id,
        "user": user,
        "text": text,
        "ts": ts,
        "pod": pod,
        "owner": owner,
    }
    if sub is not None:
        frame["sub"] = sub
    return orjson.dumps(frame)


def encode_update(
    *,
    room: str,
    id: str,
    change: Change,
    text: str,
    user: str,
    ts: float,
    pod: str,
    owner: str,
    sub: str | None = None,
) -> bytes:
    """An `edit`, `delete` or `react` as stored in the room's log (added to v1 by issue 13), for
    clients that joined with `updates`: they fold it into the message `target`."""
    frame: dict[str, object] = {
        "type": "update",
        "room": room,
        "id": id,
        "target": str(change.target),
        "action": change.action,
        "user": user,
        "ts": ts,
        "pod": pod,
        "owner": owner,
    }
    if change.action == "edit":
        frame["text"] = text
    elif change.action == "react":
        frame.update(emoji=change.emoji, on=change.on)
    if sub is not None:
        frame["sub"] = sub
    return orjson.dumps(frame)


def encode_joined(
    *,
    room: str,
    members: int,
    history: Iterable[bytes],
    truncated: bool,
    reset: bool,
    dm_with: str | None = None,
) -> bytes:
    """`history` holds encoded `message` frames, spliced in as they are (not re-encoded).
    `reset` (an extension of v1) says the `since` asked for is not in the room's log: `history`
    is the latest window, to replace whatever the client holds of the room. `with` (issue 13)
    answers a `dm`: the other person's `sub`, so the client knows whose room it is."""
    fields: dict[str, object] = {
        "type": "joined",
        "room": room,
        "members": members,
        "truncated": truncated,
        "reset": reset,
    }
    if dm_with is not None:
        fields["with"] = dm_with
    return _with_frames(fields, "history", history)


def encode_older(*, room: str, messages: Iterable[bytes], start: bool) -> bytes:
    """The answer to `older` (added to v1 by issue 13): `messages` are encoded `message`
    frames, oldest first, spliced in as they are; `start` says nothing older is retained."""
    return _with_frames({"type": "older", "room": room, "start": start}, "messages", messages)


def _with_frames(fields: Mapping[str, object], key: str, frames: Iterable[bytes]) -> bytes:
    """`fields` as a JSON object ending with `key`: a list of frames encoded already."""
    return b"".join(
        (orjson.dumps(fields)[:-1], b',"', key.encode(), b'":[', b",".join(frames), b"]}")
    )


def encode_rooms(*, query: str, offset: int, total: int, rooms: Sequence[tuple[str, int]]) -> bytes:
    """A page of the room directory (added to v1 by issue 13): `rooms` as (name, members)."""
    return orjson.dumps(
        {
            "type": "rooms",
            "query": query,
            "offset": offset,
            "total": total,
            "rooms": [{"room": name, "members": members} for name, members in rooms],
        }
    )


def encode_left(room: str) -> bytes:
    return orjson.dumps({"type": "left", "room": room})


def encode_ack(*, ref: str, id: str) -> bytes:
    return orjson.dumps({"type": "ack", "ref": ref, "id": id})


PONG: Final = orjson.dumps({"type": "pong"})


def encode_presence(*, users_online: int, rooms: Mapping[str, int]) -> bytes:
    return orjson.dumps({"type": "presence", "users_online": users_online, "rooms": rooms})


def encode_members(*, room: str, total: int, people: Sequence[Person], truncated: bool) -> bytes:
    """Who is in `room` (added to v1 by issue 13): `total` is the room's member count of
    `presence`; `people` the first by name, each once however many sessions they have."""
    return orjson.dumps(
        {
            "type": "members",
            "room": room,
            "total": total,
            "people": [
                {"user": person.name, "sub": person.sub} if person.sub else {"user": person.name}
                for person in people
            ],
            "truncated": truncated,
        }
    )


def encode_dm_call(*, room: str, other: str, user: str) -> bytes:
    """Someone (`other` their sub, `user` their display name) opened a direct message with this
    person (added to v1 by issue 13); `room` is its name."""
    return orjson.dumps({"type": "dm", "room": room, "with": other, "user": user})


def encode_typing(*, room: str, user: str, sub: str | None) -> bytes:
    """Someone else is typing in `room` (added to v1 by issue 13); `sub` in token mode."""
    frame = {"type": "typing", "room": room, "user": user}
    if sub is not None:
        frame["sub"] = sub
    return orjson.dumps(frame)


def encode_error(
    code: str, message: str, *, ref: str | None = None, room: str | None = None
) -> bytes:
    """`ref` answers a `send`; `room` (an extension of the contract) answers a `join`, so a
    client knows which of its joins was refused."""
    frame: dict[str, str] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    if room is not None:
        frame["room"] = room
    return orjson.dumps(frame)


def encode_reconnect(reason: str) -> bytes:
    return orjson.dumps({"type": "reconnect", "reason": reason})
