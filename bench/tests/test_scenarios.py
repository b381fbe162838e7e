import pytest

from bench.scenarios import DEFAULTS, IDLE, LARGER, Scenario, ScenarioError, plan_clients


def test_one_room_spreads_members_and_senders_over_both_servers() -> None:
    plans = plan_clients(Scenario("s", subscribers=10, senders=4, rooms=1, rate=10, duration=1))
    assert [p.server for p in plans].count(0) == 5
    assert [p.server for p in plans if p.sends] == [0, 1, 0, 1]
    assert {(p.room_size, p.room_senders) for p in plans} == {(10, 4)}


def test_many_rooms_put_every_room_on_both_servers_and_one_sender_per_room() -> None:
    plans = plan_clients(Scenario("s", subscribers=40, senders=4, rooms=4, rate=10, duration=1))
    for room in {p.room for p in plans}:
        members = [p for p in plans if p.room == room]
        assert {p.server for p in members} == {0, 1}
        assert len(members) == members[0].room_size == 10
        assert sum(p.sends for p in members) == members[0].room_senders == 1
    assert {p.server for p in plans if p.sends} == {0, 1}


def test_uneven_rooms_count_their_own_members() -> None:
    plans = plan_clients(Scenario("s", subscribers=5, senders=1, rooms=2, rate=1, duration=1))
    sizes = {p.room: (p.room_size, p.room_senders) for p in plans}
    assert sorted(sizes.values()) == [(2, 0), (3, 1)]


def test_schedule_splits_the_total_rate_over_the_senders() -> None:
    scenario = Scenario("s", subscribers=8, senders=4, rooms=1, rate=40, duration=15)
    assert scenario.messages_per_sender == 150
    assert scenario.send_interval == pytest.approx(0.1)


@pytest.mark.parametrize(
    "fields",
    [
        {"senders": 0},
        {"senders": 11},
        {"rooms": 6},
        {"rate": 0},
        {"duration": -1},
        {"stalled": 9},
        {"stalled": -1},
    ],
)
def test_impossible_scenarios_are_refused(fields: dict[str, float]) -> None:
    base = {"subscribers": 10, "senders": 2, "rooms": 1, "rate": 10.0, "duration": 1.0}
    with pytest.raises(ScenarioError):
        Scenario("bad", **{**base, **fields})  # type: ignore[arg-type]


def test_every_named_scenario_is_valid_and_named_uniquely() -> None:
    named = (*DEFAULTS, *LARGER, IDLE)
    assert len({s.name for s in named}) == len(named)
    assert all(plan_clients(s) for s in named)


def test_many_small_rooms_where_every_member_chats() -> None:
    (rooms,) = [s for s in LARGER if s.name == "rooms-1000x5"]
    plans = plan_clients(rooms)
    assert all(p.sends for p in plans)
    assert {(p.room_size, p.room_senders) for p in plans} == {(5, 5)}
    assert len({p.room for p in plans}) == 1000
    assert rooms.messages_per_sender == 2  # one message per member every 10 s


def test_stalled_members_are_the_last_clients_and_are_not_owed_deliveries() -> None:
    scenario = Scenario("s", subscribers=10, senders=2, rooms=2, rate=1, duration=1, stalled=3)
    plans = plan_clients(scenario)
    assert [p.index for p in plans if p.stalls] == [7, 8, 9]
    assert not any(p.sends and p.stalls for p in plans)
    # Rooms alternate: 8 is in room 0, 7 and 9 in room 1.
    assert {p.room: p.room_owed for p in plans} == {"bench-0": 4, "bench-1": 3}


def test_with_a_victim_every_sender_is_on_a_surviving_server() -> None:
    scenario = Scenario("k", subscribers=20, senders=4, rooms=1, rate=10, duration=1, servers=3)
    plans = plan_clients(scenario, victim=0)
    assert sum(p.sends for p in plans) == 4
    assert {p.server for p in plans if p.sends} == {1, 2}
    assert {p.room_senders for p in plans} == {4}
    assert sum(p.server == 0 for p in plans) == 7  # the victim still holds its share of clients


def test_a_victim_needs_a_survivor_with_enough_senders() -> None:
    alone = Scenario("k", subscribers=10, senders=1, rooms=1, rate=1, duration=1, servers=1)
    with pytest.raises(ScenarioError, match="2 or more servers"):
        plan_clients(alone, victim=0)
    crowded = Scenario("k", subscribers=4, senders=3, rooms=1, rate=1, duration=1)
    with pytest.raises(ScenarioError, match="off the victim"):
        plan_clients(crowded, victim=0)
