"""The load generator: WebSocket clients on one asyncio loop, senders on a fixed schedule.

A run goes through bounded phases:
- connect and join every client;
- warm up: senders repeat a warmup message until every client has received one from every
  sender of its room, which proves the fan-out path through the broker between every pair of
  servers (a server may subscribe lazily: python-socketio's manager only starts on the first
  connection, and messages published before its queue is bound are dropped by the exchange);
- measure: senders publish on schedule for the scenario's duration, receivers record each
  delivery's latency from the send time carried in the text;
- drain: until every accepted message has reached every member of its room, or a timeout.

CPU is sampled right before the first measured send and right after the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import aiohttp

from bench.scenarios import ClientPlan, Scenario, plan_clients
from bench.wire import (
    Acked,
    Delivered,
    Joined,
    Ready,
    Refused,
    Reply,
    Wire,
    WireError,
    decode_text,
    encode_text,
    encode_warmup,
    warmup_sender,
)

CONNECT_TIMEOUT: Final = 60.0
"""Seconds for all clients to connect and join (a busy 2-core machine is slow at handshakes)..."""
CONNECT_TIMEOUT_PER_CLIENT: Final = 0.02
"""...plus this per client: thousands of Python handshakes take tens of seconds."""
CONNECT_CONCURRENCY: Final = 32
"""Handshakes in flight at once: a burst of hundreds would measure the accept queue instead."""
WARMUP_TIMEOUT: Final = 30.0
WARMUP_ROUND: Final = 1.0
"""Seconds between two rounds of warmup messages, at least: no faster than the measure sends
(with 5,000 senders a round a second would be ten times the measured load)..."""
WARMUP_ROUNDS: Final = 6
"""...and the warmup gets at least this many rounds before it fails."""
JOIN_ATTEMPTS: Final = 5
JOIN_RETRY_DELAY: Final = 0.2
"""Seconds before the first retry of a join answered `unavailable` (doubled each time): the
contract lets a client retry then, as a real one would."""
WARMUP_REF: Final = "w"
"""Prefix of the `ref`s of warmup messages, whose acks are not part of the measure."""
STALLED_RECEIVE_BUFFER: Final = 4096
"""Bytes of a stalled client's socket receive buffer (the kernel doubles it): its backlog
reaches the server after a few dozen messages instead of megabytes."""
DRAIN_TIMEOUT: Final = 10.0
"""Seconds after the last scheduled send for the stragglers; what has not arrived then is lost."""


class RunFailed(RuntimeError):
    """The run could not be measured (a refused connection, a server error, a phase timeout)."""


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used so far, by role."""

    servers: float
    broker: float
    generator: float

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            servers=self.servers - other.servers,
            broker=self.broker - other.broker,
            generator=self.generator - other.generator,
        )


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one run measured, raw (see `bench.report` for the figures derived from it)."""

    sent: int
    acked: int
    refused: int
    """Sends answered `unavailable` (not retried; their deliveries are not owed)."""
    expected: int
    """Deliveries owed: each acked message times the members of its room."""
    delivered: int
    """Distinct deliveries: a message counts once per client, however often it arrives."""
    duplicates: int
    """Arrivals of a message the client had already received."""
    latencies_ns: list[int]
    wall_seconds: float
    cpu: CpuSample
    closed_by_server: int
    """Clients the server closed during the run (e.g. cut as slow consumers)."""
    join_retries: int
    """Joins answered `unavailable` and retried while connecting (not part of the measure)."""


class RunState(Protocol):
    """What the shared helpers below need of a run's state (`_Tally` here, `bench.killrun`'s)."""

    sent: int
    sending_done: bool
    join_retries: int
    failure: BaseException | None
    changed: asyncio.Event
    """Set by readers on progress."""


class Sender(Protocol):
    plan: ClientPlan

    async def send(self, text: str, ref: str) -> None: ...


@dataclass(slots=True)
class _Tally:
    """Counters shared by every client of a run, updated by their readers."""

    sent: int = 0
    acked: int = 0
    refused: int = 0
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    warm: int = 0
    closed_by_server: int = 0
    join_retries: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    failure: BaseException | None = None
    sending_done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def drained(self) -> bool:
        answered = self.acked + self.refused
        return self.sending_done and answered == self.sent and self.delivered >= self.expected


class _Client:
    def __init__(
        self,
        plan: ClientPlan,
        wire: Wire,
        *,
        ws: aiohttp.ClientWebSocketResponse,
        tally: _Tally,
    ) -> None:
        self.plan = plan
        self.wire = wire
        self.ws = ws
        self.tally = tally
        self.ready = asyncio.Event()
        self.join_answered = asyncio.Event()
        self.join_refusal: Refused | None = None
        self.warm_from: set[int] = set()
        """Senders whose warmup message this client has received."""
        self.received: set[int] = set()
        """Send times of the measured messages received (a message's identity in the run)."""
        self.closing = False
        self._seq = itertools.count(1)
        self.reader = asyncio.create_task(self._read())

    async def open(self, client_id: str) -> None:
        hello = self.wire.hello(client_id=client_id, seq=next(self._seq))
        await open_session(self.ws, hello, self.ready, self.tally)

    async def join(self) -> None:
        await join_retrying(self._try_join, self.plan.room, self.tally)

    async def _try_join(self) -> Refused | None:
        self.join_answered.clear()
        self.join_refusal = None
        await self.ws.send_str(self.wire.join(self.plan.room, seq=next(self._seq)))
        await until(self.join_answered, self.tally)
        return self.join_refusal

    async def send(self, text: str, ref: str) -> None:
        frame = self.wire.send(room=self.plan.room, text=text, ref=ref, seq=next(self._seq))
        await self.ws.send_str(frame)

    async def stall(self) -> None:
        """Stop reading, the connection left open, as a client behind a dead network would:
        the socket is no longer read and its receive buffer is shrunk, so what the server
        writes piles up in the server's send buffer, then in the server."""
        self.closing = True  # whatever happens to it now is not the server's doing
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        self.ws.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RECEIVE_BUFFER
        )
        self._transport().pause_reading()

    def _transport(self) -> asyncio.Transport:
        # aiohttp reads into its own 128 KiB queue whether or not the client reads it, and has
        # no public way to stop: the connection's transport is reached through its response.
        transport = self.ws._response.connection and self.ws._response.connection.transport
        assert transport is not None, "the WebSocket's connection is gone"
        return transport

    async def close(self) -> None:
        if self.plan.stalls and not self.ws.closed:
            self._transport().resume_reading()  # else the closing handshake waits for nothing
        self.closing = True
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader

    def _warmed_by(self, sender: int) -> None:
        if sender not in self.warm_from:
            self.warm_from.add(sender)
            if len(self.warm_from) == self.plan.room_senders:
                self.tally.warm += 1

    async def _read(self) -> None:
        tally = self.tally
        try:
            async for message in self.ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                received_ns = time.monotonic_ns()
                for event in self.wire.parse(message.data):
                    match event:
                        case Delivered(text):
                            sent_ns = decode_text(text)
                            if sent_ns in self.received:
                                tally.duplicates += 1
                            elif sent_ns is not None:
                                self.received.add(sent_ns)
                                tally.delivered += 1
                                tally.latencies_ns.append(received_ns - sent_ns)
                            else:
                                self._warmed_by(warmup_sender(text))
                        case Acked(ref) if not ref.startswith(WARMUP_REF):
                            tally.acked += 1
                            tally.expected += self.plan.room_owed
                        case Joined():
                            self.join_answered.set()
                        case Refused(ref=None) if not self.join_answered.is_set():
                            self.join_refusal = event
                            self.join_answered.set()
                        case Refused(code="unavailable", ref=str(ref)):
                            # The contract lets a client retry; the bench does not, it counts.
                            # A warmup message is repeated anyway.
                            tally.refused += not ref.startswith(WARMUP_REF)
                        case Refused():
                            raise WireError(f"{event.code}: {event.message} (ref {event.ref})")
                        case Ready():
                            self.ready.set()
                        case Reply(frame):
                            await self.ws.send_str(frame)
                tally.changed.set()
        except (WireError, ValueError, KeyError, ConnectionError) as exc:
            tally.failure = tally.failure or exc
        finally:
            if not self.closing:
                tally.closed_by_server += 1
                tally.changed.set()


