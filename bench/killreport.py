"""Figures of a kill run (`bench.killrun`): recovery of the victims, completeness of every
client's stream, the survivors' latency; the printed table and the PNG chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.killrun import KillResult
from bench.recovery import audit_stream
from bench.report import grid, percentile, pyplot
from bench.scenarios import Scenario

NOT_MEASURED: Final = {
    "centrifugo-memory": "one node (the memory engine has no broker), so there is no second "
    "server to kill one of; killed, its channels' history dies with it, so nothing could be "
    "recovered",
}
"""Systems the kill and storm scenarios do not run, and why."""
CANNOT_RECOVER: Final = (
    "keeps no history, so its victims rejoin without asking for what they missed: `recovered` "
    "is 0 by construction (a victim back between two messages missed nothing by luck), "
    "`missing` is what they lost"
)
TARGET_SECONDS: Final = 5.0
"""Issue 12's target for the storm: every victim back, with nothing missed, within 5 s."""


@dataclass(frozen=True, slots=True)
class KillFigures:
    """One system in the kill scenario, as reported. Times in ms from the kill."""

    system: str
    recovers: bool
    """Its clients can ask for what they missed; if not, none counts as recovered."""
    clients: int
    victims: int
    """Clients of the killed server."""
    reconnected: int
    """Victims welcomed by a surviving server."""
    rejoined: int
    """Victims whose `join since` was answered there."""
    recovered: int
    """Rejoined victims that received every acknowledged message exactly once, in order."""
    recovery_ratio: float
    """recovered / victims."""
    recovered_in_target: int
    """Victims recovered within `TARGET_SECONDS` of the kill."""
    reconnect_p50_ms: float
    reconnect_p99_ms: float
    reconnect_max_ms: float
    recover_p50_ms: float
    recover_p99_ms: float
    recover_max_ms: float
    after_backoff_p50_ms: float
    """Recovery time minus the time slept by the backoff: the survivors' (and the network's)
    share, from the connection attempt to the `joined` answer."""
    after_backoff_p99_ms: float
    reconnect_attempts: int
    """Connection attempts of all victims (one each when every first attempt succeeds)."""
    truncated_joins: int
    replayed: int
    """Messages the victims' joins gave back (replayed or recovered from history): what they
    missed while away, unless it reached them otherwise."""
    duplicates: int
    """Over all clients: arrivals of a message already received."""
    late: int
    """Over all clients: first arrivals out of log order."""
    missing: int
    """Over all clients: acknowledged messages never received (`lost` of the other scenarios)."""
    unexpected: int
    """Over all clients: messages received that no sender got acknowledged."""
    incomplete_clients: int
    """Clients, victims or not, whose stream fails any of the four counts above."""
    sent: int
    acked: int
    survivor_p99_before_ms: float
    """p99 latency of live deliveries to the survivors' clients before the kill..."""
    survivor_p99_storm_ms: float
    """...and from the kill until the last victim rejoined (the reconnect storm)."""
    storm_ms: float
    storm_survivor_cores: float
    """CPU of the surviving servers from the kill until every victim was back (or gave up),
    divided by that time: 1.0 is one core busy the whole storm."""
    storm_broker_cores: float
    storm_generator_cores: float
    """The same for the load generator: near 1.0, the generator (one Python process) is what
    paced the storm."""
    listen_overflows: int
    """Handshakes the kernel dropped during the storm, machine wide, as a survivor's accept
    queue was full: each such victim waits for a retransmission, 1 s or more."""
    join_retries: int
    wall_seconds: float
    reconnect_ms: list[float]
    """Per reconnected victim, sorted (the chart's data)."""
    recover_ms: list[float]
    """Per rejoined victim, sorted."""

    @property
    def reconnect_cell(self) -> str:
        return _ms_cell(self.reconnect_p50_ms, self.reconnect_p99_ms, self.reconnect_max_ms)

    @property
    def recover_cell(self) -> str:
        return _ms_cell(self.recover_p50_ms, self.recover_p99_ms, self.recover_max_ms)

    @property
    def after_backoff_cell(self) -> str:
        return _ms_cell(self.after_backoff_p50_ms, self.after_backoff_p99_ms)

    @property
    def storm_cores_cell(self) -> str:
        return f"{self.storm_survivor_cores:.2f} / {self.storm_generator_cores:.2f}"

    @property
    def survivor_cell(self) -> str:
        return f"{self.survivor_p99_before_ms:.1f} / {self.survivor_p99_storm_ms:.1f}"


def _ms_cell(*values: float) -> str:
    return " / ".join(f"{value:.0f}" for value in values)


