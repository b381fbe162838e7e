"""The RabbitMQ broker's AMQP names and headers, without a broker."""

from __future__ import annotations

import pytest

from chatserver.broker.amqp_wire import (
    OFFSET_HEADER,
    Topology,
    delivery_offset,
)
from chatserver.contract import MAX_CLUSTER_CHARS, MAX_ROOM_NAME_CHARS


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


def test_the_longest_cluster_and_room_names_make_amqp_names_of_at_most_255_bytes() -> None:
    longest = Topology("c" * MAX_CLUSTER_CHARS).room_stream("r" * MAX_ROOM_NAME_CHARS)
    assert len(longest.encode()) <= 255
    with pytest.raises(ValueError, match="cluster name"):
        Topology("c" * (MAX_CLUSTER_CHARS + 1))
