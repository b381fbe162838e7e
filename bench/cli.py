"""`python -m bench`: run the scenarios against each system, print a table, write the results.

`--scenario kill` and `--scenario storm` (not in the default run) kill one server under load
and measure how its clients recover (`bench.killrun`): 200 clients, or 2,000 for the storm.
`--scenario idle` holds 10,000 idle connections and measures their memory; `--scenario
capacity` grows one RabbitMQ node to thousands of idle rooms and measures what each costs
(`bench.capacity`); the larger scenarios are named in bench/README.md.

Every system gets the same scenario and fresh server processes (chatcluster and python-socketio
behind the run's RabbitMQ node, centrifugo-redis behind a private redis-server); runs are
sequential, so they never share the CPU with each other (only with whatever else runs on the
machine: the load average is recorded with each result).

`--sweep` (or `--rates`) runs one-room or one-room-1000 at rising rates until some system's
p99 passes 100 ms (`bench.sweep`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import platform
import resource
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from bench import capacity, killreport, procstat, report, sweep
from bench.killrun import run_kill
from bench.loadgen import CpuSample, MemorySample, RunFailed, run_idle, run_load
from bench.redisnode import RedisError
from bench.scenarios import (
    DEFAULTS,
    IDLE,
    KILL,
    LARGER,
    RECOVERY_RUNS,
    STORM,
    VICTIM,
    Scenario,
    ScenarioError,
    plan_clients,
)
from bench.servers import (
    SPECS,
    Broker,
    ServerError,
    ServerSet,
    private_rabbitmq,
    running_servers,
    server_count,
)
from bench.wire import WIRES

RESULTS = Path(__file__).resolve().parent / "results"
CAPACITY = "capacity"
GENERATOR_BUSY = 0.9
"""Share of one core above which the generator, not the servers, may be what limits a run."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        scenarios = _scenarios(args)
    except ScenarioError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    logs = args.output / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):  # the servers' logs of the last run only
        old.unlink()
    command = _command(argv)
    _raise_descriptor_limit()
    try:
        if CAPACITY in (args.scenario or ()):
            _run_capacity(args.sizes, logdir=logs, output=args.output, context=_context(command))
        if not scenarios:
            return 0
        with private_rabbitmq() as rabbitmq:
            for scenario in scenarios:
                context = _context(command)
                if args.sweep or args.rates:
                    _run_sweep(scenario, args, rabbitmq=rabbitmq, logdir=logs, context=context)
                    continue
                print(_conditions(context), flush=True)
                if (own_run := _OWN_RUNS.get(scenario.name)) is not None:
                    own_run(
                        scenario,
                        args.systems,
                        rabbitmq=rabbitmq,
                        logdir=logs,
                        output=args.output,
                        context=context,
                    )
                    continue
                rows = [
                    _run(system, scenario, rabbitmq=rabbitmq, logdir=logs)
                    for system in args.systems
                ]
                _report(scenario, rows, output=args.output, context=context)
    except (RunFailed, ServerError, RedisError, capacity.CapacityError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(f"results in {args.output}")
    return 0


def _parser() -> argparse.ArgumentParser:
    names = [scenario.name for scenario in DEFAULTS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*names, *(s.name for s in LARGER), IDLE.name, KILL.name, STORM.name, CAPACITY],
        help=f"run only this scenario (repeatable; default: {', '.join(names)})",
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=list(SPECS),
        default=list(SPECS),
        help="systems to measure, the first is compared with the others",
    )
    parser.add_argument("--subscribers", type=int, help="clients per scenario")
    parser.add_argument("--senders", type=int, help="publishing clients per scenario")
    parser.add_argument("--rooms", type=int, help="rooms per scenario")
    parser.add_argument("--rate", type=float, help="messages per second, all senders together")
    parser.add_argument("--duration", type=float, help="seconds of sending per run")
    parser.add_argument("--servers", type=int, help="server processes per system (default 2)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(capacity.DEFAULT_SIZES),
        help="capacity: the idle rooms to grow the broker to, in turn",
    )
    parser.add_argument("--stalled", type=int, help="members that stop reading (`stalled`)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where JSON and PNG go")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help=f"one-room (default) or one-room-1000 at doubling rates, from --rate if given, "
        f"until a system's p99 passes {sweep.LIMIT_MS:g} ms; --duration defaults to "
        f"{sweep.STEP_DURATION:g} s per step",
    )
    parser.add_argument(
        "--rates", type=float, nargs="+", help="the sweep's rates instead (implies --sweep)"
    )
    parser.add_argument(
        "--sweep-budget", type=float, help="seconds a sweep may take (default: per scenario)"
    )
    return parser


