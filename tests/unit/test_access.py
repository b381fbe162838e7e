from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatserver import protocol
from chatserver.access import OPEN, Access, BadPatterns, parse_patterns, room_matches

rooms = st.from_regex(protocol.ROOM_NAME, fullmatch=True)


@pytest.mark.parametrize(
    ("room", "patterns", "matches"),
    [
        ("general", ["general"], True),
        ("general", ["gen"], False),
        ("team-a", ["team-*"], True),
        ("team-", ["team-*"], True),
        ("teams", ["team-*"], False),
        ("a-team-b", ["*team*"], True),
        ("x", ["*"], True),
        ("x", [], False),
        ("random", ["general", "rand*"], True),
    ],
)
def test_room_matches(room: str, patterns: list[str], matches: bool) -> None:
    assert room_matches(room, patterns) is matches


@given(rooms)
def test_a_room_name_used_as_a_pattern_matches_only_itself(room: str) -> None:
    assert room_matches(room, [room])
    assert not room_matches(room + "x", [room])


@pytest.mark.parametrize(
    "value",
    ["general", ["General"], ["a?"], ["[abc]"], ["a/b"], [""], ["x" * 65], [1], ["ok"] * 101],
)
def test_bad_patterns_are_refused(value: object) -> None:
    with pytest.raises(BadPatterns, match="rooms"):
        parse_patterns(value, claim="rooms")


def test_good_patterns_are_kept() -> None:
    assert parse_patterns(["general", "team-*", "*"], claim="rooms") == ("general", "team-*", "*")


def test_post_defaults_to_the_join_patterns() -> None:
    access = Access(join=("team-*",), post=None)
    assert access.may_post("team-a")
    assert not access.may_post("general")


def test_post_may_be_narrower_than_join() -> None:
    access = Access(join=("*",), post=("announcements",))
    assert access.may_join("general")
    assert not access.may_post("general")
    assert access.may_post("announcements")


def test_an_empty_list_allows_nothing() -> None:
    assert not Access(join=(), post=None).may_join("general")


def test_without_a_create_claim_the_server_decides_who_creates_rooms() -> None:
    access = Access(join=("team-*",), post=None)
    assert access.may_create("team-a", anyone=True)
    assert not access.may_create("team-a", anyone=False)


def test_a_create_claim_decides_whatever_the_server_says() -> None:
    access = Access(join=None, post=None, create=("team-*",))
    assert access.may_create("team-a", anyone=False)
    assert not access.may_create("general", anyone=True)
    assert not Access(join=None, post=None, create=()).may_create("general", anyone=True)


def test_open_allows_everything() -> None:
    assert OPEN.may_join("anything")
    assert OPEN.may_post("anything")


patterns = st.from_regex(r"[a-z0-9_*-]{1,12}", fullmatch=True)


@given(st.lists(patterns, max_size=5), st.lists(rooms, min_size=1, max_size=5))
def test_joinable_answers_as_may_join_for_every_room(join: list[str], names: list[str]) -> None:
    access = Access(join=tuple(join), post=None)
    joinable = access.joinable()
    assert [joinable(name) for name in names] == [access.may_join(name) for name in names]
    assert OPEN.joinable()(names[0])
