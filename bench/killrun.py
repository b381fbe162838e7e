"""The kill run: one server SIGKILLed while messages flow, its clients recovering elsewhere.

Bounded phases:
- connect and join every client (as `bench.loadgen` does);
- send on schedule from clients of the surviving servers (`plan_clients(victim=...)`); a third
  into the sending (`KILL_AT`) the victim server is SIGKILLed. Each of its clients sees its
  connection close, reconnects to a surviving server with the UI's backoff (`bench.recovery`),
  at most `RECONNECT_ATTEMPTS` times, and joins with `since` = the last id it received
  (on Centrifugo: resubscribes with `recover`, the last offset and the channel's epoch; on
  python-socketio, which cannot recover, joins again);
- wait for the victims (at most `RECOVERY_TIMEOUT` after the kill), then drain: until every
  client has as many distinct messages as were acknowledged in its room, at most
  `DRAIN_TIMEOUT` more.

Every client records the positions (`bench.recovery.POSITIONS`) of the messages it receives,
live or replayed, in arrival order; the audit of those streams against the acknowledged ones is
left to `bench.killreport`. The same run serves `kill` and `storm` (`bench.scenarios`): only
the numbers differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from bench import procstat
from bench.loadgen import (
    DRAIN_TIMEOUT,
    CpuSample,
    RunFailed,
    connect_all,
    join_retrying,
    open_session,
    raise_on_failure,
    send_on_schedule,
    until,
    wait_progress,
)
from bench.recovery import POSITIONS, RECOVERS, full_jitter_delay, resolve_acked
from bench.scenarios import KILL_AT, ClientPlan, Scenario, plan_clients
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
)

RECONNECT_ATTEMPTS: Final = 6
"""Connection attempts of a victim before it gives up (the backoff ceilings sum to 30.5 s)."""
RECOVERY_TIMEOUT: Final = 35.0
"""Seconds after the kill for every victim to be back or to have given up."""
HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds for one reconnect attempt to get the server's welcome."""


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One client's run, raw."""

    index: int
    room: str
    victim: bool
    """Connected to the killed server at first."""
    received: list[int]
    """Positions of the messages received, live or replayed, in arrival order."""
    reconnect_attempts: int
    backoff_ns: int
    """Time slept by the backoff before its attempts (the policy's share of the recovery)."""
    reconnected_ns: int | None
    """From the kill to the welcome of a surviving server (victims that got one)."""
    recovered_ns: int | None
    """From the kill to the `joined` answer there."""
    truncated: bool
    """A join answered that messages after `since` were no longer retained (Centrifugo: a
    recovery not answered `recovered: true`)."""
    replayed: int
    """Messages its joins gave back (chatserver's `history`, Centrifugo's recovered
    `publications`)."""


@dataclass(frozen=True, slots=True)
class KillResult:
    recovers: bool
    """The system's clients can ask for what they missed (`bench.recovery.RECOVERS`)."""
    sent: int
    acked: dict[str, list[int]]
    """Positions of the acknowledged messages per room (`resolve_acked` where the ack had none)."""
    clients: list[ClientRecord]
    kill_ns: int
    """When the victim was killed, on the generator's monotonic clock."""
    survivor_deliveries: list[tuple[int, int]]
    """(receive time, latency) in ns of every live delivery to a client of a surviving server."""
    join_retries: int
    wall_seconds: float
    """From the first send to the end of the drain."""
    storm_cpu: CpuSample
    """CPU seconds from the kill until every victim was back or had given up: the surviving
    servers', the broker's and the generator's (who did the work of the storm)."""
    storm_cpu_seconds: float
    """The wall time of that window."""
    listen_overflows: int
    """Connections the kernel dropped in that window, machine wide, because an accept queue was
    full (`procstat.listen_overflows`): each costs its client a retransmitted handshake, 1 s
    later or more."""


@dataclass(slots=True)
class _Run:
    """State shared by every client of the run (a `bench.loadgen.RunState`)."""

    sent: int = 0
    sending_done: bool = False
    join_retries: int = 0
    failure: BaseException | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    kill_ns: int | None = None
    acked: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Positions of the messages acknowledged with their id (chatserver), per room."""
    acked_texts: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Texts of the messages acknowledged without an id (Centrifugo), per room."""
    position_of_text: dict[str, int] = field(default_factory=dict)
    """Each text as first received, with its position (a text is unique: its send time)."""
    owed: int = 0
    """Distinct deliveries owed: each acknowledged message times the members of its room."""
    distinct: int = 0
    """Distinct (client, id) deliveries so far."""
    survivor_deliveries: list[tuple[int, int]] = field(default_factory=list)

    @property
    def drained(self) -> bool:
        acked = sum(map(len, self.acked.values())) + sum(map(len, self.acked_texts.values()))
        return self.sending_done and acked == self.sent and self.distinct >= self.owed

    def acked_positions(self) -> dict[str, list[int]]:
        rooms = self.acked.keys() | self.acked_texts.keys()
        return {
            room: self.acked[room] + resolve_acked(self.acked_texts[room], self.position_of_text)
            for room in rooms
        }


