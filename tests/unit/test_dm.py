"""Direct-message rooms: one name per pair, within the room-name rule, reserved."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatserver.dm import dm_room, is_dm_room
from chatserver.protocol import ROOM_NAME

subs = st.text(min_size=1, max_size=128)


@given(subs, subs)
def test_either_person_gets_the_same_valid_reserved_room(a: str, b: str) -> None:
    room = dm_room(a, b)
    assert room == dm_room(b, a)
    assert ROOM_NAME.fullmatch(room)
    assert is_dm_room(room)


def test_pairs_that_concatenate_alike_get_different_rooms() -> None:
    assert dm_room("ab", "c") != dm_room("a", "bc")
    assert dm_room("a", "b") != dm_room("a", "c")


def test_only_the_exact_shape_is_reserved() -> None:
    assert not is_dm_room("dm-general")
    assert not is_dm_room("dm-" + "0" * 39)
    assert not is_dm_room("dm-" + "A" * 40)
    assert is_dm_room("dm-" + "0" * 40)
