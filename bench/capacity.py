"""The rooms one RabbitMQ node holds: `python -m bench --scenario capacity` (issue 17).

One private RabbitMQ node (the management API on, the most descriptors this process may give)
and three chatserver backends. The broker is grown to each size of idle rooms in turn (1 000,
2 000 and 3 000 by default, `--sizes` for others), and every room is followed by every backend:
each backend holds one member in it, on connections of `contract.DEFAULT_MAX_ROOMS_PER_CONNECTION`
rooms each (the default cap). A size whose descriptors would pass `DESCRIPTOR_HEADROOM` of the
node's limit is not grown to: out of descriptors, the node would fail every room. At each size it
records
- the broker node's file descriptors and memory, as its management API reports them, its
  resident memory and its data directory on disk;
- every backend's resident memory;
- join latency with the broker at that size: a new room (the broker declares its stream), a
  quiet room no member of this backend has joined (the backend starts reading its stream) and a
  room the backend already follows (answered from its window), each from a fresh connection.
Figures per room are the differences between two sizes divided by the rooms added, so what the
node and the backends hold without any room does not blur them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import resource
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from bench import procstat
from bench.servers import Broker as BrokerProcesses
from bench.servers import ServerSet, running_servers
from bench.wire import WIRES, Joined, Ready, Refused, WireError
from chatserver import contract
from tests.fixtures.rabbitmq import RabbitMQNode, new_node

DEFAULT_SIZES: Final = (1_000, 2_000, 3_000)
BACKENDS: Final = 3
ROOMS_PER_CONNECTION: Final = contract.DEFAULT_MAX_ROOMS_PER_CONNECTION
BROKER_DESCRIPTORS: Final = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
"""The node's descriptor limit for the run: the most this process may give it (its hard limit;
raising that takes CAP_SYS_RESOURCE, which a container may not have)."""
DESCRIPTOR_HEADROOM: Final = 0.9
FIRST_GUESS_DESCRIPTORS: Final = 7.0
"""Descriptors per room followed by three backends, before a size has been measured (5 on
RabbitMQ 3.10.8 with its management plugin)."""
JOINS_IN_FLIGHT: Final = 48
"""Joins awaiting their answer at once, over all connections: enough to keep the broker busy,
few enough that a join's latency is the broker's work, not a queue in the generator."""
JOIN_TIMEOUT: Final = 60.0
SECONDS_PER_ROOM: Final = 0.2
"""Growth budget: a size must be reached within this per room added (plus a minute), far
slower than measured (about 0.02 s), so only a broker that stopped answering hits it."""
PROBES: Final = 20
"""Joins timed per kind at each size."""
LAYOUT: Final = {
    "backends": BACKENDS,
    "rooms_per_connection": ROOMS_PER_CONNECTION,
    "joins_in_flight": JOINS_IN_FLIGHT,
}
"""How the rooms are followed, recorded with the results."""
STATISTICS_INTERVAL: Final = 6.0
"""Seconds to wait before reading the node's figures: the management API refreshes them every 5 s
(`collect_statistics_interval`)."""
_MANAGEMENT_HEADERS: Final = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}


class CapacityError(RuntimeError):
    """The run could not grow the broker to a size (a refused or unanswered join)."""


@dataclass(frozen=True, slots=True)
class Broker:
    """The broker node, as measured at one size."""

    descriptors: int
    descriptor_limit: int
    memory_bytes: int
    """`mem_used` of the management API: what RabbitMQ counts toward its memory alarm."""
    rss_bytes: int
    disk_bytes: int


@dataclass(frozen=True, slots=True)
class JoinLatencies:
    """Milliseconds from `join` to `joined`, `PROBES` of each kind."""

    create_ms: tuple[float, ...]
    """A room that does not exist yet."""
    cold_ms: tuple[float, ...]
    """An existing quiet room this backend does not follow yet."""
    followed_ms: tuple[float, ...]
    """A room this backend follows already."""


@dataclass(frozen=True, slots=True)
class Step:
    """The broker and the backends with `rooms` idle rooms, each followed by every backend."""

    rooms: int
    grow_seconds: float
    """Time to add the rooms since the previous size (joins on every backend)."""
    broker_one_reader: Broker
    """The broker once the first backend has joined every room (its stream and one reader)."""
    broker: Broker
    """The broker once every backend has joined every room."""
    backend_rss_bytes: tuple[int, ...]
    joins: JoinLatencies


@dataclass(frozen=True, slots=True)
class PerRoom:
    """What each room added between two sizes cost, on average."""

    from_rooms: int
    to_rooms: int
    broker_descriptors: float
    """With every backend reading the room."""
    descriptors_per_reader: float
    """What one more backend reading the room adds."""
    broker_memory_bytes: float
    memory_per_reader_bytes: float
    broker_disk_bytes: float
    backend_rss_bytes: float
    """Per backend following the room."""


def per_room(steps: Sequence[Step]) -> list[PerRoom]:
    """The cost of a room between each two consecutive sizes."""
    costs = []
    for before, after in itertools.pairwise(steps):
        added = after.rooms - before.rooms
        more_readers = added * (BACKENDS - 1)
        backends_after = statistics.fmean(after.backend_rss_bytes)
        backends_before = statistics.fmean(before.backend_rss_bytes)
        costs.append(
            PerRoom(
                from_rooms=before.rooms,
                to_rooms=after.rooms,
                broker_descriptors=(after.broker.descriptors - before.broker.descriptors) / added,
                descriptors_per_reader=(
                    after.broker.descriptors - after.broker_one_reader.descriptors
                )
                / more_readers,
                broker_memory_bytes=(after.broker.memory_bytes - before.broker.memory_bytes)
                / added,
                memory_per_reader_bytes=(
                    after.broker.memory_bytes - after.broker_one_reader.memory_bytes
                )
                / more_readers,
                broker_disk_bytes=(after.broker.disk_bytes - before.broker.disk_bytes) / added,
                backend_rss_bytes=(backends_after - backends_before) / added,
            )
        )
    return costs


def fits(size: int, broker: Broker, last: Step | None) -> bool:
    """Whether growing to `size` rooms keeps the node under `DESCRIPTOR_HEADROOM` of its
    descriptor limit, at the descriptors per room measured so far (all of the node's own
    counted as the rooms', which errs on the safe side), or `FIRST_GUESS_DESCRIPTORS` before
    any was measured."""
    per_room = last.broker.descriptors / last.rooms if last else FIRST_GUESS_DESCRIPTORS
    return per_room * size <= DESCRIPTOR_HEADROOM * broker.descriptor_limit


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty sample."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def table(steps: Sequence[Step]) -> str:
    """The printed summary: one row per size, then the cost per room between sizes."""
    lines = [
        f"capacity: {BACKENDS} backends, every room followed by each, "
        f"{ROOMS_PER_CONNECTION} rooms per connection",
        f"{'rooms':>7} {'grow s':>7} {'broker fds':>13} {'broker mem MiB':>15} "
        f"{'RSS MiB':>8} {'disk MiB':>9} {'backend RSS MiB':>16} "
        f"{'create p50/p99 ms':>18} {'cold join p50/p99':>18} {'followed p50/p99':>17}",
    ]
    lines.extend(_row(step) for step in steps)
    lines.append("per room added:")
    for cost in per_room(steps):
        lines.append(
            f"  {cost.from_rooms:>6} -> {cost.to_rooms:<6} "
            f"{cost.broker_descriptors:.2f} descriptors "
            f"({cost.descriptors_per_reader:.2f} per reader), "
            f"{cost.broker_memory_bytes / 1024:.1f} KiB broker memory "
            f"({cost.memory_per_reader_bytes / 1024:.1f} per reader), "
            f"{cost.broker_disk_bytes / 1024:.1f} KiB disk, "
            f"{cost.backend_rss_bytes / 1024:.1f} KiB per backend"
        )
    return "\n".join(lines)


def _row(step: Step) -> str:
    mib = 1024 * 1024
    return (
        f"{step.rooms:>7} {step.grow_seconds:>7.1f} "
        f"{step.broker.descriptors:>6}/{step.broker.descriptor_limit:<6} "
        f"{step.broker.memory_bytes / mib:>15.0f} {step.broker.rss_bytes / mib:>8.0f} "
        f"{step.broker.disk_bytes / mib:>9.1f} "
        f"{statistics.fmean(step.backend_rss_bytes) / mib:>16.0f} "
        f"{_p50_p99(step.joins.create_ms):>18} {_p50_p99(step.joins.cold_ms):>18} "
        f"{_p50_p99(step.joins.followed_ms):>17}"
    )


def _p50_p99(values: Sequence[float]) -> str:
    return f"{percentile(values, 0.5):.1f}/{percentile(values, 0.99):.1f}"


def run_capacity(sizes: Sequence[int], *, logdir: Path) -> list[Step]:
    """Grow a private node to each size in turn; the steps measured, smallest first."""
    node = new_node(management=True, nofile=BROKER_DESCRIPTORS)
    try:
        node.start()
        broker_pids = procstat.pids_with_argument(str(node.workdir))
        with running_servers(
            "chatcluster",
            rabbitmq=BrokerProcesses(node.url, broker_pids),
            cluster=f"cap{uuid.uuid4().hex[:8]}",
            count=BACKENDS,
            logdir=logdir,
        ) as servers:
            return asyncio.run(_grow(sorted(sizes), node, broker_pids, servers))
    finally:
        node.destroy()


async def _grow(
    sizes: Sequence[int], node: RabbitMQNode, broker_pids: list[int], servers: ServerSet
) -> list[Step]:
    steps: list[Step] = []
    async with aiohttp.ClientSession() as http:
        followers = [_Followers(http, url) for url in servers.urls]
        try:
            rooms = 0
            for size in sizes:
                limit = await _broker(http, node, broker_pids)
                if not fits(size, limit, steps[-1] if steps else None):
                    print(
                        f"stopped before {size} rooms: they would take more than "
                        f"{DESCRIPTOR_HEADROOM:.0%} of the node's {limit.descriptor_limit} "
                        "descriptors, and a node out of them fails every room's reads; the "
                        "limit is this process's hard limit (`ulimit -Hn`)",
                        flush=True,
                    )
                    break
                deadline = time.monotonic() + 60.0 + SECONDS_PER_ROOM * (size - rooms)
                first = await _follow_rooms(followers[:1], range(rooms, size), deadline)
                one_reader = await _broker(http, node, broker_pids)
                grown = first + await _follow_rooms(followers[1:], range(rooms, size), deadline)
                rooms = size
                joins = await _probe_joins(http, servers.urls, size)
                steps.append(
                    Step(
                        rooms=size,
                        grow_seconds=grown,
                        broker_one_reader=one_reader,
                        broker=await _broker(http, node, broker_pids),
                        backend_rss_bytes=tuple(procstat.rss_bytes([pid]) for pid in servers.pids),
                        joins=joins,
                    )
                )
                print(_row(steps[-1]), flush=True)
        finally:
            for group in followers:
                await group.close()
    return steps


def _room(index: int) -> str:
    return f"idle-{index}"


async def _follow_rooms(followers: Sequence[_Followers], indices: range, deadline: float) -> float:
    """Every backend joins every room of `indices`, `JOINS_IN_FLIGHT` at a time; the seconds
    it took."""
    started = time.monotonic()
    work = iter([(group, index) for index in indices for group in followers])

    async def worker() -> None:
        for group, index in work:  # shared: each pair is taken by one worker
            await group.join(index)

    workers = [asyncio.ensure_future(worker()) for _ in range(JOINS_IN_FLIGHT)]
    remaining = deadline - time.monotonic()
    try:
        async with asyncio.timeout(remaining):
            await asyncio.gather(*workers)
    except TimeoutError as exc:
        raise CapacityError(f"could not grow to {indices.stop} rooms in {remaining:.0f} s") from exc
    finally:
        for task in workers:
            task.cancel()
    return time.monotonic() - started


async def _probe_joins(
    http: aiohttp.ClientSession, urls: Sequence[str], size: int
) -> JoinLatencies:
    """Time the three kinds of join, each from a fresh connection, one at a time."""
    creator, reader, follower = (urls[0], urls[1], urls[2 % len(urls)])
    create_ms, cold_ms, followed_ms = [], [], []
    for probe in range(PROBES):
        quiet = f"quiet-{size}-{probe}"
        create_ms.append(await _timed_join(http, creator, quiet))
        cold_ms.append(await _timed_join(http, reader, quiet))
        followed_ms.append(await _timed_join(http, follower, _room(probe * size // PROBES)))
    return JoinLatencies(tuple(create_ms), tuple(cold_ms), tuple(followed_ms))


async def _timed_join(http: aiohttp.ClientSession, url: str, room: str) -> float:
    """Milliseconds from a `join` to its `joined`, on a connection of its own (then closed, so
    the backend stops following a room only this connection held)."""
    async with _session(http, url) as (socket, wire):
        started = time.perf_counter_ns()
        await socket.send_str(wire.join(room, seq=1))
        async with asyncio.timeout(JOIN_TIMEOUT):
            async for message in socket:
                for event in wire.parse(message.data):
                    if isinstance(event, Refused):
                        raise CapacityError(f"join {room} at {url}: {event.code} {event.message}")
                    if isinstance(event, Joined) and event.room == room:
                        return (time.perf_counter_ns() - started) / 1e6
        raise CapacityError(f"{url} closed the connection before answering join {room}")


@contextlib.asynccontextmanager
async def _session(
    http: aiohttp.ClientSession, url: str
) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, Any]]:
    """A chatserver connection past its `welcome`."""
    wire = WIRES["chatcluster"]()
    client = uuid.uuid4().hex[:16]
    async with http.ws_connect(f"{url}{wire.path(client_id=client)}", max_msg_size=0) as socket:
        async with asyncio.timeout(JOIN_TIMEOUT):
            async for message in socket:
                if any(isinstance(event, Ready) for event in wire.parse(message.data)):
                    break
        yield socket, wire


class _Followers:
    """One backend's members of the idle rooms: room `i` is joined on connection
    `i // ROOMS_PER_CONNECTION`, each connection a client of its own (so the per-client cap
    does not apply), opened when its first room is joined."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self._connections: dict[int, asyncio.Task[_Connection]] = {}
        self._stack = contextlib.AsyncExitStack()

    async def join(self, index: int) -> None:
        slot = index // ROOMS_PER_CONNECTION
        if slot not in self._connections:
            self._connections[slot] = asyncio.ensure_future(self._open())
        connection = await self._connections[slot]
        await connection.join(_room(index))

    async def _open(self) -> _Connection:
        socket, wire = await self._stack.enter_async_context(_session(self._http, self._url))
        return _Connection(socket, wire)

    async def close(self) -> None:
        for task in self._connections.values():
            if task.done() and not task.exception():
                task.result().reader.cancel()
        await self._stack.aclose()


class _Connection:
    """A connection with many joins in flight, each answered by its room's `joined`."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, wire: Any) -> None:
        self._socket = socket
        self._wire = wire
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def join(self, room: str) -> None:
        answer = asyncio.get_running_loop().create_future()
        self._waiting[room] = answer
        await self._socket.send_str(self._wire.join(room, seq=0))
        await answer

    async def _read(self) -> None:
        failure: BaseException
        try:
            async for message in self._socket:
                for event in self._wire.parse(message.data):
                    if isinstance(event, Joined) and event.room in self._waiting:
                        self._waiting.pop(event.room).set_result(None)
                    elif isinstance(event, Refused):
                        raise CapacityError(f"a join was refused: {event.code} {event.message}")
            failure = CapacityError("the backend closed a follower connection")
        except (CapacityError, WireError) as exc:
            failure = exc
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(failure)


async def _broker(
    http: aiohttp.ClientSession, node: RabbitMQNode, broker_pids: list[int]
) -> Broker:
    """The node's figures, read once its management statistics cover the present."""
    await asyncio.sleep(STATISTICS_INTERVAL)
    for _ in range(round(JOIN_TIMEOUT)):
        stats = await _node_statistics(http, node)
        if "fd_used" in stats:
            break
        await asyncio.sleep(1.0)  # a node just started has no statistics yet
    else:
        raise CapacityError(f"the management API of {node.nodename} gives no node statistics")
    return Broker(
        descriptors=stats["fd_used"],
        descriptor_limit=stats["fd_total"],
        memory_bytes=stats["mem_used"],
        rss_bytes=procstat.rss_bytes(broker_pids),
        disk_bytes=_disk_bytes(node.workdir),
    )


async def _node_statistics(http: aiohttp.ClientSession, node: RabbitMQNode) -> dict[str, Any]:
    async with http.get(
        f"{node.management_url}/api/nodes", headers=_MANAGEMENT_HEADERS
    ) as response:
        response.raise_for_status()
        (stats,) = await response.json()
        return dict(stats)


def _disk_bytes(directory: Path) -> int:
    """Bytes allocated under `directory` (like `du`: sparse files count what they hold)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total
