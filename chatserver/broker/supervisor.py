"""Keeps one AMQP connection alive for the broker's whole life.

aiormq has no reconnect logic, so this loop is it: connect (with exponential backoff and full
jitter between failed attempts, so a restarted broker is not hit by every backend at once), let
the owner set the connection up, watch it, tear down, repeat. A connection counts as broken when
it closes, and also when the owner says so with `fail()`: a channel closed by the broker or a
consumer cancelled by it (aiormq reports those without closing the connection; mosquito/aiormq#116)
would otherwise leave a connection that looks healthy but delivers nothing.

With several broker URLs (the nodes of one RabbitMQ cluster) every attempt goes to the next node
in turn, starting from a random one so that backends spread over the nodes; a node that refuses
is followed at once by the next, and the backoff grows per round in which every node refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import aiormq
import yarl
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


def broker_address(url: str) -> str:
    """`host:port` of an AMQP URL: what a log line may say of it (never its credentials)."""
    parsed = yarl.URL(url)
    return f"{parsed.host}:{parsed.port}"


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
        urls: tuple[str, ...],
        *,
        on_up: Callable[[AbstractConnection], Awaitable[None]],
        on_down: Callable[[], None],
        connect_timeout: float,
        backoff_initial: float,
        backoff_cap: float,
        client_name: str,
    ) -> None:
        if not urls:
            raise ValueError("at least one broker URL is needed")
        self._urls = tuple(urls)
        self._next = random.randrange(len(self._urls))
        self.url = self._urls[self._next]
        """The URL of the current (or last) connection: the node this backend talks to."""
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
        failed_rounds = refused_in_round = 0
        while True:
            healthy = await self._connect_and_serve()
            if healthy:
                failed_rounds = refused_in_round = 0
            else:
                refused_in_round += 1
                if refused_in_round < len(self._urls):
                    continue  # another node may well answer: no reason to wait for it
                failed_rounds, refused_in_round = failed_rounds + 1, 0
            # A connection that was up resets the backoff but still waits a little: a broker
            # that breaks every new connection at once must not turn this into a busy loop.
            delay = backoff_delay(
                failed_rounds, initial=self._backoff_initial, cap=self._backoff_cap
            )
            log.info("reconnecting to the broker in %.2f s", delay)
            await asyncio.sleep(delay)

    async def _connect_and_serve(self) -> bool:
        """One connection, to the next node in turn, from connect to close; True if it got fully
        set up."""
        url = self._urls[self._next]
        self._next = (self._next + 1) % len(self._urls)
        try:
            connection = await asyncio.wait_for(
                aiormq.connect(url, client_properties={"connection_name": self._client_name}),
                self._connect_timeout,
            )
        except CONNECTION_ERRORS as exc:
            log.warning("broker connect to %s failed: %r", broker_address(url), exc)
            return False
        self.url = url
        self._broken = asyncio.get_running_loop().create_future()
        try:
            await self._on_up(connection)
            log.info("broker connected to %s", broker_address(url))
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
