from __future__ import annotations

from chatserver.interchange import PresenceBeat
from chatserver.presence.table import PresenceTable


def table() -> PresenceTable:
    return PresenceTable(own_pod="me", expire_after=6.0)


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
