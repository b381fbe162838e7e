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

    def on_records(self, records: Sequence[Record]) -> None:
        self.records.extend(records)

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


def test_retention_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="retention"):
        MemoryBroker(retention=0)
