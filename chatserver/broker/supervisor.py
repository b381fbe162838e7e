"""Keeps one AMQP connection alive for the broker's whole life.

aiormq has no reconnect logic, so this loop is it: connect (with exponential backoff and full
jitter between failed attempts, so a restarted broker is not hit by every backend at once), let
the owner set the connection up, watch it, tear down, repeat. A connection counts as broken when
it closes, and also when the owner says so with `fail()`: a channel closed by the broker or a
consumer cancelled by it (aiormq reports those without closing the connection; mosquito/aiormq#116)
would otherwise leave a connection that looks healthy but delivers nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import aiormq
from aiormq.abc import AbstractConnection

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    TimeoutError,
)
"""What a lost or refusing broker raises through aiormq: each means "reconnect", not "bug"."""


def backoff_delay(
    attempt: int, *, initial: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0-based): "full jitter", a uniform
    draw below an exponentially growing ceiling (AWS Architecture Blog, "Exponential Backoff
    and Jitter")."""
    ceiling = min(cap, initial * 2.0 ** min(attempt, 32))
    return ceiling * rand()


class ConnectionSupervisor:
    """Connects, calls `on_up(connection)`, waits for the connection to break, calls `on_down()`.

    `on_up` declares and consumes; if it raises one of CONNECTION_ERRORS the attempt counts as
    failed. `on_down` runs once for every connection `on_up` was called with, however far it got.
    """

    def __init__(
        self,
        url: str,
        *,
        on_up: Callable[[AbstractConnection], Awaitable[None]],
        on_down: Callable[[], None],
        connect_timeout: float,
        backoff_initial: float,
        backoff_cap: float,
        client_name: str,
    ) -> None:
        self._url = url
        self._on_up = on_up
        self._on_down = on_down
        self._connect_timeout = connect_timeout
        self._backoff_initial = backoff_initial
        self._backoff_cap = backoff_cap
        self._client_name = client_name
        self._task: asyncio.Task[None] | None = None
        self._broken: asyncio.Future[str] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="amqp-supervisor")

    def fail(self, reason: str) -> None:
        """Declare the current connection broken: it is closed and a new one is made."""
        if self._broken is not None and not self._broken.done():
            self._broken.set_result(reason)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        attempt = 0
        while True:
            healthy = await self._connect_and_serve()
            # A connection that was up resets the backoff but still waits a little: a broker
            # that breaks every new connection at once must not turn this into a busy loop.
            attempt = 0 if healthy else attempt + 1
            delay = backoff_delay(attempt, initial=self._backoff_initial, cap=self._backoff_cap)
            log.info("reconnecting to the broker in %.2f s", delay)
            await asyncio.sleep(delay)

    async def _connect_and_serve(self) -> bool:
        """One connection from connect to close; True if it got fully set up."""
        try:
            connection = await asyncio.wait_for(
                aiormq.connect(self._url, client_properties={"connection_name": self._client_name}),
                self._connect_timeout,
            )
        except CONNECTION_ERRORS as exc:
            log.warning("broker connect failed: %r", exc)
            return False
        self._broken = asyncio.get_running_loop().create_future()
        try:
            await self._on_up(connection)
            log.info("broker connected")
            await asyncio.wait(
                [connection.closing, self._broken], return_when=asyncio.FIRST_COMPLETED
            )
            reason = self._broken.result() if self._broken.done() else "connection closed"
            log.warning("broker connection lost: %s", reason)
            return True
        except CONNECTION_ERRORS as exc:
            log.warning("broker setup failed: %r", exc)
            return False
        except Exception:
            # A bug, surfaced with its traceback; the loop goes on, since a backend without a
            # broker connection for good would be worse than one that keeps trying.
            log.exception("broker setup failed unexpectedly")
            return False
        finally:
            self._on_down()
            with contextlib.suppress(*CONNECTION_ERRORS):
                await asyncio.wait_for(connection.close(), self._connect_timeout)