async def run_load(
    scenario: Scenario,
    new_wire: Callable[[], Wire],
    *,
    urls: list[str],
    sample_cpu: Callable[[], CpuSample],
) -> LoadResult:
    """Drive one system (its server processes at `urls`, spoken to through a `new_wire()` per
    connection) through the scenario."""
    tally = _Tally()
    async with _connected(scenario, new_wire, urls=urls, tally=tally) as clients:
        senders = [client for client in clients if client.plan.sends]
        # A room without a sender has nothing to prove, nor to measure.
        listeners = sum(client.plan.room_senders > 0 for client in clients)
        await _warm_up(senders, listeners, tally, every=max(WARMUP_ROUND, scenario.send_interval))
        await asyncio.gather(*(client.stall() for client in clients if client.plan.stalls))
        before, started = sample_cpu(), time.monotonic()
        await send_on_schedule(scenario, senders, tally)
        await _drain(tally)
        wall, after = time.monotonic() - started, sample_cpu()
    raise_on_failure(tally)
    return LoadResult(
        sent=tally.sent,
        acked=tally.acked,
        refused=tally.refused,
        expected=tally.expected,
        delivered=tally.delivered,
        duplicates=tally.duplicates,
        latencies_ns=tally.latencies_ns,
        wall_seconds=wall,
        cpu=after - before,
        closed_by_server=tally.closed_by_server,
        join_retries=tally.join_retries,
    )


