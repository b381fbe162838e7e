"""The listening socket's guard: caps counted per process and per address, and the cap that
fits the file descriptor limit."""

from __future__ import annotations

import resource

import pytest

from chatserver.listener import FD_RESERVE, Guard, connection_cap
from chatserver.settings import ListenSettings


async def test_the_caps_count_open_connections_per_process_and_per_address() -> None:
    guard = Guard(ListenSettings(max_connections_per_ip=2), max_connections=3)
    assert [guard.admit("a"), guard.admit("a"), guard.admit("a")] == [True, True, False]
    assert guard.admit("b")
    assert not guard.admit("c")  # three open: the process cap
    guard.release("a")
    assert guard.admit("c")
    assert not guard.admit("a")  # the process cap again, not a's


async def test_a_per_address_cap_of_zero_is_no_cap() -> None:
    guard = Guard(ListenSettings(max_connections_per_ip=0), max_connections=100)
    assert all(guard.admit("frontend-pod") for _ in range(100))


def test_the_cap_leaves_the_reserve_of_descriptors_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (FD_RESERVE + 1000, 4096))
    assert connection_cap(10_000, descriptors_each=1) == 1000
    assert connection_cap(10_000, descriptors_each=2) == 500
    assert connection_cap(100, descriptors_each=2) == 100
