"""The sans-I/O protocol: typed frames or a typed error, never anything else."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver import closecodes, protocol
from chatserver.ids import LEGACY_EPOCH, MessageId, parse_id
from chatserver.interchange import Person
from chatserver.protocol import (
    Join,
    Leave,
    Older,
    Ping,
    ProtocolError,
    Refresh,
    Send,
    Typing,
    parse_client_frame,
)

MAX = 4096
relaxed = settings(deadline=None)
"""No per-example deadline: a loaded CI machine must not turn slowness into failure."""
rooms = st.from_regex(protocol.ROOM_NAME, fullmatch=True)
texts = st.text(min_size=1, max_size=200).filter(str.strip)
refs = st.text(min_size=1, max_size=protocol.MAX_REF_CHARS)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def parse(frame: object) -> protocol.ClientFrame:
    return parse_client_frame(orjson.dumps(frame), max_text_bytes=MAX)


def error_of(data: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(data, max_text_bytes=MAX)
    return caught.value


@relaxed
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    try:
        parse_client_frame(data, max_text_bytes=MAX)
    except ProtocolError as exc:
        code = exc.code
    else:
        return
    assert code in {closecodes.BAD_REQUEST, closecodes.INVALID_ROOM, closecodes.TOO_LARGE}


@relaxed
@given(
    st.dictionaries(
        st.sampled_from(["type", "room", "text", "ref", "since", "token"]),
        json_values | st.sampled_from(["send", "join", "leave", "ping", "refresh"]),
    )
)
def test_any_json_object_parses_or_raises_protocol_error(obj: dict[str, object]) -> None:
    try:
        parse(obj)
    except ProtocolError as exc:
        message = exc.message
    else:
        return
    assert message


@relaxed
@given(rooms, texts, refs)
def test_send_round_trips(room: str, text: str, ref: str) -> None:
    assert parse({"type": "send", "room": room, "text": text, "ref": ref}) == Send(room, text, ref)


@relaxed
@given(rooms, st.none() | st.builds(MessageId, st.integers(1, 2**62), st.integers(0, 2**62)))
def test_join_round_trips(room: str, since: MessageId | None) -> None:
    frame: dict[str, object] = {"type": "join", "room": room}
    if since is not None:
        frame["since"] = str(since)
    assert parse(frame) == Join(room, since)


def test_a_join_since_an_id_from_before_epochs_is_accepted_as_the_legacy_epoch() -> None:
    frame = {"type": "join", "room": "ok", "since": "17"}
    assert parse(frame) == Join("ok", MessageId(LEGACY_EPOCH, 17))


def test_older_parses_with_and_without_a_limit() -> None:
    frame = {"type": "older", "room": "ok", "before": "5-17"}
    assert parse(frame) == Older("ok", MessageId(5, 17), None)
    assert parse({**frame, "limit": 30}) == Older("ok", MessageId(5, 17), 30)


def test_leave_and_ping_parse() -> None:
    assert parse({"type": "leave", "room": "general"}) == Leave("general")
    assert parse({"type": "ping"}) == Ping()


def test_typing_parses_and_relays_with_a_sub_only_in_token_mode() -> None:
    assert parse({"type": "typing", "room": "general"}) == Typing("general")
    relayed = protocol.encode_typing(room="general", user="Ada", sub=None)
    assert orjson.loads(relayed) == {"type": "typing", "room": "general", "user": "Ada"}
    assert orjson.loads(protocol.encode_typing(room="r", user="Ada", sub="u1"))["sub"] == "u1"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("{nope", closecodes.BAD_REQUEST),
        ("[1, 2]", closecodes.BAD_REQUEST),
        ('"text"', closecodes.BAD_REQUEST),
        ("{}", closecodes.BAD_REQUEST),
        ('{"type": 3}', closecodes.BAD_REQUEST),
        ('{"type": "dance"}', closecodes.BAD_REQUEST),
        ('{"type": "join", "room": 7}', closecodes.BAD_REQUEST),
        ('{"type": "join", "room": "Not Valid"}', closecodes.INVALID_ROOM),
        ('{"type": "join", "room": "ok", "since": 5}', closecodes.BAD_REQUEST),
        ('{"type": "join", "room": "ok", "since": "abc"}', closecodes.BAD_REQUEST),
        ('{"type": "join", "room": "ok", "since": "1-2-3"}', closecodes.BAD_REQUEST),
        ('{"type": "join", "room": "ok", "since": "%s"}' % ("9" * 4000), closecodes.BAD_REQUEST),
        ('{"type": "send", "room": "ok", "text": 1, "ref": "r"}', closecodes.BAD_REQUEST),
        ('{"type": "send", "room": "ok", "text": "hi"}', closecodes.BAD_REQUEST),
        ('{"type": "send", "room": "ok", "text": "   ", "ref": "r"}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "ok"}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "ok", "before": 17}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "ok", "before": "x-1"}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "ok", "before": "1-2", "limit": 0}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "ok", "before": "1-2", "limit": 2.5}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "ok", "before": "1-2", "limit": true}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "ok", "before": "1-2", "limit": "9"}', closecodes.BAD_REQUEST),
        ('{"type": "older", "room": "No", "before": "1-2"}', closecodes.INVALID_ROOM),
        ('{"type": "typing"}', closecodes.BAD_REQUEST),
        ('{"type": "typing", "room": ["ok"]}', closecodes.BAD_REQUEST),
        ('{"type": "typing", "room": "Not Valid"}', closecodes.INVALID_ROOM),
        ('{"type": "rooms", "query": 7}', closecodes.BAD_REQUEST),
        ('{"type": "rooms", "query": "' + "x" * 65 + '"}', closecodes.BAD_REQUEST),
        ('{"type": "rooms", "offset": -1}', closecodes.BAD_REQUEST),
        ('{"type": "rooms", "offset": 1.5}', closecodes.BAD_REQUEST),
        ('{"type": "rooms", "offset": true}', closecodes.BAD_REQUEST),
        ('{"type": "rooms", "offset": 10001}', closecodes.BAD_REQUEST),
        ('{"type": "dm"}', closecodes.BAD_REQUEST),
        ('{"type": "dm", "with": ""}', closecodes.BAD_REQUEST),
        ('{"type": "dm", "with": "' + "u" * 129 + '"}', closecodes.BAD_REQUEST),
        ('{"type": "dm", "with": "bob", "since": 3}', closecodes.BAD_REQUEST),
    ],
)
def test_bad_frames_get_the_contract_code(data: str, code: str) -> None:
    assert error_of(data).code == code


def test_send_errors_carry_the_ref() -> None:
    too_long = orjson.dumps({"type": "send", "room": "ok", "text": "é" * 2049, "ref": "r9"})
    error = error_of(too_long)
    assert (error.code, error.ref) == (closecodes.TOO_LARGE, "r9")
    bad_room = error_of('{"type": "send", "room": "-x", "text": "hi", "ref": "r8"}')
    assert (bad_room.code, bad_room.ref) == (closecodes.INVALID_ROOM, "r8")


def test_an_error_carries_the_ref_of_a_send_or_the_room_of_a_join_and_nothing_else() -> None:
    plain = orjson.loads(protocol.encode_error(closecodes.BAD_REQUEST, "no"))
    assert plain == {"type": "error", "code": "bad_request", "message": "no"}
    refused = orjson.loads(protocol.encode_error(closecodes.FORBIDDEN, "no", room="secret"))
    assert refused == {"type": "error", "code": "forbidden", "message": "no", "room": "secret"}
    assert orjson.loads(protocol.encode_error(closecodes.TOO_LARGE, "no", ref="r1"))["ref"] == "r1"


def test_text_limit_counts_utf8_bytes() -> None:
    at_limit = {"type": "send", "room": "ok", "text": "é" * 2048, "ref": "r"}
    assert isinstance(parse(at_limit), Send)


def test_joined_splices_encoded_history_as_valid_json() -> None:
    messages = [
        protocol.encode_message(
            room="r", id=str(i), user="u", text=f"t\n{i}", ts=1.5, pod="p", owner="o"
        )
        for i in range(3)
    ]
    joined = protocol.encode_joined(
        room="r", members=2, history=messages, truncated=True, reset=False
    )
    decoded = orjson.loads(joined)
    assert decoded["history"] == [orjson.loads(m) for m in messages]
    assert (decoded["type"], decoded["members"], decoded["truncated"]) == ("joined", 2, True)
    assert decoded["reset"] is False
    assert b"\n" not in joined


def test_an_older_page_splices_its_messages_oldest_first_with_the_start_flag() -> None:
    messages = [
        protocol.encode_message(
            room="r", id=f"1-{i}", user="u", text="t", ts=1.5, pod="p", owner="o"
        )
        for i in range(2)
    ]
    page = orjson.loads(protocol.encode_older(room="r", messages=messages, start=True))
    assert page == {
        "type": "older",
        "room": "r",
        "messages": [orjson.loads(m) for m in messages],
        "start": True,
    }
    empty = orjson.loads(protocol.encode_older(room="r", messages=[], start=False))
    assert (empty["messages"], empty["start"]) == ([], False)


def test_empty_history_encodes() -> None:
    joined = protocol.encode_joined(room="r", members=0, history=[], truncated=False, reset=True)
    assert orjson.loads(joined)["history"] == []
    assert orjson.loads(joined)["reset"] is True


@given(st.text(min_size=1, max_size=protocol.MAX_TOKEN_CHARS))
def test_refresh_round_trips(token: str) -> None:
    frame = orjson.dumps({"type": "refresh", "token": token})
    assert parse_client_frame(frame, max_text_bytes=100) == Refresh(token=token)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "refresh"},
        {"type": "refresh", "token": ""},
        {"type": "refresh", "token": 5},
        {"type": "refresh", "token": "x" * (protocol.MAX_TOKEN_CHARS + 1)},
    ],
)
def test_bad_refreshes_are_bad_requests(frame: dict[str, object]) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(orjson.dumps(frame), max_text_bytes=100)
    assert caught.value.code == closecodes.BAD_REQUEST


def test_a_refresh_token_is_not_in_its_repr() -> None:
    assert "secret-token" not in repr(Refresh(token="secret-token"))


def test_members_name_each_person_with_a_sub_only_in_token_mode() -> None:
    people = (Person("Ada", "u1"), Person("Bob"))
    frame = orjson.loads(protocol.encode_members(room="r", total=3, people=people, truncated=False))
    assert frame == {
        "type": "members",
        "room": "r",
        "total": 3,
        "people": [{"user": "Ada", "sub": "u1"}, {"user": "Bob"}],
        "truncated": False,
    }


def test_a_rooms_query_is_trimmed_and_lowercased_and_defaults_to_every_room() -> None:
    assert parse({"type": "rooms"}) == protocol.RoomsQuery(query="", offset=0)
    asked = parse({"type": "rooms", "query": "  Team ", "offset": 50})
    assert asked == protocol.RoomsQuery(query="team", offset=50)


def test_a_dm_names_the_other_person_and_may_resume() -> None:
    assert parse({"type": "dm", "with": "bob"}) == protocol.DirectJoin(other="bob", since=None)
    resumed = parse({"type": "dm", "with": "bob", "since": "5-9"})
    assert resumed == protocol.DirectJoin(other="bob", since=parse_id("5-9"))


def test_a_rooms_page_lists_names_with_members_and_the_total() -> None:
    page = orjson.loads(
        protocol.encode_rooms(query="te", offset=0, total=120, rooms=[("team", 3), ("tea", 0)])
    )
    assert page == {
        "type": "rooms",
        "query": "te",
        "offset": 0,
        "total": 120,
        "rooms": [{"room": "team", "members": 3}, {"room": "tea", "members": 0}],
    }


def test_joined_names_the_other_person_only_for_a_direct_message() -> None:
    plain = orjson.loads(
        protocol.encode_joined(room="a", members=1, history=[], truncated=False, reset=False)
    )
    assert "with" not in plain
    direct = orjson.loads(
        protocol.encode_joined(
            room="a", members=1, history=[], truncated=False, reset=False, dm_with="bob"
        )
    )
    assert direct["with"] == "bob"