def _scenarios(args: argparse.Namespace) -> list[Scenario]:
    sweeping = args.sweep or args.rates
    if sweeping and args.duration is None:
        args.duration = sweep.STEP_DURATION
    if sweeping and args.scenario is None:
        args.scenario = [DEFAULTS[0].name]
    if sweeping and (unsweepable := set(args.scenario) - set(sweep.PLANS)):
        raise ScenarioError(
            f"a sweep runs {' or '.join(sweep.PLANS)}, not {', '.join(sorted(unsweepable))}"
        )
    if args.scenario is None:
        chosen = list(DEFAULTS)
    else:
        chosen = [s for s in (*DEFAULTS, *LARGER, IDLE, KILL, STORM) if s.name in args.scenario]
    fields = ("subscribers", "senders", "rooms", "rate", "duration", "servers", "stalled")
    overrides = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
    scenarios = [dataclasses.replace(scenario, **overrides) for scenario in chosen]
    for scenario in scenarios:
        if scenario.name in RECOVERY_RUNS:
            plan_clients(scenario, victim=VICTIM)  # refuses a layout with nothing to recover on
    return scenarios


def _fitted(system: str, scenario: Scenario) -> Scenario:
    """A single-node system gets every client on its one node (the same clients and rooms)."""
    return dataclasses.replace(scenario, servers=server_count(system, scenario.servers))


