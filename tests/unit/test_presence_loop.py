"""The presence loop over the in-memory broker: beats between pods, snapshots pushed on change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from chatserver.broker.base import Record
from chatserver.broker.memory import MemoryBroker
from chatserver.interchange import Person, PresenceBeat
from chatserver.presence.loop import (
    PRESENCE_FRAMES_PER_SECOND,
    PRESENCE_MIN_GAP,
    LocalCounts,
    LocalPeople,
    Presence,
    round_gap,
)
from chatserver.presence.table import PresenceSnapshot, RoomPeople


class Pod:
    """One backend's presence with local counts set by the test."""

    def __init__(self, broker: MemoryBroker, name: str) -> None:
        self.broker = broker
        self.sessions = 0
        self.rooms: dict[str, int] = {}
        self.people: LocalPeople = {}
        self.pushed: list[PresenceSnapshot] = []
        self.pushed_event = asyncio.Event()
        self.presence = Presence(
            broker,
            pod=name,
            interval=1.0,
            people_limit=3,
            local=self.local,
            people=lambda: self.people,
            push=self.push,
        )
        self.loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.broker.start(self)
        self.loop = asyncio.create_task(self.presence.run())

    async def stop(self) -> None:
        """As the backend shuts down: the loop ends before the last beat."""
        if self.loop is not None:
            self.loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.loop
            self.loop = None

    def local(self) -> LocalCounts:
        return self.sessions, dict(self.rooms)

    def push(self, snapshot: PresenceSnapshot) -> None:
        self.pushed.append(snapshot)
        self.pushed_event.set()

    async def until(self, users: int, rooms: Mapping[str, int] | None = None) -> None:
        async with asyncio.timeout(5):
            while not (
                self.pushed
                and self.pushed[-1].users_online == users
                and (rooms is None or dict(self.pushed[-1].rooms) == rooms)
            ):
                self.pushed_event.clear()
                await self.pushed_event.wait()

    # BrokerListener
    def on_records(self, records: Sequence[Record]) -> None:
        pass

    def on_presence(self, beat: PresenceBeat) -> None:
        self.presence.observe(beat)

    def on_connection_change(self, connected: bool) -> None:
        self.presence.changed()


@pytest.fixture
async def pods() -> AsyncIterator[tuple[Pod, Pod]]:
    root = MemoryBroker()
    pair = (Pod(root, "a"), Pod(root.sibling(), "b"))
    for pod in pair:
        await pod.start()
    yield pair
    for pod in pair:
        await pod.stop()
        await pod.broker.close()


async def test_each_pod_counts_the_others_sessions(pods: tuple[Pod, Pod]) -> None:
    a, b = pods
    a.sessions, a.rooms = 1, {"lobby": 1}
    b.sessions, b.rooms = 2, {"lobby": 1, "other": 1}
    a.presence.changed()
    b.presence.changed()
    await a.until(3, {"lobby": 2, "other": 1})
    await b.until(3, {"lobby": 2, "other": 1})


async def test_a_gone_beat_drops_the_pod_at_once(pods: tuple[Pod, Pod]) -> None:
    a, b = pods
    b.sessions = 5
    b.presence.changed()
    await a.until(5)
    await b.stop()
    await b.presence.announce_gone()
    async with asyncio.timeout(1.0):  # well before b's beats would expire (3 intervals)
        await a.until(0)


async def test_an_unchanged_snapshot_is_not_pushed_again(pods: tuple[Pod, Pod]) -> None:
    a, _ = pods
    a.sessions = 1
    a.presence.changed()
    await a.until(1)
    pushed = len(a.pushed)
    for _ in range(3):
        a.presence.changed()
        await asyncio.sleep(0.3)
    assert len(a.pushed) == pushed


async def test_each_pod_is_pushed_who_is_in_its_rooms_across_pods(pods: tuple[Pod, Pod]) -> None:
    a, b = pods
    a.sessions, a.rooms, a.people = 1, {"lobby": 1}, {"lobby": (Person("Grace"),)}
    b.sessions, b.rooms = 2, {"lobby": 2}
    b.people = {"lobby": (Person("Ada"), Person("Grace"))}
    a.presence.changed()
    b.presence.changed()
    await a.until(3, {"lobby": 3})
    async with asyncio.timeout(5):
        while a.pushed[-1].people.get("lobby") != RoomPeople(
            first=(Person("Ada"), Person("Grace")), truncated=False
        ):
            a.pushed_event.clear()
            await a.pushed_event.wait()
    b.people = {"lobby": (Person("Ada"), Person("Bob"), Person("Grace"))}
    b.presence.changed()
    async with asyncio.timeout(5):
        while not a.pushed[-1].people["lobby"].truncated:
            a.pushed_event.clear()
            await a.pushed_event.wait()


def test_rounds_are_spaced_so_a_busy_pod_sends_a_bounded_number_of_presence_frames() -> None:
    assert round_gap(0) == PRESENCE_MIN_GAP
    assert round_gap(1_000) == PRESENCE_MIN_GAP
    assert round_gap(10_000) == pytest.approx(2.0)
    for sessions in (1, 1_250, 5_000, 50_000):
        assert sessions / round_gap(sessions) <= PRESENCE_FRAMES_PER_SECOND
