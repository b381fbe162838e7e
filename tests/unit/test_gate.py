"""What may this frame do: the checks every client frame passes, in order, with no socket."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from chatserver import closecodes
from chatserver.access import OPEN, Access, Identity
from chatserver.dm import dm_room
from chatserver.gate import FrameGate
from chatserver.ids import MessageId
from chatserver.protocol import (
    Join,
    Older,
    Ping,
    ProtocolError,
    Refresh,
    RoomsQuery,
    Send,
    Typing,
)
from chatserver.settings import ChatSettings

TEAM_ONLY = Access(join=("team-*", "general"), post=("team-*",))


@dataclass
class FakeSession:
    access: Access = OPEN
    rooms: set[str] = field(default_factory=set)
    identity: Identity = field(default_factory=lambda: Identity(user="ann", name="Ann", client="c"))


def signed_in(sub: str, access: Access = OPEN) -> FakeSession:
    return FakeSession(access=access, identity=Identity(sub, sub, "c", verified=True))


class FrozenClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gate(*, tokens: bool = False, clock: FrozenClock | None = None, **settings: Any) -> FrameGate:
    return FrameGate(ChatSettings(**settings), tokens=tokens, clock=clock or FrozenClock())


def frame(**fields: object) -> bytes:
    return orjson.dumps(fields)


def refusal(gate: FrameGate, data: bytes | None, session: FakeSession) -> tuple[str, str | None]:
    with pytest.raises(ProtocolError) as refused:
        gate.admit(data, session)
    return refused.value.code, refused.value.ref


def test_a_valid_frame_is_admitted_as_its_type() -> None:
    session = FakeSession(rooms={"lobby"})
    admitted = gate().admit(frame(type="send", room="lobby", text="hi", ref="r1"), session)
    assert admitted == Send(room="lobby", text="hi", ref="r1")


def test_binary_frames_and_malformed_text_are_bad_requests() -> None:
    assert refusal(gate(), None, FakeSession()) == (closecodes.BAD_REQUEST, None)
    assert refusal(gate(), b"{", FakeSession()) == (closecodes.BAD_REQUEST, None)


def test_every_frame_but_ping_spends_a_token() -> None:
    clock = FrozenClock()
    limited = gate(clock=clock, rate_burst=2, rate_per_second=1.0)
    session = FakeSession(rooms={"lobby"})
    for _ in range(10):
        assert limited.admit(frame(type="ping"), session) == Ping()
    limited.admit(frame(type="join", room="a"), session)
    limited.admit(frame(type="leave", room="a"), session)
    send = frame(type="send", room="lobby", text="hi", ref="r9")
    assert refusal(limited, send, session) == (closecodes.RATE_LIMITED, "r9")
    with pytest.raises(ProtocolError) as refused:
        limited.admit(frame(type="join", room="b"), session)
    assert (refused.value.code, refused.value.room) == (closecodes.RATE_LIMITED, "b")
    clock.now += 1.0
    assert isinstance(limited.admit(send, session), Send)


def test_a_join_outside_the_rooms_claim_is_forbidden_with_its_room() -> None:
    session = FakeSession(access=TEAM_ONLY)
    with pytest.raises(ProtocolError) as refused:
        gate().admit(frame(type="join", room="secret"), session)
    assert (refused.value.code, refused.value.room) == (closecodes.FORBIDDEN, "secret")
    assert gate().admit(frame(type="join", room="team-red"), session) == Join("team-red", None)


def test_a_send_outside_the_post_claim_is_forbidden_with_its_ref() -> None:
    session = FakeSession(access=TEAM_ONLY, rooms={"general"})
    send = frame(type="send", room="general", text="hi", ref="r1")
    assert refusal(gate(), send, session) == (closecodes.FORBIDDEN, "r1")


def test_a_send_to_a_room_not_joined_is_refused_with_its_ref() -> None:
    send = frame(type="send", room="lobby", text="hi", ref="r1")
    assert refusal(gate(), send, FakeSession()) == (closecodes.NOT_JOINED, "r1")


def test_reading_back_a_room_not_joined_is_refused_and_a_joined_one_admitted() -> None:
    older = frame(type="older", room="lobby", before="1-5")
    assert refusal(gate(), older, FakeSession()) == (closecodes.NOT_JOINED, None)
    admitted = gate().admit(older, FakeSession(rooms={"lobby"}))
    assert admitted == Older("lobby", MessageId(1, 5), None)


def test_reading_back_spends_a_token() -> None:
    limited = gate(rate_burst=1, rate_per_second=1.0)
    session = FakeSession(rooms={"lobby"})
    older = frame(type="older", room="lobby", before="1-5")
    limited.admit(older, session)
    assert refusal(limited, older, session) == (closecodes.RATE_LIMITED, None)


def test_access_is_checked_before_membership() -> None:
    send = frame(type="send", room="general", text="hi", ref="r1")
    assert refusal(gate(), send, FakeSession(access=TEAM_ONLY)) == (closecodes.FORBIDDEN, "r1")


def test_a_refresh_needs_a_server_that_uses_tokens() -> None:
    refresh = frame(type="refresh", token="t")
    assert refusal(gate(), refresh, FakeSession()) == (closecodes.BAD_REQUEST, None)
    assert gate(tokens=True).admit(refresh, FakeSession()) == Refresh(token="t")


def test_too_many_refusals_within_the_window_call_for_a_close() -> None:
    clock = FrozenClock()
    abused = gate(abuse_threshold=3, abuse_window_seconds=10.0, clock=clock)
    bad = closecodes.BAD_REQUEST
    assert [abused.refused(bad), abused.refused(bad)] == [False, False]
    clock.now = 10.0  # accepted frames in between change nothing: only time does
    assert abused.refused(bad)


def test_refusals_spread_wider_than_the_window_never_call_for_a_close() -> None:
    clock = FrozenClock()
    abused = gate(abuse_threshold=3, abuse_window_seconds=10.0, clock=clock)
    verdicts = []
    for second in range(0, 60, 6):
        clock.now = float(second)
        verdicts.append(abused.refused(closecodes.INVALID_ROOM))
    assert not any(verdicts)


@pytest.mark.parametrize("code", [closecodes.RATE_LIMITED, closecodes.UNAVAILABLE])
def test_try_later_refusals_are_not_abuse(code: str) -> None:
    patient = gate(abuse_threshold=3)
    assert not any(patient.refused(code) for _ in range(100))


def test_typing_spends_no_token_and_needs_the_room_joined_and_postable() -> None:
    limited = gate(rate_burst=1, rate_per_second=1.0)
    joined = FakeSession(rooms={"lobby"})
    for _ in range(10):
        assert limited.admit(frame(type="typing", room="lobby"), joined) == Typing("lobby")
    assert refusal(gate(), frame(type="typing", room="lobby"), FakeSession()) == (
        closecodes.NOT_JOINED,
        None,
    )
    reader = FakeSession(access=TEAM_ONLY, rooms={"general"})
    assert refusal(gate(), frame(type="typing", room="general"), reader) == (
        closecodes.FORBIDDEN,
        None,
    )


def test_typing_is_relayed_once_per_room_per_interval() -> None:
    clock = FrozenClock()
    typist = gate(clock=clock, typing_interval_seconds=2.0)
    assert typist.typing_due("lobby")
    assert typist.typing_due("other")
    clock.now = 1.9
    assert not typist.typing_due("lobby")
    clock.now = 2.0
    assert typist.typing_due("lobby")


def test_the_typing_times_kept_stay_within_the_room_cap() -> None:
    clock = FrozenClock()
    typist = gate(clock=clock, typing_interval_seconds=2.0, max_rooms_per_connection=3)
    for second in range(100):
        clock.now = float(second)
        assert typist.typing_due(f"room-{second}")
    assert len(typist._typing_relayed) <= 3


@pytest.mark.parametrize(
    "update",
    [
        {"type": "edit", "id": "1-1", "text": "fixed"},
        {"type": "delete", "id": "1-1"},
        {"type": "react", "id": "1-1", "emoji": "👍", "on": True},
    ],
)
def test_updates_are_checked_like_sends(update: dict[str, object]) -> None:
    team = FakeSession(access=TEAM_ONLY, rooms={"general", "team-a"})
    data = frame(room="team-b", ref="u1", **update)
    assert refusal(gate(), data, team) == (closecodes.NOT_JOINED, "u1")
    data = frame(room="general", ref="u1", **update)
    assert refusal(gate(), data, team) == (closecodes.FORBIDDEN, "u1")
    limited = gate(rate_burst=1, rate_per_second=0.001)
    data = frame(room="team-a", ref="u1", **update)
    limited.admit(data, team)
    assert refusal(limited, data, team) == (closecodes.RATE_LIMITED, "u1")


def test_a_dm_becomes_the_join_of_the_pairs_room_for_either_person() -> None:
    ann = gate(tokens=True).admit(frame(type="dm", **{"with": "bob"}), signed_in("ann"))
    bob = gate(tokens=True).admit(frame(type="dm", **{"with": "ann"}), signed_in("bob"))
    assert ann == Join(room=dm_room("ann", "bob"), since=None, dm_with="bob")
    assert isinstance(bob, Join)
    assert bob.room == ann.room


def test_a_direct_message_room_is_never_joined_by_name() -> None:
    room = dm_room("ann", "bob")
    code = refusal(gate(tokens=True), frame(type="join", room=room), signed_in("ann"))[0]
    assert code == closecodes.FORBIDDEN
    carol = gate(tokens=True).admit(frame(type="dm", **{"with": "bob"}), signed_in("carol"))
    assert isinstance(carol, Join)
    assert carol.room != room


def test_a_dm_is_refused_in_open_mode_and_with_oneself() -> None:
    dm_bob = frame(type="dm", **{"with": "bob"})
    assert refusal(gate(), dm_bob, FakeSession())[0] == closecodes.FORBIDDEN
    dm_self = frame(type="dm", **{"with": "ann"})
    assert refusal(gate(tokens=True), dm_self, signed_in("ann"))[0] == closecodes.BAD_REQUEST


def test_a_dm_obeys_the_rooms_claim_and_the_rate_limit() -> None:
    dm_bob = frame(type="dm", **{"with": "bob"})
    assert refusal(gate(tokens=True), dm_bob, signed_in("ann", TEAM_ONLY))[0] == (
        closecodes.FORBIDDEN
    )
    allowed = signed_in("ann", Access(join=("dm-*",), post=None))
    assert isinstance(gate(tokens=True).admit(dm_bob, allowed), Join)
    once = gate(tokens=True, rate_burst=1, rate_per_second=0.001)
    once.admit(dm_bob, signed_in("ann"))
    assert refusal(once, dm_bob, signed_in("ann"))[0] == closecodes.RATE_LIMITED


def test_a_directory_page_spends_a_token() -> None:
    once = gate(rate_burst=1, rate_per_second=0.001)
    assert once.admit(frame(type="rooms"), FakeSession()) == RoomsQuery(query="", offset=0)
    assert refusal(once, frame(type="rooms"), FakeSession())[0] == closecodes.RATE_LIMITED
