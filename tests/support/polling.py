"""Waiting on another process's state, which no event of ours can announce."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T], *, within: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call `check` until it returns a truthy value (returned) or `within` seconds pass."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {within}s: {what or check}; last: {value!r}")
        await asyncio.sleep(interval)
