"""Idle rooms: a room counts as idle from the first visit that found it unused."""

from __future__ import annotations

from chatoperator.idle_rooms import IdleRooms

DAY = 24 * 3600


def test_a_room_is_due_once_unused_for_the_idle_time_in_a_row() -> None:
    rooms = IdleRooms()
    rooms.saw(["a", "b"], now=0)
    rooms.saw(["a", "b"], now=DAY)
    assert rooms.due(DAY, idle_seconds=2 * DAY) == ()
    rooms.saw(["a", "b", "c"], now=2 * DAY)
    assert rooms.due(2 * DAY, idle_seconds=2 * DAY) == ("a", "b")


def test_a_room_used_in_between_starts_over() -> None:
    rooms = IdleRooms()
    rooms.saw(["a"], now=0)
    rooms.saw([], now=DAY)  # someone was in it at this visit
    rooms.saw(["a"], now=2 * DAY)
    assert rooms.due(2 * DAY + 1, idle_seconds=2 * DAY) == ()
    assert rooms.due(4 * DAY, idle_seconds=2 * DAY) == ("a",)


def test_zero_means_never() -> None:
    rooms = IdleRooms()
    rooms.saw(["a"], now=0)
    assert rooms.due(365 * DAY, idle_seconds=0) == ()