def figures(system: str, result: KillResult) -> KillFigures:
    audits = {
        client.index: audit_stream(client.received, result.acked.get(client.room, []))
        for client in result.clients
    }
    victims = [client for client in result.clients if client.victim]
    reconnect_ns = sorted(c.reconnected_ns for c in victims if c.reconnected_ns is not None)
    recover_ns = sorted(c.recovered_ns for c in victims if c.recovered_ns is not None)
    after_backoff_ns = [
        c.recovered_ns - c.backoff_ns for c in victims if c.recovered_ns is not None
    ]
    recovered_ns = [
        c.recovered_ns
        for c in victims
        if c.recovered_ns is not None and audits[c.index].complete and not c.truncated
    ]
    if not result.recovers:
        recovered_ns = []
    recovered = len(recovered_ns)
    storm_ns = recover_ns[-1] if recover_ns else None
    before, storm = _split_at_kill(result, storm_ns)
    return KillFigures(
        system=system,
        recovers=result.recovers,
        clients=len(result.clients),
        victims=len(victims),
        reconnected=len(reconnect_ns),
        rejoined=len(recover_ns),
        recovered=recovered,
        recovery_ratio=recovered / len(victims) if victims else 0.0,
        recovered_in_target=sum(ns <= TARGET_SECONDS * 1e9 for ns in recovered_ns),
        reconnect_p50_ms=percentile(reconnect_ns, 0.50) / 1e6,
        reconnect_p99_ms=percentile(reconnect_ns, 0.99) / 1e6,
        reconnect_max_ms=percentile(reconnect_ns, 1.0) / 1e6,
        recover_p50_ms=percentile(recover_ns, 0.50) / 1e6,
        recover_p99_ms=percentile(recover_ns, 0.99) / 1e6,
        recover_max_ms=percentile(recover_ns, 1.0) / 1e6,
        after_backoff_p50_ms=percentile(after_backoff_ns, 0.50) / 1e6,
        after_backoff_p99_ms=percentile(after_backoff_ns, 0.99) / 1e6,
        reconnect_attempts=sum(c.reconnect_attempts for c in victims),
        truncated_joins=sum(c.truncated for c in result.clients),
        replayed=sum(c.replayed for c in victims),
        duplicates=sum(a.duplicates for a in audits.values()),
        late=sum(a.late for a in audits.values()),
        missing=sum(a.missing for a in audits.values()),
        unexpected=sum(a.unexpected for a in audits.values()),
        incomplete_clients=sum(not a.complete for a in audits.values()),
        sent=result.sent,
        acked=sum(len(ids) for ids in result.acked.values()),
        survivor_p99_before_ms=percentile(before, 0.99) / 1e6,
        survivor_p99_storm_ms=percentile(storm, 0.99) / 1e6,
        storm_ms=(storm_ns or 0) / 1e6,
        storm_survivor_cores=_cores(result.storm_cpu.servers, result.storm_cpu_seconds),
        storm_broker_cores=_cores(result.storm_cpu.broker, result.storm_cpu_seconds),
        storm_generator_cores=_cores(result.storm_cpu.generator, result.storm_cpu_seconds),
        listen_overflows=result.listen_overflows,
        join_retries=result.join_retries,
        wall_seconds=result.wall_seconds,
        reconnect_ms=[ns / 1e6 for ns in reconnect_ns],
        recover_ms=[ns / 1e6 for ns in recover_ns],
    )


def _cores(cpu_seconds: float, wall_seconds: float) -> float:
    return cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0


def _split_at_kill(result: KillResult, storm_ns: int | None) -> tuple[list[int], list[int]]:
    """The survivors' latencies before the kill, and during the storm (to the end of the run
    when no victim rejoined)."""
    before: list[int] = []
    storm: list[int] = []
    for received_ns, latency_ns in result.survivor_deliveries:
        since_kill = received_ns - result.kill_ns
        if since_kill < 0:
            before.append(latency_ns)
        elif storm_ns is None or since_kill <= storm_ns:
            storm.append(latency_ns)
    return before, storm


_COLUMNS: Final = (
    ("system", "{}", "system"),
    ("victims", "{}", "victims"),
    ("recovered", "{}", "recovered"),
    ("ratio", "{:.3f}", "recovery_ratio"),
    ("reconnect p50/p99/max ms", "{}", "reconnect_cell"),
    ("recover p50/p99/max ms", "{}", "recover_cell"),
    ("after backoff p50/p99 ms", "{}", "after_backoff_cell"),
    ("replayed", "{}", "replayed"),
    ("truncated", "{}", "truncated_joins"),
    ("dup", "{}", "duplicates"),
    ("missing", "{}", "missing"),
    ("late", "{}", "late"),
    ("survivors p99 ms before/storm", "{}", "survivor_cell"),
    ("storm cores srv/gen", "{}", "storm_cores_cell"),
    ("accept overflows", "{}", "listen_overflows"),
)


def table(scenario: Scenario, rows: Sequence[KillFigures], *, skipped: Sequence[str]) -> str:
    """A plain-text table of the kill scenario, with a line per system it does not run."""
    lines = [
        f"{scenario.name}: {scenario.subscribers} clients in {scenario.rooms} room(s) on "
        f"{scenario.servers} servers, {scenario.senders} senders on the survivors, "
        f"{scenario.rate:g} msg/s for {scenario.duration:g} s, one server SIGKILLed",
        *grid(_COLUMNS, rows),
        *(
            f"{row.system}: {row.recovered_in_target} of {row.victims} victims back with "
            f"nothing missed within {TARGET_SECONDS:g} s of the kill: target "
            f"{'met' if row.victims and row.recovered_in_target == row.victims else 'missed'}"
            for row in rows
        ),
        *(f"{row.system}: {CANNOT_RECOVER}" for row in rows if not row.recovers),
        *(f"{system}: not measured: {NOT_MEASURED[system]}" for system in skipped),
    ]
    return "\n".join(lines)


def write_chart(path: Path, *, scenario: Scenario, rows: Sequence[KillFigures]) -> None:
    """The share of victims back over time since the kill (CDF): reconnected, then rejoined."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for row in rows:
        for label, times, style in (
            ("reconnected", row.reconnect_ms, "--"),
            ("rejoined (join answered)", row.recover_ms, "-"),
        ):
            shares = [(rank + 1) / row.victims for rank in range(len(times))]
            axes.step(times, shares, style, where="post", label=f"{row.system}: {label}")
    axes.set_xlabel("ms since the SIGKILL")
    axes.set_ylabel("share of the killed server's clients")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title(
        f"{scenario.name}: {scenario.subscribers} clients on {scenario.servers} servers, "
        f"{scenario.rate:g} msg/s; one server SIGKILLed"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
