"""What backends exchange through the broker: message records and presence beats, round trips
and refusals, without a broker."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.contract import DIRECTORY_SYNC_MAX
from chatserver.interchange import (
    BadRecord,
    MessageRecord,
    Person,
    PresenceBeat,
    TypingSignal,
    decode_beat,
    decode_record,
    decode_typing,
    encode_beat,
    encode_record,
    encode_typing,
)


@settings(deadline=None)
@given(
    st.builds(
        MessageRecord,
        publish_id=st.text(max_size=40),
        user=st.text(max_size=40),
        client=st.text(max_size=40),
        ref=st.text(max_size=40),
        text=st.text(max_size=100),
        ts=st.floats(0, 2e9),
        pod=st.text(max_size=40),
        sub=st.none() | st.text(max_size=40),
    )
)
def test_record_bodies_round_trip(record: MessageRecord) -> None:
    assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"v": 2}', b'{"v": 1, "pid": 3}'])
def test_foreign_record_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(BadRecord):
        decode_record(body)


counts = st.integers(min_value=0, max_value=2**31)
beats = st.builds(
    PresenceBeat,
    pod=st.text(max_size=64),
    sessions=counts,
    rooms=st.dictionaries(st.text(max_size=64), counts, max_size=8),
    ts=st.floats(min_value=0, max_value=4e9),
    gone=st.booleans(),
    people=st.dictionaries(
        st.text(max_size=64),
        st.lists(st.builds(Person, name=st.text(max_size=64), sub=st.text(max_size=8))).map(tuple),
        max_size=4,
    ),
    ask=st.booleans(),
    known=st.lists(st.text(max_size=64), max_size=5).map(tuple),
)


@given(beats)
def test_a_beat_survives_encoding(beat: PresenceBeat) -> None:
    assert decode_beat(encode_beat(beat)) == beat


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"p": "pod", "s": 1, "r": {}, "t": 1.0}',
        b'{"p": "pod", "s": -1, "r": {}, "t": 1.0, "g": false}',
        b'{"p": "pod", "s": true, "r": {}, "t": 1.0, "g": false}',
        b'{"p": "pod", "s": 1, "r": {"general": "2"}, "t": 1.0, "g": false}',
        b'{"p": 7, "s": 1, "r": {}, "t": 1.0, "g": false}',
        b'{"p": "pod", "s": 1, "r": {}, "t": 1.0, "g": false, "n": {"x": ["Ada"]}}',
        b'{"p": "pod", "s": 1, "r": {}, "t": 1.0, "g": false, "n": {"x": [["a", "b", "c"]]}}',
        b'{"p": "pod", "s": 1, "r": {}, "t": 1.0, "g": false, "n": []}',
    ],
)
def test_anything_but_a_beat_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="beat"):
        decode_beat(body)


def test_a_beat_from_before_people_reads_as_naming_nobody() -> None:
    beat = decode_beat(b'{"p": "pod", "s": 1, "r": {"x": 1}, "t": 1.0, "g": false}')
    assert beat.people == {}


@given(
    st.builds(
        TypingSignal,
        room=st.text(max_size=64),
        name=st.text(max_size=64),
        sub=st.none() | st.text(max_size=40),
        session=st.text(max_size=32),
        to=st.none() | st.text(max_size=40),
    )
)
def test_a_typing_signal_survives_encoding(signal: TypingSignal) -> None:
    assert decode_typing(encode_typing(signal)) == signal


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"r": "x", "u": "Ada"}',
        b'{"r": "x", "u": "Ada", "x": "s", "s": 1}',
        b'{"r": "x", "u": "Ada", "x": "s", "t": 2}',
    ],
)
def test_anything_but_a_typing_signal_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="typing signal"):
        decode_typing(body)


def test_a_beat_names_at_most_the_sync_bound_of_empty_rooms() -> None:
    many = PresenceBeat(pod="p", sessions=0, known=tuple(f"r{n}" for n in range(5000)))
    assert len(decode_beat(encode_beat(many)).known) == DIRECTORY_SYNC_MAX


def test_a_beat_from_before_the_directory_asks_nothing_and_names_no_room() -> None:
    beat = decode_beat(b'{"p": "pod", "s": 1, "r": {}, "t": 1.0, "g": false}')
    assert (beat.ask, beat.known) == (False, ())
    assert b'"a"' not in encode_beat(beat)
    assert b'"k"' not in encode_beat(beat)
