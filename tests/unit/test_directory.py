"""The room directory: which rooms it lists, how it searches and pages them, its bounds."""

from __future__ import annotations

from chatserver.directory import RoomDirectory, search
from chatserver.dm import dm_room


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def directory(*, known_max: int = 100, clock: Clock | None = None) -> RoomDirectory:
    return RoomDirectory(
        preset=("general",), known_max=known_max, cache_seconds=2.0, clock=clock or Clock()
    )


def everything(name: str) -> bool:
    return True


def test_lists_preset_rooms_rooms_in_use_and_rooms_seen_in_use_busiest_first() -> None:
    rooms = directory()
    rooms.note(["old"])
    listing = rooms.listing({"busy": 5, "quiet": 1})
    assert listing == (("busy", 5), ("quiet", 1), ("general", 0), ("old", 0))


def test_a_room_everyone_left_stays_listed_with_no_members() -> None:
    clock = Clock()
    rooms = directory(clock=clock)
    rooms.note(["lobby"])
    assert ("lobby", 3) in rooms.listing({"lobby": 3})
    clock.now += 2.0
    assert ("lobby", 0) in rooms.listing({})


def test_the_listing_is_reused_within_the_cache_interval() -> None:
    clock = Clock()
    rooms = directory(clock=clock)
    first = rooms.listing({"a": 1})
    clock.now += 1.9
    assert rooms.listing({"a": 1, "b": 2}) is first
    clock.now += 0.1
    assert ("b", 2) in rooms.listing({"a": 1, "b": 2})


def test_remembered_rooms_are_bounded_the_longest_unseen_going_first() -> None:
    rooms = directory(known_max=2)
    rooms.note(["a", "b"])
    rooms.note(["a"])
    rooms.note(["c"])
    assert {name for name, _ in rooms.listing({})} == {"general", "a", "c"}


def test_a_forgotten_room_is_no_longer_listed_unless_in_use() -> None:
    clock = Clock()
    rooms = directory(clock=clock)
    rooms.note(["gone"])
    rooms.forget("gone")
    assert "gone" not in dict(rooms.listing({}))
    clock.now += 2.0
    assert dict(rooms.listing({"gone": 1}))["gone"] == 1


LISTING = (("team-b", 9), ("a-team", 4), ("general", 2), ("team-a", 2), ("zoo", 0))


def test_search_finds_names_starting_with_the_query_before_names_containing_it() -> None:
    page = search(LISTING, query="team", offset=0, limit=10, visible=everything)
    assert [name for name, _ in page.rooms] == ["team-b", "team-a", "a-team"]
    assert page.total == 3


def test_an_empty_query_lists_every_visible_room_with_the_total_of_all_pages() -> None:
    first = search(LISTING, query="", offset=0, limit=2, visible=everything)
    rest = search(LISTING, query="", offset=2, limit=2, visible=everything)
    last = search(LISTING, query="", offset=4, limit=2, visible=everything)
    assert first.total == rest.total == last.total == 5
    assert [*first.rooms, *rest.rooms, *last.rooms] == list(LISTING)
    assert search(LISTING, query="", offset=99, limit=2, visible=everything).rooms == []


def test_rooms_the_asker_may_not_see_are_neither_listed_nor_counted() -> None:
    page = search(
        LISTING, query="", offset=0, limit=10, visible=lambda name: name.startswith("team-")
    )
    assert page.rooms == [("team-b", 9), ("team-a", 2)]
    assert page.total == 2


def test_empty_rooms_are_told_most_recently_used_first_and_bounded() -> None:
    rooms = directory()
    rooms.note(["old", "busy", "recent"])
    assert rooms.empty({"busy": 2}, limit=5) == ("recent", "old")
    assert rooms.empty({}, limit=1) == ("recent",)


def test_rooms_learnt_from_another_backend_are_listed_and_forgotten_first() -> None:
    rooms = directory(known_max=3)
    rooms.note(["mine"])
    rooms.learn(["theirs", "Not A Room", "mine", "also-theirs"])
    assert set(dict(rooms.listing({}))) == {"general", "mine", "theirs", "also-theirs"}
    assert rooms.empty({}, limit=10) == ("mine", "theirs", "also-theirs")
    rooms.learn(["one-too-many"])  # full: what is learnt never pushes out what is known
    rooms.note(["new"])  # what is seen here does, the learnt first
    assert rooms.empty({}, limit=10) == ("new", "mine", "theirs")


def test_direct_message_rooms_never_enter_the_directory() -> None:
    dm = dm_room("ann", "bob")
    rooms = directory()
    rooms.note([dm])
    rooms.learn([dm_room("eve", "bob")])
    assert rooms.listing({dm: 2}) == (("general", 0),)
    assert rooms.empty({}, limit=10) == ()
