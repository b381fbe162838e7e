"""What only the in-memory broker does; the shared behaviour is in the broker contract suite."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chatserver.broker import BrokerUnavailable, Record
from chatserver.broker.memory import MemoryBroker
from chatserver.interchange import PresenceBeat


class Collect:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.changes: list[bool] = []
        self.resets: list[tuple[str, int]] = []

    def on_records(self, records: Sequence[Record]) -> None:
        self.records.extend(records)

    def on_log_reset(self, room: str, epoch: int) -> None:
        self.resets.append((room, epoch))

    def on_presence(self, beat: PresenceBeat) -> None:
        pass

    def on_connection_change(self, connected: bool) -> None:
        self.changes.append(connected)


async def test_retention_keeps_only_the_newest_records() -> None:
    broker = MemoryBroker(retention=3)
    listener = Collect()
    await broker.start(listener)
    for i in range(5):
        await broker.append("general", b"%d" % i)

    await broker.follow("general")

    assert [(r.offset, r.body) for r in listener.records] == [(2, b"2"), (3, b"3"), (4, b"4")]


async def test_retention_in_bytes_keeps_the_newest_records_and_always_the_last() -> None:
    broker = MemoryBroker(retention_bytes=25)
    listener = Collect()
    await broker.start(listener)
    for i in range(5):
        await broker.append("general", b"%d" % i * 10)  # 10 bytes each
    await broker.append("huge", b"x" * 100)

    await broker.follow("general")
    await broker.follow("huge")

    assert [(r.room, r.offset) for r in listener.records] == [
        ("general", 3),
        ("general", 4),
        ("huge", 0),
    ]


async def test_start_reports_connected_and_close_refuses_later_calls() -> None:
    broker = MemoryBroker()
    listener = Collect()
    await broker.start(listener)
    assert listener.changes == [True]

    await broker.close()

    assert not broker.connected
    with pytest.raises(BrokerUnavailable):
        await broker.append("general", b"late")


async def test_follow_before_start_is_refused() -> None:
    broker = MemoryBroker()
    assert not broker.connected
    with pytest.raises(BrokerUnavailable):
        await broker.follow("general")


async def test_siblings_share_logs_but_separate_brokers_do_not() -> None:
    first = MemoryBroker()
    sibling, stranger = first.sibling(), MemoryBroker()
    listeners = Collect(), Collect()
    await sibling.start(listeners[0])
    await stranger.start(listeners[1])
    await sibling.follow("general")
    await stranger.follow("general")
    await first.start(Collect())

    await first.append("general", b"hello")
    await asyncio.sleep(0)  # deliveries are scheduled with call_soon

    assert [r.body for r in listeners[0].records] == [b"hello"]
    assert listeners[1].records == []


async def test_a_broker_started_again_starts_every_log_under_a_newer_epoch() -> None:
    """`chatserver dev` restarted: the new process's logs never reuse an id of the old one."""
    now = [1_700_000_000.0]
    before, after = MemoryBroker(clock=lambda: now[0]), MemoryBroker(clock=lambda: now[0] + 1)
    epochs = []
    for broker in (before, after):
        listener = Collect()
        await broker.start(listener)
        epochs.append(await broker.follow("general"))
        await broker.append("general", b"first")
        await asyncio.sleep(0)
        assert [(r.epoch, r.offset) for r in listener.records] == [(epochs[-1], 0)]
    assert epochs[1] > epochs[0]


async def test_a_dropped_log_restarts_its_followers_on_a_newer_epoch_after_what_came_before() -> (
    None
):
    clock_stuck = 1_700_000_000.0
    broker = MemoryBroker(clock=lambda: clock_stuck)
    listener = Collect()
    await broker.start(listener)
    old = await broker.follow("general")
    await broker.append("general", b"old")
    await broker.drop_log("general")
    await broker.append("general", b"new")
    await asyncio.sleep(0)
    ((room, new),) = listener.resets
    assert (room, new > old) == ("general", True)  # newer even on a clock that did not move
    assert [(r.epoch, r.offset, r.body) for r in listener.records] == [
        (old, 0, b"old"),
        (new, 0, b"new"),
    ]


def test_retention_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="retention"):
        MemoryBroker(retention=0)


async def test_beyond_max_rooms_the_least_recently_used_unfollowed_room_is_forgotten() -> None:
    broker = MemoryBroker(max_rooms=2, clock=lambda: 1_000.0)  # every log made in one millisecond
    listener = Collect()
    await broker.start(listener)
    first_epoch = await broker.follow("followed")
    await broker.append("old", b"x")
    await broker.append("newer", b"y")  # three logs: "old" is the idle one used least recently
    assert [await broker.exists(r) for r in ("followed", "old", "newer")] == [True, False, True]
    # Named again: a new, empty log whose epoch is above the forgotten one's, clock or not.
    assert await broker.follow("old") > first_epoch
    assert not listener.records


async def test_a_followed_room_is_never_forgotten() -> None:
    broker = MemoryBroker(max_rooms=1)
    await broker.start(Collect())
    for room in ("a", "b", "c"):
        await broker.follow(room)
    assert [await broker.exists(r) for r in ("a", "b", "c")] == [True, True, True]
    await broker.unfollow("a")
    await broker.append("d", b"x")
    assert [await broker.exists(r) for r in ("a", "b", "c", "d")] == [False, True, True, True]
