"""Edits, deletes and reactions (issue 13) as frames, records and owners: parsed, refused,
encoded, each in the one place that does it."""

from __future__ import annotations

import orjson
import pytest

from chatserver import closecodes, contract, protocol
from chatserver.ids import MessageId
from chatserver.interchange import BadRecord, Change, MessageRecord, decode_record, encode_record
from chatserver.owners import owner_of
from chatserver.protocol import Join, ProtocolError, Update, parse_client_frame

MAX = 4096
TARGET = MessageId(1_700_000_000_000, 7)


def parse(frame: object) -> protocol.ClientFrame:
    return parse_client_frame(orjson.dumps(frame), max_text_bytes=MAX)


def refusal(frame: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse(frame)
    return caught.value


def test_an_edit_parses_with_its_target_text_and_ref() -> None:
    frame = parse({"type": "edit", "room": "r", "id": str(TARGET), "text": "fixed", "ref": "e1"})
    assert frame == Update(room="r", ref="e1", change=Change(TARGET, "edit"), text="fixed")


def test_a_delete_parses_without_text() -> None:
    frame = parse({"type": "delete", "room": "r", "id": str(TARGET), "ref": "d1"})
    assert frame == Update(room="r", ref="d1", change=Change(TARGET, "delete"), text="")


@pytest.mark.parametrize("on", [True, False])
def test_a_reaction_parses_with_its_emoji_and_whether_it_is_on(on: bool) -> None:
    emoji = contract.REACTIONS[0]
    frame = parse(
        {"type": "react", "room": "r", "id": str(TARGET), "emoji": emoji, "on": on, "ref": "x"}
    )
    assert frame == Update(
        room="r", ref="x", change=Change(TARGET, "react", emoji=emoji, on=on), text=""
    )


EDIT = {"type": "edit", "room": "r", "id": "1-7", "text": "t", "ref": "a"}
REACT = {"type": "react", "room": "r", "id": "1-7", "emoji": "👍", "on": True, "ref": "a"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({**EDIT, "ref": None}, closecodes.BAD_REQUEST),
        ({**EDIT, "id": "x"}, closecodes.BAD_REQUEST),
        ({**EDIT, "id": 7}, closecodes.BAD_REQUEST),
        ({**EDIT, "text": " "}, closecodes.BAD_REQUEST),
        ({**EDIT, "text": None}, closecodes.BAD_REQUEST),
        ({**EDIT, "room": "R!"}, closecodes.INVALID_ROOM),
        ({**EDIT, "text": "x" * (MAX + 1)}, closecodes.TOO_LARGE),
        ({"type": "delete", "room": "r", "ref": "a"}, closecodes.BAD_REQUEST),
        ({**REACT, "emoji": "💩"}, closecodes.BAD_REQUEST),
        ({**REACT, "on": 1}, closecodes.BAD_REQUEST),
        ({"type": "join", "room": "r", "updates": "yes"}, closecodes.BAD_REQUEST),
    ],
)
def test_bad_updates_are_refused_with_the_contracts_code(frame: object, code: str) -> None:
    assert refusal(frame).code == code


def test_a_refused_update_carries_its_ref() -> None:
    assert refusal({"type": "delete", "room": "r", "id": "no", "ref": "d9"}).ref == "d9"


def test_join_takes_updates_only_when_asked() -> None:
    assert parse({"type": "join", "room": "r"}) == Join(room="r", since=None, updates=False)
    assert parse({"type": "join", "room": "r", "updates": True}) == Join(
        room="r", since=None, updates=True
    )


def test_an_update_frame_says_what_it_changes() -> None:
    react = Change(TARGET, "react", emoji="🎉", on=True)
    frame = orjson.loads(
        protocol.encode_update(
            room="r", id="1-9", change=react, text="", user="ada", ts=2.0, pod="p", owner="o"
        )
    )
    assert frame == {
        "type": "update",
        "room": "r",
        "id": "1-9",
        "target": str(TARGET),
        "action": "react",
        "user": "ada",
        "ts": 2.0,
        "pod": "p",
        "owner": "o",
        "emoji": "🎉",
        "on": True,
    }
    edit = orjson.loads(
        protocol.encode_update(
            room="r", id="1-9", change=Change(TARGET, "edit"), text="new", user="ada", ts=2.0,
            pod="p", owner="o", sub="u1",
        )
    )  # fmt: skip
    assert (edit["text"], edit["sub"], "emoji" in edit) == ("new", "u1", False)


@pytest.mark.parametrize(
    "change",
    [Change(TARGET, "edit"), Change(TARGET, "delete"), Change(TARGET, "react", "👍", on=False)],
)
def test_update_records_round_trip(change: Change) -> None:
    record = MessageRecord("p", "ada", "tab", "ref", "t", 1.0, "pod", sub=None, change=change)
    body = encode_record(record)
    assert orjson.loads(body)["v"] == 2  # the release before skips it rather than show it
    assert decode_record(body) == record


@pytest.mark.parametrize(
    "extra", [{}, {"do": "edit"}, {"do": "boom", "target": "1-2"}, {"do": "react", "target": "1-2"}]
)
def test_malformed_update_records_are_refused(extra: dict[str, object]) -> None:
    body = {"v": 2, "pid": "p", "user": "u", "client": "c", "ref": "r", "text": "", "ts": 1.0}
    with pytest.raises(BadRecord):
        decode_record(orjson.dumps({**body, "pod": "p", **extra}))


def test_an_owner_digest_does_not_reveal_the_client_id() -> None:
    client = "0123456789abcdef0123456789abcdef"
    owner = owner_of(sub=None, client=client)
    assert client not in owner
    assert owner == owner_of(sub=None, client=client)
    assert owner != owner_of(sub=None, client=client + "x")
    assert owner_of(sub=client, client="other") != owner  # a sub is never a client id
    assert owner_of(sub="u1", client="a") == owner_of(sub="u1", client="b")


def test_message_frames_carry_the_owner_digest() -> None:
    frame = orjson.loads(
        protocol.encode_message(room="r", id="1-1", user="u", text="t", ts=1.0, pod="p", owner="o")
    )
    assert frame["owner"] == "o"