class _Member:
    """One client: a member of its room, re-joining from a surviving server when its own dies."""

    def __init__(
        self, plan: ClientPlan, wire: Wire, *, victim: bool, session: aiohttp.ClientSession
    ) -> None:
        self.plan = plan
        self.wire = wire
        self.victim = victim
        self.session = session
        self.position = POSITIONS[wire.name]
        self.recovers = wire.name in RECOVERS
        self.received: list[int] = []
        self.last_id: str | None = None
        """The id last received, as the server wrote it: the `since` of a rejoin."""
        self._distinct: set[int] = set()
        self._texts: dict[str, str] = {}
        """Text of each send by its ref, until acknowledged."""
        self.truncated = False
        self.replayed = 0
        self.attempts = 0
        self.backoff_ns = 0
        self.reconnected_ns: int | None = None
        self.recovered_ns: int | None = None
        self.ready = asyncio.Event()
        self.dropped = asyncio.Event()
        """Its first connection, to the victim, closed after the kill."""
        self.join_answered = asyncio.Event()
        self.join_refusal: Refused | None = None
        self.closing = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._seq = itertools.count(1)

    async def connect(self, url: str, run: _Run, *, expendable: bool) -> None:
        """Open a session at `url` and wait for its welcome; `expendable` if the server may die."""
        client_id = f"bench-{self.plan.index}"
        ws = await self.session.ws_connect(
            url + self.wire.path(client_id=client_id),
            max_msg_size=0,
            autoping=True,
        )
        self._ws = ws
        self.ready.clear()
        self._reader = asyncio.create_task(self._read(ws, run, expendable=expendable))
        hello = self.wire.hello(client_id=client_id, seq=next(self._seq))
        await open_session(ws, hello, self.ready, run)

    async def join(self, run: _Run) -> None:
        await join_retrying(lambda: self._try_join(run), self.plan.room, run)

    async def send(self, text: str, ref: str) -> None:
        assert self._ws is not None, "send before connect"
        frame = self.wire.send(room=self.plan.room, text=text, ref=ref, seq=next(self._seq))
        self._texts[ref] = text
        await self._ws.send_str(frame)

    async def recover(self, survivors: list[str], run: _Run) -> None:
        """Once dropped: reconnect with backoff (survivors in turn), then join `since`."""
        await self.dropped.wait()
        assert run.kill_ns is not None, "dropped before the kill"
        for attempt in range(RECONNECT_ATTEMPTS):
            delay = full_jitter_delay(attempt)
            await asyncio.sleep(delay)
            self.backoff_ns += round(delay * 1e9)
            self.attempts += 1
            url = survivors[(self.plan.index + attempt) % len(survivors)]
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    await self.connect(url, run, expendable=False)
            except (aiohttp.ClientError, OSError, TimeoutError):
                await self._hang_up()  # a half-open attempt must not linger
                continue
            self.reconnected_ns = time.monotonic_ns() - run.kill_ns
            await self.join(run)
            self.recovered_ns = time.monotonic_ns() - run.kill_ns
            return

    async def close(self) -> None:
        self.closing = True
        await self._hang_up()

    async def _hang_up(self) -> None:
        """Close the current connection on the client's own initiative (its reader stays quiet)."""
        closing, self.closing = self.closing, True
        try:
            if self._ws is not None:
                await self._ws.close()
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
        finally:
            self.closing = closing

    def record(self) -> ClientRecord:
        return ClientRecord(
            index=self.plan.index,
            room=self.plan.room,
            victim=self.victim,
            received=self.received,
            reconnect_attempts=self.attempts,
            backoff_ns=self.backoff_ns,
            reconnected_ns=self.reconnected_ns,
            recovered_ns=self.recovered_ns,
            truncated=self.truncated,
            replayed=self.replayed,
        )

    async def _try_join(self, run: _Run) -> Refused | None:
        assert self._ws is not None, "join before connect"
        self.join_answered.clear()
        self.join_refusal = None
        since = self.last_id if self.recovers else None
        await self._ws.send_str(self.wire.join(self.plan.room, seq=next(self._seq), since=since))
        await until(self.join_answered, run)
        return self.join_refusal

    def _receive(self, message: Delivered, run: _Run) -> None:
        number = self.position(message)
        run.position_of_text.setdefault(message.text, number)
        self.last_id = message.id
        self.received.append(number)
        if number not in self._distinct:
            self._distinct.add(number)
            run.distinct += 1

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, run: _Run, *, expendable: bool
    ) -> None:
        try:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                received_ns = time.monotonic_ns()
                for event in self.wire.parse(message.data):
                    match event:
                        case Delivered(text):
                            self._receive(event, run)
                            sent_ns = decode_text(text)
                            if not self.victim and sent_ns is not None:
                                run.survivor_deliveries.append((received_ns, received_ns - sent_ns))
                        case Acked(ref, id):
                            text = self._texts.pop(ref)
                            if id:
                                run.acked[self.plan.room].append(self.position(Delivered(text, id)))
                            else:
                                run.acked_texts[self.plan.room].append(text)
                            run.owed += self.plan.room_size
                        case Joined(_, history, truncated):
                            for replayed in history:
                                self._receive(replayed, run)
                            self.replayed += len(history)
                            self.truncated = self.truncated or truncated
                            self.join_answered.set()
                        case Refused(ref=None) if not self.join_answered.is_set():
                            self.join_refusal = event
                            self.join_answered.set()
                        case Refused():
                            raise WireError(f"{event.code}: {event.message} (ref {event.ref})")
                        case Ready():
                            self.ready.set()
                        case Reply(frame):
                            await ws.send_str(frame)
                run.changed.set()
        except (WireError, ValueError, KeyError) as exc:
            run.failure = run.failure or exc
        except ConnectionError:
            pass  # a killed server's connection may end in a reset: judged below
        finally:
            if not self.closing:
                if expendable and run.kill_ns is not None:
                    self.dropped.set()
                else:
                    run.failure = run.failure or RunFailed(
                        f"client {self.plan.index}: its server closed the connection"
                    )
                run.changed.set()