@dataclass(frozen=True, slots=True)
class IdleResult:
    """Memory of one idle run: after every client joined and sat idle, minus before any."""

    connections: int
    connect_seconds: float
    server_rss_bytes: int
    """Growth of the servers' resident memory (VmRSS, summed)."""
    tcp_buffer_bytes: int
    """Growth of the machine's TCP buffer memory (both ends of every connection are here)."""
    socket_slab_bytes: int
    """Growth of the machine's socket objects in the kernel (both ends, as above)."""
    idle_seconds: float
    """How long the clients sat idle, every one connected and joined."""
    idle_server_cpu_seconds: float
    """The servers' CPU time meanwhile: what holding the connections costs (heartbeats,
    presence, timers)."""
    join_retries: int


@dataclass(frozen=True, slots=True)
class MemorySample:
    server_rss: int
    tcp_buffers: int
    socket_slabs: int


async def run_idle(
    scenario: Scenario,
    new_wire: Callable[[], Wire],
    *,
    urls: list[str],
    sample_memory: Callable[[], MemorySample],
    sample_cpu: Callable[[], CpuSample],
) -> IdleResult:
    """Connect and join every client of the scenario, leave them idle for its duration, and
    measure what they cost the servers and the kernel."""
    tally = _Tally()
    before, started = sample_memory(), time.monotonic()
    async with _connected(scenario, new_wire, urls=urls, tally=tally) as clients:
        idle_from, cpu_before = time.monotonic(), sample_cpu()
        connected = idle_from - started
        await asyncio.sleep(scenario.duration)  # also lets the servers' allocators settle
        idle_cpu, idle_seconds = sample_cpu() - cpu_before, time.monotonic() - idle_from
        raise_on_failure(tally)
        after = sample_memory()
        connections = len(clients)
    return IdleResult(
        connections=connections,
        connect_seconds=connected,
        server_rss_bytes=after.server_rss - before.server_rss,
        tcp_buffer_bytes=after.tcp_buffers - before.tcp_buffers,
        socket_slab_bytes=after.socket_slabs - before.socket_slabs,
        idle_seconds=idle_seconds,
        idle_server_cpu_seconds=idle_cpu.servers,
        join_retries=tally.join_retries,
    )


@contextlib.asynccontextmanager
async def _connected(
    scenario: Scenario, new_wire: Callable[[], Wire], *, urls: list[str], tally: _Tally
) -> AsyncIterator[list[_Client]]:
    """Every client of the scenario connected and joined; all closed on the way out."""
    clients: list[_Client] = []

    async def connect(plan: ClientPlan) -> None:
        wire, client_id = new_wire(), f"bench-{plan.index}"
        ws = await session.ws_connect(
            urls[plan.server] + wire.path(client_id=client_id), max_msg_size=0, autoping=True
        )
        client = _Client(plan, wire, ws=ws, tally=tally)
        clients.append(client)
        await client.open(client_id)
        await client.join()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        try:
            await connect_all(plan_clients(scenario), connect)
            yield clients
        finally:
            await asyncio.gather(*(client.close() for client in clients))


