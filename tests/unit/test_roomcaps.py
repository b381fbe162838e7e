"""The room caps, counted: per connection and per client over its connections."""

from __future__ import annotations

import pytest

from chatserver import closecodes
from chatserver.access import Identity
from chatserver.protocol import ProtocolError
from chatserver.roomcaps import RoomTally, client_key


def test_the_client_is_the_verified_sub_in_token_mode_and_the_client_id_in_open_mode() -> None:
    assert client_key(Identity(user="u1", name="A", client="tab", verified=True)) == "u1"
    assert client_key(Identity(user="Alice", name="Alice", client="tab")) == "tab"


def test_a_room_is_the_clients_until_its_last_connection_leaves_it() -> None:
    tally = RoomTally(per_connection=5, per_client=1)
    tally.add("c", "lobby")
    tally.add("c", "lobby")
    tally.remove("c", "lobby")
    with pytest.raises(ProtocolError) as caught:
        tally.check("c", (), "other")
    assert (caught.value.code, caught.value.room) == (closecodes.TOO_MANY_ROOMS, "other")
    tally.check("c", (), "lobby")  # the room the client is in already
    tally.remove("c", "lobby")
    assert tally.rooms_of("c") == 0
    tally.check("c", (), "other")
