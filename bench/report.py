"""Figures derived from raw runs, the printed table, the JSON and the PNG chart."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from bench.loadgen import IdleResult, LoadResult
from bench.scenarios import Scenario


@dataclass(frozen=True, slots=True)
class Figures:
    """One system in one scenario, as reported."""

    system: str
    servers: int
    """Server processes (a single-node system runs one whatever the scenario asks)."""
    sent: int
    acked: int
    refused: int
    """Sends answered `unavailable` (not retried, their deliveries not owed)."""
    expected: int
    delivered: int
    lost: int
    """Deliveries owed for acked messages that never arrived."""
    duplicates: int
    """Arrivals of a message its client had already received (not counted as deliveries)."""
    deliveries_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    server_cpu_seconds: float
    deliveries_per_server_cpu_second: float
    broker_cpu_seconds: float
    """RabbitMQ's for chatcluster and python-socketio, redis-server's for centrifugo-redis,
    0 for a broker-less system."""
    deliveries_per_total_cpu_second: float
    """Deliveries per CPU-second of the servers and the broker together."""
    generator_cpu_seconds: float
    server_peak_rss_mib: float
    """Peak resident memory of all server processes together (VmHWM, startup included)."""
    closed_by_server: int
    join_retries: int
    wall_seconds: float


def percentile(values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile (0 < fraction <= 1) of unsorted values; 0 for no values."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def figures(
    system: str, result: LoadResult, *, servers: int, server_peak_rss_bytes: int
) -> Figures:
    cpu = result.cpu
    return Figures(
        system=system,
        servers=servers,
        sent=result.sent,
        acked=result.acked,
        refused=result.refused,
        expected=result.expected,
        delivered=result.delivered,
        lost=result.expected - result.delivered,
        duplicates=result.duplicates,
        deliveries_per_second=result.delivered / result.wall_seconds,
        latency_p50_ms=percentile(result.latencies_ns, 0.50) / 1e6,
        latency_p99_ms=percentile(result.latencies_ns, 0.99) / 1e6,
        latency_p999_ms=percentile(result.latencies_ns, 0.999) / 1e6,
        server_cpu_seconds=cpu.servers,
        deliveries_per_server_cpu_second=_per(result.delivered, cpu.servers),
        broker_cpu_seconds=cpu.broker,
        deliveries_per_total_cpu_second=_per(result.delivered, cpu.servers + cpu.broker),
        generator_cpu_seconds=cpu.generator,
        server_peak_rss_mib=server_peak_rss_bytes / 2**20,
        closed_by_server=result.closed_by_server,
        join_retries=result.join_retries,
        wall_seconds=result.wall_seconds,
    )


def _per(deliveries: int, cpu_seconds: float) -> float:
    return deliveries / cpu_seconds if cpu_seconds else 0.0


@dataclass(frozen=True, slots=True)
class IdleFigures:
    """One system in the idle scenario. Per connection: divided by the connections held."""

    system: str
    servers: int
    connections: int
    connect_seconds: float
    server_rss_mib: float
    """Growth of the servers' resident memory, all connections."""
    server_kib_per_connection: float
    kernel_buffer_kib_per_connection: float
    """TCP buffer memory, both ends of the loopback connection (the generator's end too)."""
    kernel_socket_kib_per_connection: float
    """The kernel's socket objects (slab), both ends as above."""
    idle_server_cpu_percent: float
    """The servers' CPU while every client sat idle, in percent of one core."""
    join_retries: int


def idle_figures(system: str, result: IdleResult, *, servers: int) -> IdleFigures:
    per = max(1, result.connections) * 1024
    return IdleFigures(
        system=system,
        servers=servers,
        connections=result.connections,
        connect_seconds=result.connect_seconds,
        server_rss_mib=result.server_rss_bytes / 2**20,
        server_kib_per_connection=result.server_rss_bytes / per,
        kernel_buffer_kib_per_connection=result.tcp_buffer_bytes / per,
        kernel_socket_kib_per_connection=result.socket_slab_bytes / per,
        idle_server_cpu_percent=100 * result.idle_server_cpu_seconds / result.idle_seconds,
        join_retries=result.join_retries,
    )


_IDLE_COLUMNS = (
    ("system", "{}", "system"),
    ("srv", "{}", "servers"),
    ("connections", "{}", "connections"),
    ("connect s", "{:.1f}", "connect_seconds"),
    ("srv RSS +MiB", "{:.1f}", "server_rss_mib"),
    ("srv KiB/conn", "{:.1f}", "server_kib_per_connection"),
    ("kernel buffers KiB/conn", "{:.2f}", "kernel_buffer_kib_per_connection"),
    ("kernel sockets KiB/conn", "{:.2f}", "kernel_socket_kib_per_connection"),
    ("srv CPU % idle", "{:.1f}", "idle_server_cpu_percent"),
)


def idle_table(scenario: Scenario, rows: Sequence[IdleFigures]) -> str:
    return "\n".join(
        [
            f"{scenario.name}: {scenario.subscribers} connections in {scenario.rooms} rooms on "
            f"{scenario.servers} servers (srv: fewer for a single-node system), idle "
            f"{scenario.duration:g} s; kernel figures count both ends of each connection; "
            "srv CPU % idle: of one core, while idle",
            *grid(_IDLE_COLUMNS, rows),
        ]
    )