async def connect_all(
    plans: Sequence[ClientPlan], connect: Callable[[ClientPlan], Awaitable[None]]
) -> None:
    """Connect (and join) every client, `CONNECT_CONCURRENCY` at a time, within
    `CONNECT_TIMEOUT` plus `CONNECT_TIMEOUT_PER_CLIENT` each."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    timeout = CONNECT_TIMEOUT + CONNECT_TIMEOUT_PER_CLIENT * len(plans)
    connected = 0

    async def gated(plan: ClientPlan) -> None:
        nonlocal connected
        async with gate:
            await connect(plan)
        connected += 1

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(gated(plan) for plan in plans))
    except TimeoutError:
        raise RunFailed(
            f"only {connected} of {len(plans)} clients connected and joined within {timeout:g}s"
        ) from None


async def open_session(
    ws: aiohttp.ClientWebSocketResponse, hello: str | None, ready: asyncio.Event, state: RunState
) -> None:
    """Send the `hello` frame if the protocol opens with the client, then wait for `ready`."""
    if hello is not None:
        await ws.send_str(hello)
    await until(ready, state)


async def join_retrying(
    try_join: Callable[[], Awaitable[Refused | None]], room: str, state: RunState
) -> None:
    """Join through `try_join` (None when joined), retrying a refusal `unavailable`."""
    for attempt in range(JOIN_ATTEMPTS):
        refusal = await try_join()
        if refusal is None:
            return
        if refusal.code != "unavailable":
            raise RunFailed(f"join {room}: {refusal.code}: {refusal.message}")
        state.join_retries += 1
        await asyncio.sleep(JOIN_RETRY_DELAY * 2**attempt)
    raise RunFailed(f"join {room}: still unavailable after {JOIN_ATTEMPTS} attempts")


async def until(event: asyncio.Event, state: RunState) -> None:
    """Wait for `event`, but fail at once if any client failed meanwhile."""
    while not event.is_set():
        raise_on_failure(state)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 0.5)


async def _warm_up(senders: list[_Client], listeners: int, tally: _Tally, *, every: float) -> None:
    """Rounds of one warmup message per sender, `every` seconds, until every listener heard
    from every sender of its room."""
    refs = itertools.count()
    timeout = max(WARMUP_TIMEOUT, WARMUP_ROUNDS * every)
    try:
        async with asyncio.timeout(timeout):
            while tally.warm < listeners:
                for sender in senders:
                    await sender.send(encode_warmup(sender.plan.index), f"{WARMUP_REF}{next(refs)}")
                deadline = time.monotonic() + every
                while tally.warm < listeners and time.monotonic() < deadline:
                    await wait_progress(tally, deadline)
    except TimeoutError:
        raise RunFailed(
            f"warmup: only {tally.warm} of {listeners} clients heard from every sender of "
            f"their room within {timeout:g}s: the fan-out path is not working"
        ) from None


async def send_on_schedule(scenario: Scenario, senders: Sequence[Sender], state: RunState) -> None:
    """Publish `scenario.rate` messages a second from `senders` for `scenario.duration`, each
    text the send time (open loop: on schedule, never waiting for an answer)."""
    start = time.monotonic()
    interval = scenario.send_interval

    async def publish(position: int, sender: Sender) -> None:
        # Senders are staggered over one interval, so the total rate is even, not bursty.
        first = start + position * interval / len(senders)
        for k in range(scenario.messages_per_sender):
            await asyncio.sleep(max(0.0, first + k * interval - time.monotonic()))
            state.sent += 1
            await sender.send(encode_text(time.monotonic_ns()), f"m{sender.plan.index}-{k}")

    try:
        await asyncio.gather(*(publish(i, sender) for i, sender in enumerate(senders)))
    finally:
        state.sending_done = True
    raise_on_failure(state)


async def _drain(tally: _Tally) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while not tally.drained and time.monotonic() < deadline:
        await wait_progress(tally, deadline)


async def wait_progress(state: RunState, deadline: float) -> None:
    """Until a reader reports progress, at the latest until `deadline` (monotonic clock)."""
    state.changed.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.changed.wait(), max(0.0, deadline - time.monotonic()))
    raise_on_failure(state)


def raise_on_failure(state: RunState) -> None:
    if state.failure is not None:
        raise RunFailed(f"a client failed: {state.failure!r}") from state.failure
