"""What backends exchange with each other through the broker, sans I/O: message records,
presence beats and typing signals.

Clients never see these bytes (their protocol is `protocol.py`); every backend of one cluster
reads and writes them, so a change here must stay readable by the backends of the previous
release during a rolling update.

- A *message record* is one accepted `send` as appended to a room's log. The broker stores and
  delivers its bytes untouched; every backend that follows the room decodes the same bytes at
  the same offset. Since issue 13 an *update record* (an accepted `edit`, `delete` or `react`)
  is a message record with a `change` that names an earlier message of the log; it has its own
  version, so the backends of the release before skip it rather than show it as a message.
- A *presence beat* is what one backend pod reports about its own sessions, every few seconds
  and soon after changes; never stored. Since issue 13 it also names (a bounded list of) the
  people in each room, under a key older backends ignore.
- A *typing signal* says that one session is typing in a room; like beats, never stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeGuard, get_args

import orjson

from chatserver.contract import DIRECTORY_SYNC_MAX
from chatserver.ids import MessageId, parse_id

RECORD_VERSION: Final = 1
"""The `v` of a message record; a backend skips (and logs) records of any other version."""
UPDATE_RECORD_VERSION: Final = 2
"""The `v` of an update record (issue 13)."""

Action = Literal["edit", "delete", "react"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)


# Message records.


@dataclass(frozen=True, slots=True)
class MessageRecord:
    publish_id: str
    """Unique per append: lets the accepting backend recognise its own record coming back."""
    user: str
    client: str
    ref: str
    text: str
    ts: float
    pod: str
    sub: str | None = None
    """Token mode: the sender's verified user id (absent from open mode's records)."""
    change: Change | None = None
    """An update record's effect on an earlier message; None for a message."""


@dataclass(frozen=True, slots=True)
class Change:
    """What an update record does to the message `target` of its room (issue 13). An edit's new
    text is the record's `text`."""

    target: MessageId
    action: Action
    emoji: str = ""
    """`react`: one of `contract.REACTIONS`."""
    on: bool = False
    """`react`: whether the sender's reaction `emoji` is there after this record."""


class BadRecord(ValueError):
    """A log record that is not a message record of this version (skipped, logged)."""


def encode_record(record: MessageRecord) -> bytes:
    fields: dict[str, object] = {
        "v": RECORD_VERSION,
        "pid": record.publish_id,
        "user": record.user,
        "client": record.client,
        "ref": record.ref,
        "text": record.text,
        "ts": record.ts,
        "pod": record.pod,
    }
    if record.sub is not None:
        # Optional, so records written before it existed still read (and still dedupe).
        fields["sub"] = record.sub
    if (change := record.change) is not None:
        fields.update(v=UPDATE_RECORD_VERSION, do=change.action, target=str(change.target))
        if change.action == "react":
            fields.update(emoji=change.emoji, on=change.on)
    return orjson.dumps(fields)


def decode_record(body: bytes) -> MessageRecord:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("v") not in (RECORD_VERSION, UPDATE_RECORD_VERSION):
        raise BadRecord(f"not a version {RECORD_VERSION} message record")
    strings = ("pid", "user", "client", "ref", "text", "pod")
    if not all(isinstance(obj.get(key), str) for key in strings):
        raise BadRecord(f"fields {strings} must be strings")
    ts = obj.get("ts")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise BadRecord("ts must be a number")
    sub = obj.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise BadRecord("sub must be a string")
    return MessageRecord(
        publish_id=obj["pid"],
        user=obj["user"],
        client=obj["client"],
        ref=obj["ref"],
        text=obj["text"],
        ts=float(ts),
        pod=obj["pod"],
        sub=sub,
        change=_decode_change(obj) if obj["v"] == UPDATE_RECORD_VERSION else None,
    )


def _decode_change(obj: Mapping[str, object]) -> Change:
    action, target = obj.get("do"), obj.get("target")
    emoji, on = obj.get("emoji", ""), obj.get("on")
    target_id = parse_id(target) if isinstance(target, str) else None
    if action not in ACTIONS or target_id is None:
        raise BadRecord("an update record needs `do` and a `target` id")
    if action == "react" and not (isinstance(emoji, str) and isinstance(on, bool)):
        raise BadRecord("a reaction needs `emoji` and `on`")
    return Change(
        target=target_id,
        action=action,
        emoji=emoji if isinstance(emoji, str) else "",
        on=on is True,
    )


# Presence beats.


@dataclass(frozen=True, order=True, slots=True)
class Person:
    """A room member as the others see them; ordered by name, so every backend cuts a long list
    at the same place."""

    name: str
    """Display name."""
    sub: str = ""
    """Token mode: the verified user id, which tells apart two people of one name; empty in
    open mode."""


