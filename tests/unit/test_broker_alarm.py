"""Hearing RabbitMQ's connection.blocked / unblocked through aiormq's private handlers: this
test fails first if an aiormq release renames them (alarm.py would then stay blind)."""

from __future__ import annotations

import aiormq
from pamqp.commands import Connection as ConnectionFrames

from chatserver.broker.alarm import HANDLERS, BlockedState


async def test_aiormq_announces_the_capability_and_has_the_handlers_we_wrap() -> None:
    connection = aiormq.Connection("amqp://guest:guest@127.0.0.1:1/")
    assert connection._client_properties()["capabilities"]["connection.blocked"] is True
    for name in HANDLERS:
        assert callable(getattr(connection, name))


async def test_blocked_and_unblocked_frames_set_and_clear_the_reason() -> None:
    connection = aiormq.Connection("amqp://guest:guest@127.0.0.1:1/")
    state = BlockedState()
    state.watch(connection)
    blocked, unblocked = (getattr(connection, name) for name in HANDLERS)
    await blocked(ConnectionFrames.Blocked(reason="low on memory"))
    assert state.reason == "low on memory"
    await unblocked(ConnectionFrames.Unblocked())
    assert state.reason is None