async def run_kill(
    scenario: Scenario,
    new_wire: Callable[[], Wire],
    *,
    urls: list[str],
    victim: int,
    kill: Callable[[], None],
    sample_cpu: Callable[[], CpuSample],
) -> KillResult:
    """Drive the servers at `urls` through the scenario; `kill()` kills server `victim`;
    `sample_cpu()` reads the CPU time of the survivors, the broker and the generator."""
    run = _Run()
    plans = plan_clients(scenario, victim=victim)
    survivors = [url for index, url in enumerate(urls) if index != victim]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        members: list[_Member] = []
        recoveries: list[asyncio.Task[None]] = []
        killed = asyncio.Event()
        storm: asyncio.Task[tuple[CpuSample, float, int]] | None = None
        try:

            async def connect(plan: ClientPlan) -> None:
                member = _Member(plan, new_wire(), victim=plan.server == victim, session=session)
                members.append(member)
                await member.connect(urls[plan.server], run, expendable=member.victim)
                await member.join(run)

            await connect_all(plans, connect)
            recoveries = [
                asyncio.create_task(member.recover(survivors, run))
                for member in members
                if member.victim
            ]
            started = time.monotonic()

            async def kill_later() -> None:
                await asyncio.sleep(KILL_AT * scenario.duration)
                run.kill_ns = time.monotonic_ns()
                killed.set()
                await asyncio.to_thread(kill)

            async def watch_storm() -> tuple[CpuSample, float, int]:
                await killed.wait()
                before, begun, overflows = (
                    sample_cpu(),
                    time.monotonic(),
                    procstat.listen_overflows(),
                )
                if recoveries:
                    await asyncio.wait(recoveries, timeout=RECOVERY_TIMEOUT)
                return (
                    sample_cpu() - before,
                    time.monotonic() - begun,
                    procstat.listen_overflows() - overflows,
                )

            storm = asyncio.create_task(watch_storm())

            senders = [member for member in members if member.plan.sends]
            await asyncio.gather(send_on_schedule(scenario, senders, run), kill_later())
            assert run.kill_ns is not None
            remaining = RECOVERY_TIMEOUT - (time.monotonic_ns() - run.kill_ns) / 1e9
            if recoveries:
                await asyncio.wait(recoveries, timeout=max(0.0, remaining))
            for task in recoveries:
                if task.done():
                    task.result()  # a join refused on a survivor fails the run
            await _drain(run)
            wall = time.monotonic() - started
            storm_cpu, storm_seconds, overflows = await storm
        finally:
            chores = [*recoveries, *([storm] if storm is not None else [])]
            for chore in chores:
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)
            await asyncio.gather(*(member.close() for member in members))
    raise_on_failure(run)
    return KillResult(
        recovers=new_wire().name in RECOVERS,
        sent=run.sent,
        acked=run.acked_positions(),
        clients=[member.record() for member in sorted(members, key=lambda m: m.plan.index)],
        kill_ns=run.kill_ns,
        survivor_deliveries=run.survivor_deliveries,
        join_retries=run.join_retries,
        wall_seconds=wall,
        storm_cpu=storm_cpu,
        storm_cpu_seconds=storm_seconds,
        listen_overflows=overflows,
    )


async def _drain(run: _Run) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while not run.drained and time.monotonic() < deadline:
        await wait_progress(run, deadline)