@dataclass(frozen=True, slots=True)
class PresenceBeat:
    """What one backend pod reports about its own sessions."""

    pod: str
    sessions: int
    """Open WebSocket sessions on that pod."""
    rooms: Mapping[str, int] = field(default_factory=dict)
    """Local members per room, rooms with no member left out."""
    ts: float = 0.0
    """Sender's wall clock (seconds since the epoch) when the beat was made."""
    gone: bool = False
    """True in the last beat of a pod that is shutting down: drop it at once."""
    people: Mapping[str, tuple[Person, ...]] = field(default_factory=dict)
    """The first people by name among the pod's local members of each room, distinct, sorted,
    at most the sender's `ChatSettings.members_list_max` per room."""
    ask: bool = False
    """The pod has just started and asks the others which rooms exist with nobody in them (the
    room directory, issue 13)."""
    known: tuple[str, ...] = ()
    """The answer to an `ask`: rooms the pod has seen in use that are empty now, the most
    recently used first, at most `DIRECTORY_SYNC_MAX` (more are cut when read)."""


def encode_beat(beat: PresenceBeat) -> bytes:
    """A beat as compact JSON; one-letter keys because every backend sends one every few seconds.
    A person is `[name]`, or `[name, sub]` in token mode."""
    return orjson.dumps(
        {
            "p": beat.pod,
            "s": beat.sessions,
            "r": dict(beat.rooms),
            "t": beat.ts,
            "g": beat.gone,
            "n": {
                room: [[p.name, p.sub] if p.sub else [p.name] for p in people]
                for room, people in beat.people.items()
            },
            # Only when set: every beat would otherwise carry two keys for a rare event.
            **({"a": True} if beat.ask else {}),
            **({"k": list(beat.known)} if beat.known else {}),
        }
    )


def decode_beat(body: bytes) -> PresenceBeat:
    """The inverse of `encode_beat`; ValueError for anything else (another version, garbage)."""
    data = _json_object(body, "presence beat")
    pod, sessions, rooms = data.get("p"), data.get("s"), data.get("r")
    ts, gone = data.get("t"), data.get("g")
    if (
        isinstance(pod, str)
        and _is_count(sessions)
        and isinstance(rooms, dict)
        and all(isinstance(room, str) and _is_count(n) for room, n in rooms.items())
        and isinstance(ts, int | float)
        and not isinstance(ts, bool)
        and isinstance(gone, bool)
    ):
        people = _decode_people(data.get("n", {}))
        ask, known = data.get("a", False), data.get("k", [])
        if (
            people is not None
            and isinstance(ask, bool)
            and isinstance(known, list)
            and all(isinstance(room, str) for room in known)
        ):
            return PresenceBeat(
                pod=pod,
                sessions=sessions,
                rooms=rooms,
                ts=float(ts),
                gone=gone,
                people=people,
                ask=ask,
                known=tuple(known[:DIRECTORY_SYNC_MAX]),
            )
    raise ValueError(f"malformed presence beat: {body[:200]!r}")


def _decode_people(value: object) -> dict[str, tuple[Person, ...]] | None:
    """A beat's `n`; None when malformed. Beats from before issue 13 have none: `{}`."""
    if not isinstance(value, dict):
        return None
    people: dict[str, tuple[Person, ...]] = {}
    for room, entries in value.items():
        if not isinstance(entries, list):
            return None
        decoded = []
        for entry in entries:
            if not (
                isinstance(entry, list)
                and 1 <= len(entry) <= 2
                and all(isinstance(part, str) for part in entry)
            ):
                return None
            decoded.append(Person(*entry))
        people[room] = tuple(decoded)
    return people


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# Typing signals.


@dataclass(frozen=True, slots=True)
class TypingSignal:
    """One session is typing in a room; relayed to the room's other members on every backend."""

    room: str
    name: str
    """The typist's display name."""
    sub: str | None
    """Token mode: the typist's verified user id."""
    session: str
    """The typist's session, which is not told about its own typing."""
    to: str | None = None
    """Not typing but a call (issue 13): `sub` opened its direct-message room `room` with the
    person whose sub is `to`, whose sessions not in the room yet are told (`dm` frames). Older
    backends read it as typing in a room only the caller is in yet, and tell nobody."""


def encode_typing(signal: TypingSignal) -> bytes:
    fields = {"r": signal.room, "u": signal.name, "x": signal.session}
    if signal.sub is not None:
        fields["s"] = signal.sub
    if signal.to is not None:
        fields["t"] = signal.to
    return orjson.dumps(fields)


def decode_typing(body: bytes) -> TypingSignal:
    """The inverse of `encode_typing`; ValueError for anything else."""
    data = _json_object(body, "typing signal")
    room, name, session, sub = data.get("r"), data.get("u"), data.get("x"), data.get("s")
    to = data.get("t")
    if (
        isinstance(room, str)
        and isinstance(name, str)
        and isinstance(session, str)
        and (sub is None or isinstance(sub, str))
        and (to is None or isinstance(to, str))
    ):
        return TypingSignal(room=room, name=name, sub=sub, session=session, to=to)
    raise ValueError(f"malformed typing signal: {body[:200]!r}")


def _json_object(body: bytes, what: str) -> dict[str, object]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not a JSON object")
    return data
