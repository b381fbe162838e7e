"""Hears RabbitMQ's `connection.blocked` and `connection.unblocked` on one aiormq connection.

When a memory or disk alarm is raised, RabbitMQ stops reading from every connection that
publishes, which makes each publish (and every later frame on that connection) wait for as
long as the alarm lasts; to a client that announces the `connection.blocked` capability (aiormq
7.2 does, in its client properties) it says so, and says `connection.unblocked` when the alarm
clears. aiormq handles both frames privately (it only holds back its own writer) and offers no
callback, so `BlockedState.watch` wraps its two handlers on the connection object. If an aiormq
release renames them, `watch` logs an error and the backend runs as before, blind to alarms
(`tests/unit/test_broker_alarm.py` fails first).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiormq.abc import AbstractConnection

log = logging.getLogger(__name__)

HANDLERS: Final = (
    "_Connection__handle_connection_blocked",
    "_Connection__handle_connection_unblocked",
)
"""aiormq's private handlers of the two frames (name-mangled), in that order."""


class BlockedState:
    """Whether RabbitMQ holds back one connection's publishes, and why."""

    def __init__(self) -> None:
        self.reason: str | None = None
        """RabbitMQ's reason (e.g. `low on memory`) while blocked; None otherwise."""

    def watch(self, connection: AbstractConnection) -> None:
        """Follow the connection's blocked state from now on."""
        blocked, unblocked = (getattr(connection, name, None) for name in HANDLERS)
        if blocked is None or unblocked is None:
            log.error("this aiormq hides connection.blocked: broker alarms go unnoticed")
            return
        # An instance attribute shadows the class's method, and aiormq calls them through self.
        setattr(connection, HANDLERS[0], self._after(blocked, self._blocked))
        setattr(connection, HANDLERS[1], self._after(unblocked, self._unblocked))

    def _blocked(self, frame: Any) -> None:
        self.reason = str(getattr(frame, "reason", "") or "resource alarm")
        log.warning("the broker blocked this connection: %s", self.reason)

    def _unblocked(self, frame: Any) -> None:
        self.reason = None
        log.warning("the broker unblocked this connection")

    @staticmethod
    def _after(
        handler: Callable[[Any], Awaitable[None]], then: Callable[[Any], None]
    ) -> Callable[[Any], Awaitable[None]]:
        async def hooked(frame: Any) -> None:
            await handler(frame)
            then(frame)

        return hooked