def write_idle_chart(path: Path, *, scenario: Scenario, rows: Sequence[IdleFigures]) -> None:
    """Memory per connection, stacked: the servers' and the kernel's (both ends)."""
    plt = pyplot()
    names = [row.system for row in rows]
    server = [row.server_kib_per_connection for row in rows]
    kernel = [
        row.kernel_socket_kib_per_connection + row.kernel_buffer_kib_per_connection for row in rows
    ]
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(names, server, label="server RSS", color="#2b6cb0")
    axes.bar(names, kernel, bottom=server, label="kernel sockets + buffers", color="#a0aec0")
    axes.set_ylabel("KiB per connection")
    axes.legend()
    figure.suptitle(f"{scenario.name}: {scenario.subscribers} idle connections")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


_COLUMNS = (
    ("system", "{}", "system"),
    ("srv", "{}", "servers"),
    ("deliv/s", "{:.0f}", "deliveries_per_second"),
    ("p50 ms", "{:.1f}", "latency_p50_ms"),
    ("p99 ms", "{:.1f}", "latency_p99_ms"),
    ("p99.9 ms", "{:.1f}", "latency_p999_ms"),
    ("lost", "{}", "lost"),
    ("dup", "{}", "duplicates"),
    ("srv CPU s", "{:.2f}", "server_cpu_seconds"),
    ("deliv/srv CPU-s", "{:.0f}", "deliveries_per_server_cpu_second"),
    ("broker CPU s", "{:.2f}", "broker_cpu_seconds"),
    ("deliv/srv+broker CPU-s", "{:.0f}", "deliveries_per_total_cpu_second"),
    ("gen CPU s", "{:.2f}", "generator_cpu_seconds"),
    ("srv peak RSS MiB", "{:.0f}", "server_peak_rss_mib"),
)


def table(scenario: Scenario, rows: Sequence[Figures]) -> str:
    """A plain-text table of one scenario, with the ratio of the first system to the others."""
    lines = [
        f"{scenario.name}: {scenario.subscribers} subscribers in {scenario.rooms} room(s) on "
        f"{scenario.servers} servers (srv: fewer for a single-node system), "
        f"{scenario.senders} senders, {scenario.rate:g} msg/s for {scenario.duration:g} s",
        *grid(_COLUMNS, rows),
    ]
    first = rows[0]
    for other in rows[1:]:
        if other.deliveries_per_server_cpu_second:
            ratio = first.deliveries_per_server_cpu_second / other.deliveries_per_server_cpu_second
            lines.append(
                f"{first.system} / {other.system}, deliveries per server CPU-second: {ratio:.1f}x"
            )
    return "\n".join(lines)


def grid(columns: Sequence[tuple[str, str, str]], rows: Sequence[object]) -> list[str]:
    """Lines of a right-aligned table: `columns` are (title, format, attribute of a row)."""
    header = [title for title, _, _ in columns]
    body = [[fmt.format(getattr(row, key)) for _, fmt, key in columns] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    return [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in (header, *body)
    ]


def write_json(
    path: Path,
    *,
    scenario: Scenario | Mapping[str, Any],
    results: Mapping[str, Any],
    context: Mapping[str, Any],
) -> None:
    """The scenario, the conditions of its run and `results` (by system) as one document."""
    described = asdict(scenario) if isinstance(scenario, Scenario) else dict(scenario)
    document = {"scenario": described, "context": dict(context), "results": results}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def pyplot() -> ModuleType:
    """matplotlib's pyplot, drawing to files only (no display on a server)."""
    import matplotlib  # imported here: it takes a second to load, and only charts need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1")
"""One per system, in the order the systems are named."""


def write_chart(path: Path, *, scenario: Scenario, rows: Sequence[Figures]) -> None:
    """Three panels side by side: efficiency, throughput and latency, one bar per system."""
    plt = pyplot()

    names = [row.system for row in rows]
    colours = list(_COLOURS[: len(rows)])
    figure, (efficiency, throughput, latency) = plt.subplots(1, 3, figsize=(12, 4))
    efficiency.bar(names, [row.deliveries_per_server_cpu_second for row in rows], color=colours)
    efficiency.set_title("deliveries per server CPU-second")
    throughput.bar(names, [row.deliveries_per_second for row in rows], color=colours)
    throughput.set_title("deliveries per second")
    width = 0.4
    positions = range(len(rows))
    latency.bar(
        [p - width / 2 for p in positions],
        [r.latency_p50_ms for r in rows],
        width,
        label="p50",
        color="#a0aec0",
    )
    latency.bar(
        [p + width / 2 for p in positions],
        [r.latency_p99_ms for r in rows],
        width,
        label="p99",
        color="#4a5568",
    )
    latency.set_xticks(list(positions), names)
    latency.set_title("end-to-end latency (ms)")
    latency.legend()
    figure.suptitle(
        f"{scenario.name}: {scenario.subscribers} clients, {scenario.rooms} room(s), "
        f"{scenario.rate:g} msg/s, {scenario.servers} servers + RabbitMQ"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_sweep_chart(
    path: Path,
    *,
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    limit_ms: float,
) -> None:
    """p99 against the offered rate, one line per system (`series`: (rate, p99 ms) points), and
    the limit a system must stay under."""
    plt = pyplot()
    from matplotlib import ticker

    figure, axes = plt.subplots(figsize=(8, 5))
    for colour, (system, points) in zip(_COLOURS, series.items(), strict=False):
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker="o", label=system, color=colour)
    axes.axhline(limit_ms, color="#c53030", linestyle="--", label=f"{limit_ms:g} ms")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    rates = sorted({rate for points in series.values() for rate, _ in points})
    axes.set_xticks(rates, [f"{rate:g}" for rate in rates])
    axes.xaxis.set_minor_locator(ticker.NullLocator())
    axes.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axes.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    axes.set_xlabel("messages per second, all senders together")
    axes.set_ylabel("p99 end-to-end latency (ms)")
    axes.legend()
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
