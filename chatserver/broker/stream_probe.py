"""Asks about streams on a spare AMQP connection: whether one exists, and when a declared one can
be used.

RabbitMQ 3.10 answers `queue.declare` of an existing stream at once, even while the connection
that created it a moment ago is still starting the stream's processes. Consuming from it or
publishing to it in that window closes the WHOLE connection: 541 INTERNAL_ERROR (the channel
crashes on `stream_not_found`) or 506 RESOURCE_ERROR ("Stream not found"); or, a little later,
closes the channel with 406 ("does not have a running replica on the local node"). Measured on
3.10.8: three connections declaring then consuming a new stream at once lost a connection in
19 rounds of 20; declaring then publishing first (and awaiting the confirm) in 20 of 20.

AMQP 0-9-1 has no harmless way to ask whether a stream is up (a passive declare succeeds, and
its declare-ok counts 0 messages either way), and every operation that would tell kills the
connection that asks when it is not. So the asking is done on a connection of its own: a
consumer that could attach there proves that the stream coordinator knows the stream and that
a replica runs on this node, which is what consuming and publishing on the main connection need.

Each question gets a channel of its own: a refused one (a 404 for a stream that does not exist
yet, a 406 for a queue limit) closes its channel, and every other question waiting on that
channel would fail with it. Measured: 48 new rooms joined at once on one backend through one
shared channel turned several into `unavailable` ("no queue ... idle-91" answering idle-106).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from pamqp.common import FieldTable

from chatserver.broker.base import BrokerUnavailable, RoomLimitReached
from chatserver.broker.supervisor import CONNECTION_ERRORS

log = logging.getLogger(__name__)

QUEUE_LIMIT_REPLY = "queue limit in vhost"
"""What RabbitMQ's 406 says when a virtual host's `max-queues` limit refuses a declare."""


class StreamProbe:
    """A lazily opened spare connection that tries consuming streams until they accept."""

    def __init__(
        self,
        node_url: Callable[[], str],
        *,
        client_name: str,
        connect_timeout: float,
        ready_timeout: float,
        retry_delay: float = 0.02,
        max_questions: int = 32,
    ) -> None:
        # The node the main connection talks to right now: "a replica on the local node" must
        # mean that node, so the probe follows the main connection from node to node.
        self._node_url = node_url
        self._connection_url = ""
        self._client_name = client_name
        self._connect_timeout = connect_timeout
        self._ready_timeout = ready_timeout
        self._retry_delay = retry_delay
        self._connection: AbstractConnection | None = None
        self._opening = asyncio.Lock()
        self._questions = asyncio.Semaphore(max_questions)
        """Channels open at once: one per question, far under AMQP's channel-max (2047)."""
        self._closed = False
        self._closing: set[asyncio.Future[None]] = set()
        """Forgotten connections being closed (held, so none is collected first)."""

    async def wait_ready(self, stream: str) -> None:
        """Return once `stream`, already declared, accepts a consumer; TimeoutError after
        `ready_timeout` seconds (the broker is away, or the stream was deleted)."""
        async with asyncio.timeout(self._ready_timeout):
            while True:
                try:
                    await self._try_consume(stream)
                    return
                except CONNECTION_ERRORS as exc:
                    # Not started yet: the broker has closed the probe's channel or connection.
                    log.info("stream %s not ready yet: %r", stream, exc)
                # No event says when a stream is up: starting one takes milliseconds, so poll.
                await asyncio.sleep(self._retry_delay)

    async def exists(self, stream: str) -> bool:
        """Whether `stream` exists, by a passive declare. A missing one closes the probe's
        channel (404), which is why it is asked here and not on a channel the broker uses."""
        try:
            async with self._question() as channel:
                await channel.queue_declare(stream, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return False
        return True

    async def declare(self, stream: str, arguments: FieldTable) -> None:
        """Declare `stream` here, so that a refusal (a queue limit reached: the channel is
        closed) costs the probe's channel only; RoomLimitReached for that refusal."""
        try:
            async with self._question() as channel:
                await channel.queue_declare(stream, durable=True, arguments=arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            if QUEUE_LIMIT_REPLY not in str(exc):
                raise
            raise RoomLimitReached(f"the broker holds as many rooms as it may: {exc}") from None

    def forget_connection(self) -> None:
        """The main connection was lost, and its node may be gone: a connection to a vanished
        pod hears nothing until heartbeats are missed (about 30 s), so every question on it
        would wait out its timeout. The next question opens a new connection instead."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            closing = asyncio.ensure_future(self._close_quietly(connection))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    @contextlib.asynccontextmanager
    async def _question(self) -> AsyncIterator[AbstractChannel]:
        """A channel of its own for one question, within one question's time limit (a
        connection that let it pass is forgotten); closed after, unless the broker closed it."""
        async with self._questions:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    connection = await self._open_connection()
                    channel = await connection.channel(publisher_confirms=False)
                    try:
                        yield channel
                    finally:
                        if not channel.is_closed:
                            with contextlib.suppress(*CONNECTION_ERRORS):
                                await channel.close()
            except TimeoutError:
                self.forget_connection()
                raise

    async def _close_quietly(self, connection: AbstractConnection) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            await asyncio.wait_for(connection.close(), self._connect_timeout)

    async def close(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._close_quietly(connection)

    async def _try_consume(self, stream: str) -> None:
        async with self._question() as channel:
            # Streams refuse consumers without a per-consumer prefetch.
            await channel.basic_qos(prefetch_count=1)
            ok = await channel.basic_consume(stream, _ignore, arguments={"x-stream-offset": "next"})
            if ok.consumer_tag is None:
                raise aiormq.exceptions.AMQPError("basic.consume-ok without a consumer tag")
            await channel.basic_cancel(ok.consumer_tag)

    async def _open_connection(self) -> AbstractConnection:
        """The probe's connection, opened again after it was lost or forgotten, or when the
        main connection moved to another node."""
        async with self._opening:
            if self._closed:
                raise BrokerUnavailable("the broker is closed")
            url = self._node_url()
            if self._connection is not None and self._connection_url != url:
                stale, self._connection = self._connection, None
                await self._close_quietly(stale)
            if self._connection is None or self._connection.is_closed:
                self._connection = await aiormq.connect(
                    url, client_properties={"connection_name": self._client_name}
                )
                self._connection_url = url
            return self._connection


async def _ignore(_: DeliveredMessage) -> None:
    """The probe's consumer lives a round trip; whatever reaches it meanwhile is not needed."""