def _raise_descriptor_limit() -> None:
    """Soft file descriptor limit up to the hard one: the generator holds a socket per client
    (10,000 in `idle`), and the servers it starts inherit the limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run(system: str, scenario: Scenario, *, rabbitmq: Broker, logdir: Path) -> report.Figures:
    cluster = f"bench{uuid.uuid4().hex[:10]}"
    scenario = _fitted(system, scenario)
    with running_servers(
        system, rabbitmq=rabbitmq, cluster=cluster, count=scenario.servers, logdir=logdir
    ) as servers:
        result = asyncio.run(
            run_load(scenario, WIRES[system], urls=servers.urls, sample_cpu=_cpu_sampler(servers))
        )
        peak_rss = servers.peak_rss_bytes()
    return report.figures(system, result, servers=scenario.servers, server_peak_rss_bytes=peak_rss)


def _cpu_sampler(servers: ServerSet, *, skip: int | None = None) -> Callable[[], CpuSample]:
    """Reads the CPU time used so far by the servers (but server `skip`, killed in the run),
    their broker and this process (the generator)."""
    pids = [pid for index, pid in enumerate(servers.pids) if index != skip]

    def sample() -> CpuSample:
        own = os.times()
        return CpuSample(
            servers=procstat.cpu_seconds(pids),
            broker=servers.broker_cpu_seconds(),
            generator=own.user + own.system,
        )

    return sample


def _run_idle(
    scenario: Scenario,
    systems: Sequence[str],
    *,
    rabbitmq: Broker,
    logdir: Path,
    output: Path,
    context: dict[str, Any],
) -> None:
    rows = []
    for system in systems:
        fitted = _fitted(system, scenario)
        with running_servers(
            system,
            rabbitmq=rabbitmq,
            cluster=f"bench{uuid.uuid4().hex[:10]}",
            count=fitted.servers,
            logdir=logdir,
        ) as servers:

            def sample_memory() -> MemorySample:
                return MemorySample(
                    server_rss=procstat.rss_bytes(servers.pids),
                    tcp_buffers=procstat.tcp_buffer_bytes(),
                    socket_slabs=procstat.socket_slab_bytes(),
                )

            result = asyncio.run(
                run_idle(
                    fitted,
                    WIRES[system],
                    urls=servers.urls,
                    sample_memory=sample_memory,
                    sample_cpu=_cpu_sampler(servers),
                )
            )
        rows.append(report.idle_figures(system, result, servers=fitted.servers))
    print(report.idle_table(scenario, rows), flush=True)
    stem = output / scenario.name
    results = {row.system: dataclasses.asdict(row) for row in rows}
    report.write_json(
        stem.with_suffix(".json"), scenario=scenario, results=results, context=context
    )
    report.write_idle_chart(stem.with_suffix(".png"), scenario=scenario, rows=rows)


def _run_kill(
    scenario: Scenario,
    systems: Sequence[str],
    *,
    rabbitmq: Broker,
    logdir: Path,
    output: Path,
    context: dict[str, Any],
) -> None:
    measured = [system for system in systems if system not in killreport.NOT_MEASURED]
    skipped = [system for system in systems if system in killreport.NOT_MEASURED]
    rows = []
    for system in measured:
        cluster = f"bench{uuid.uuid4().hex[:10]}"
        with running_servers(
            system,
            rabbitmq=rabbitmq,
            cluster=cluster,
            count=scenario.servers,
            logdir=logdir,
        ) as servers:
            result = asyncio.run(
                run_kill(
                    scenario,
                    WIRES[system],
                    urls=servers.urls,
                    victim=VICTIM,
                    kill=lambda: servers.kill(VICTIM),
                    sample_cpu=_cpu_sampler(servers, skip=VICTIM),
                )
            )
        rows.append(killreport.figures(system, result))
    print(killreport.table(scenario, rows, skipped=skipped), flush=True)
    stem = output / scenario.name
    results: dict[str, Any] = {row.system: dataclasses.asdict(row) for row in rows}
    results |= {system: {"not_measured": killreport.NOT_MEASURED[system]} for system in skipped}
    report.write_json(
        stem.with_suffix(".json"), scenario=scenario, results=results, context=context
    )
    if rows:
        killreport.write_chart(stem.with_suffix(".png"), scenario=scenario, rows=rows)


def _run_capacity(
    sizes: Sequence[int], *, logdir: Path, output: Path, context: dict[str, Any]
) -> None:
    print(_conditions(context), flush=True)
    steps = capacity.run_capacity(sizes, logdir=logdir)
    print(capacity.table(steps), flush=True)
    results = {
        "steps": [dataclasses.asdict(step) for step in steps],
        "per_room": [dataclasses.asdict(cost) for cost in capacity.per_room(steps)],
    }
    report.write_json(
        (output / CAPACITY).with_suffix(".json"),
        scenario={"name": CAPACITY, "sizes": sorted(sizes), **capacity.LAYOUT},
        results=results,
        context=context,
    )


_OWN_RUNS: Final = {KILL.name: _run_kill, STORM.name: _run_kill, IDLE.name: _run_idle}
"""Scenarios with a run and a report of their own; the others are load runs (`_run`)."""


def _report(
    scenario: Scenario, rows: list[report.Figures], *, output: Path, context: dict[str, Any]
) -> None:
    print(report.table(scenario, rows), flush=True)
    _warn_if_generator_bound(rows)
    stem = output / scenario.name
    results = {row.system: dataclasses.asdict(row) for row in rows}
    report.write_json(
        stem.with_suffix(".json"), scenario=scenario, results=results, context=context
    )
    report.write_chart(stem.with_suffix(".png"), scenario=scenario, rows=rows)


def _run_sweep(
    scenario: Scenario,
    args: argparse.Namespace,
    *,
    rabbitmq: Broker,
    logdir: Path,
    context: dict[str, Any],
) -> None:
    """Every system at each rate of the ladder in turn, until `sweep.stop_reason` says stop."""
    plan = sweep.PLANS[scenario.name]
    rates = sorted(args.rates or sweep.ladder(args.rate or plan.start, plan.steps))
    budget = args.sweep_budget or plan.budget_seconds
    steps: list[sweep.Step] = []
    while (reason := sweep.stop_reason(rates, steps, budget_seconds=budget)) is None:
        at_rate = dataclasses.replace(scenario, rate=rates[len(steps)])
        load, started = os.getloadavg(), time.monotonic()
        print(_conditions(_context(context["command"])), flush=True)
        rows: list[report.Figures] = []
        failed: dict[str, str] = {}
        for system in sweep.contenders(args.systems, steps):
            try:
                rows.append(_run(system, at_rate, rabbitmq=rabbitmq, logdir=logdir))
            except RunFailed as exc:  # a rate too high for it: its step did not hold
                failed[system] = str(exc)
                print(f"  {system} at {at_rate.rate:g} msg/s: not measured: {exc}", flush=True)
        if rows:
            print(report.table(at_rate, rows), flush=True)
            _warn_if_generator_bound(rows)
        steps.append(
            sweep.Step(
                rate=at_rate.rate,
                rows={row.system: row for row in rows},
                failed=failed,
                seconds=time.monotonic() - started,
                load_average=load,
            )
        )
    summaries = sweep.summarise(steps)
    print(sweep.summary_table(scenario.name, summaries, systems=args.systems), flush=True)
    print(f"sweep over: {reason}", flush=True)
    stem = args.output / f"{scenario.name}-sweep"
    results = {
        "limit_ms": sweep.LIMIT_MS,
        "rates": rates,
        "budget_seconds": budget,
        "stopped": reason,
        "steps": [dataclasses.asdict(step) for step in steps],
        "summary": [dataclasses.asdict(summary) for summary in summaries],
    }
    report.write_json(
        stem.with_suffix(".json"),
        scenario=dataclasses.replace(scenario, rate=rates[0]),
        results=results,
        context=context,
    )
    report.write_sweep_chart(
        stem.with_suffix(".png"),
        title=f"{scenario.name}: {scenario.subscribers} clients, 1 room, "
        f"{scenario.duration:g} s per rate",
        series=sweep.p99_series(steps),
        limit_ms=sweep.LIMIT_MS,
    )


def _warn_if_generator_bound(rows: Sequence[report.Figures]) -> None:
    for row in rows:
        if row.generator_cpu_seconds > GENERATOR_BUSY * row.wall_seconds:
            print(
                f"  note: the load generator was busy {row.generator_cpu_seconds:.1f} of "
                f"{row.wall_seconds:.1f} s in the {row.system} run; lower --rate or "
                "--subscribers to measure the server rather than the generator"
            )


def _command(argv: Sequence[str] | None) -> str:
    return " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])


def _context(command: str) -> dict[str, Any]:
    """The conditions of one scenario's runs, recorded with its results."""
    return {
        "command": command,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "versions": {
            name: metadata.version(name) for name in ("aiohttp", "python-socketio", "aio-pika")
        },
    }


def _conditions(context: dict[str, Any]) -> str:
    one, five, fifteen = context["load_average_at_start"]
    return (
        f"[{context['started']}] {context['cores']} cores, load average "
        f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) before the runs"
    )
