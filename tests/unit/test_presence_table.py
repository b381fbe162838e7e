from __future__ import annotations

from chatserver.interchange import Person, PresenceBeat
from chatserver.presence.table import PresenceTable, RoomPeople


def table(people_limit: int = 3) -> PresenceTable:
    return PresenceTable(own_pod="me", expire_after=6.0, people_limit=people_limit)


def test_counts_sum_live_local_counts_and_other_pods() -> None:
    presence = table()
    presence.observe(PresenceBeat(pod="a", sessions=2, rooms={"x": 2}), now=0)
    presence.observe(PresenceBeat(pod="b", sessions=3, rooms={"x": 1, "y": 3}), now=0)
    snapshot = presence.snapshot(own_sessions=1, own_rooms={"y": 1})
    assert snapshot.users_online == 6
    assert snapshot.rooms == {"x": 3, "y": 4}


def test_own_echo_is_ignored() -> None:
    presence = table()
    assert not presence.observe(PresenceBeat(pod="me", sessions=50), now=0)
    assert presence.snapshot(own_sessions=1, own_rooms={}).users_online == 1


def test_a_newer_beat_replaces_the_older() -> None:
    presence = table()
    presence.observe(PresenceBeat(pod="a", sessions=2), now=0)
    assert presence.observe(PresenceBeat(pod="a", sessions=1), now=1)
    assert not presence.observe(PresenceBeat(pod="a", sessions=1), now=2)
    assert presence.snapshot(own_sessions=0, own_rooms={}).users_online == 1


def test_silent_pods_expire() -> None:
    presence = table()
    presence.observe(PresenceBeat(pod="a", sessions=2), now=0)
    presence.observe(PresenceBeat(pod="b", sessions=3), now=5)
    assert not presence.expire(now=6)
    assert presence.expire(now=6.5)
    assert presence.pods == {"b"}
    assert presence.snapshot(own_sessions=0, own_rooms={}).users_online == 3


def test_gone_beat_drops_the_pod_at_once() -> None:
    presence = table()
    presence.observe(PresenceBeat(pod="a", sessions=2), now=0)
    assert presence.observe(PresenceBeat(pod="a", sessions=0, gone=True), now=1)
    assert presence.pods == frozenset()


def test_empty_rooms_are_left_out() -> None:
    presence = table()
    presence.observe(PresenceBeat(pod="a", sessions=1, rooms={"x": 0}), now=0)
    assert presence.snapshot(own_sessions=0, own_rooms={"y": 0}).rooms == {}


def test_people_are_the_first_by_name_of_the_union_of_every_pod_and_only_for_own_rooms() -> None:
    presence = table(people_limit=2)
    presence.observe(
        PresenceBeat(
            pod="a",
            sessions=2,
            rooms={"x": 2, "y": 1},
            people={"x": (Person("Bob"), Person("Grace")), "y": (Person("Zoe"),)},
        ),
        now=0,
    )
    snapshot = presence.snapshot(
        own_sessions=1, own_rooms={"x": 1}, own_people={"x": (Person("Ada"),)}
    )
    assert snapshot.people == {
        "x": RoomPeople(first=(Person("Ada"), Person("Bob")), truncated=True)
    }
    assert presence.snapshot(own_sessions=1, own_rooms={"x": 1}).people == {}


def test_one_person_on_two_pods_is_listed_once() -> None:
    presence = table()
    presence.observe(PresenceBeat(pod="a", sessions=1, people={"x": (Person("Ada", "u1"),)}), now=0)
    snapshot = presence.snapshot(
        own_sessions=1, own_rooms={"x": 1}, own_people={"x": (Person("Ada", "u1"),)}
    )
    assert snapshot.people["x"] == RoomPeople(first=(Person("Ada", "u1"),), truncated=False)


def test_a_full_list_from_any_pod_may_be_cut_and_says_so() -> None:
    presence = table(people_limit=2)
    presence.observe(
        PresenceBeat(pod="a", sessions=2, people={"x": (Person("Ada"), Person("Bob"))}), now=0
    )
    snapshot = presence.snapshot(own_sessions=0, own_rooms={}, own_people={"x": ()})
    assert snapshot.people["x"] == RoomPeople(first=(Person("Ada"), Person("Bob")), truncated=True)


def test_a_peers_longer_list_is_held_to_the_own_bound() -> None:
    presence = table(people_limit=1)
    people = tuple(Person(f"p{i}") for i in range(100))
    presence.observe(PresenceBeat(pod="a", sessions=100, people={"x": people}), now=0)
    snapshot = presence.snapshot(own_sessions=0, own_rooms={}, own_people={"x": ()})
    assert snapshot.people["x"].first == (Person("p0"),)


def test_a_change_of_people_alone_is_a_change() -> None:
    presence = table()
    presence.observe(PresenceBeat(pod="a", sessions=1, people={"x": (Person("Ada"),)}), now=0)
    assert presence.observe(PresenceBeat(pod="a", sessions=1, people={"x": (Person("Bo"),)}), now=1)
