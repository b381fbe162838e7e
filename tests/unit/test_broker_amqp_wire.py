"""The RabbitMQ broker's wire format and names, without a broker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatserver.broker import PresenceBeat
from chatserver.broker.amqp_wire import (
    OFFSET_HEADER,
    Topology,
    decode_beat,
    delivery_offset,
    encode_beat,
)

counts = st.integers(min_value=0, max_value=2**31)
beats = st.builds(
    PresenceBeat,
    pod=st.text(max_size=64),
    sessions=counts,
    rooms=st.dictionaries(st.text(max_size=64), counts, max_size=8),
    ts=st.floats(min_value=0, max_value=4e9),
    gone=st.booleans(),
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
    ],
)
def test_anything_but_a_beat_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="beat"):
        decode_beat(body)


def test_names_live_under_the_cluster_namespace() -> None:
    topology = Topology("demo")

    assert topology.rooms_exchange == "chat.demo.rooms"
    assert topology.presence_exchange == "chat.demo.presence"
    assert topology.room_stream("general") == "chat.demo.room.general"


@pytest.mark.parametrize("room", ["", "has space", "slash/ed", "x" * 101, "é"])
def test_a_room_name_unfit_for_amqp_is_refused(room: str) -> None:
    with pytest.raises(ValueError, match="room name"):
        Topology("demo").room_stream(room)


def test_a_cluster_name_unfit_for_amqp_is_refused() -> None:
    with pytest.raises(ValueError, match="cluster name"):
        Topology("a b")


def test_the_offset_comes_from_the_stream_header() -> None:
    assert delivery_offset({OFFSET_HEADER: 42, "chat-kind": "record"}) == 42
    for headers in (None, {}, {OFFSET_HEADER: "42"}, {OFFSET_HEADER: True}):
        with pytest.raises(ValueError, match=OFFSET_HEADER):
            delivery_offset(headers)
