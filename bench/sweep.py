"""The one-room rate sweep (issue 12): the ladder of rates, when it stops, and its summary.

Pure: no I/O (`bench.cli` runs the steps, prints and writes what these functions return).

At each rate in increasing order every selected system runs the scenario; the rate after which
the sweep stops is the first where chatcluster or a Centrifugo engine (the systems issue 12
compares) did not hold (`holds`), so its figures are the last. Another system (python-socketio)
that did not hold a rate is left out of the higher ones instead (`contenders`): it would only
fall further behind, and its drains time out slowly. The ladder's length, `MAX_STEPS` and a time
budget bound the whole sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Final

from bench.report import Figures, grid

LIMIT_MS: Final = 100.0
"""The p99 a system must stay at or under to hold a rate (issue 12)."""
STEP_DURATION: Final = 5.0
"""Seconds of sending per step unless `--duration` says otherwise (the fixed scenarios send for
15 s): with the server start, connect, warm-up and drain around it, one system's step of the
200-client scenario takes about 6 s (up to 16 s where the drain times out), so four systems
climb all six rates in under 7 minutes."""
MAX_STEPS: Final = 8
"""Rates per sweep at the most, whatever `--rates` lists."""
SUBJECT: Final = "chatcluster"
REFERENCES: Final = ("centrifugo-memory", "centrifugo-redis")
"""Issue 12's target: the subject's p99 at or under each reference's, at every rate both hold."""
COMPARED: Final = frozenset({SUBJECT, *REFERENCES})
"""The systems whose not holding a rate ends the sweep."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A scenario's default sweep."""

    start: float
    """Messages per second of the first step: half the scenario's fixed rate, so that the
    slowest system most likely holds at least one step."""
    steps: int
    """Rates on the ladder, each double the one before."""
    budget_seconds: float
    """No step starts that would, taking as long as the previous one, end past this."""


PLANS: Final = {
    "one-room": Plan(start=20.0, steps=6, budget_seconds=480.0),
    "one-room-1000": Plan(start=10.0, steps=5, budget_seconds=900.0),
}
"""The scenarios that can be swept (`bench.scenarios`, 200 and 1,000 clients in one room);
1,000 clients take about four times as long to connect, hence the larger budget."""


def ladder(start: float, steps: int) -> tuple[float, ...]:
    """`steps` rates doubling from `start`."""
    return tuple(start * 2**index for index in range(steps))


@dataclass(frozen=True, slots=True)
class Step:
    """One rate, every system run at it."""

    rate: float
    rows: Mapping[str, Figures]
    """Each system whose run was measured."""
    failed: Mapping[str, str] = field(default_factory=dict)
    """Each system whose run could not be measured, with why (a phase timed out, ...)."""
    seconds: float = 0.0
    """Wall time of the whole step, server starts included."""
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """The machine's before the step (1, 5, 15 min)."""


def holds(row: Figures | None, *, limit_ms: float = LIMIT_MS) -> bool:
    """A system holds a rate when its run was measured, its p99 was at or under the limit, and
    it neither lost a delivery (later than the 10 s drain: later than any limit) nor refused a
    send."""
    return row is not None and row.latency_p99_ms <= limit_ms and row.lost == 0 and row.refused == 0


def stop_reason(
    rates: Sequence[float], done: Sequence[Step], *, budget_seconds: float
) -> str | None:
    """Why the sweep is over after the steps `done` (of the ladder `rates`), or None to run the
    next rate, `rates[len(done)]`."""
    if done and (
        losing := [s for s, row in _rows(done[-1]).items() if s in COMPARED and not holds(row)]
    ):
        return f"{', '.join(losing)} did not hold {done[-1].rate:g} msg/s"
    if len(done) >= min(len(rates), MAX_STEPS):
        return f"every rate held ({len(done)} steps)"
    spent = sum(step.seconds for step in done)
    if done and spent + done[-1].seconds > budget_seconds:
        return f"time budget: {spent:.0f} s spent, another step would pass {budget_seconds:g} s"
    return None


def contenders(systems: Sequence[str], done: Sequence[Step]) -> list[str]:
    """The systems to run at the next rate: those of `systems` that held every rate so far,
    and those the sweep compares (their not holding ends it, `stop_reason`)."""
    fallen = {name for step in done for name, row in _rows(step).items() if not holds(row)}
    return [name for name in systems if name in COMPARED or name not in fallen]


def _rows(step: Step) -> dict[str, Figures | None]:
    return {**step.rows, **dict.fromkeys(step.failed)}


@dataclass(frozen=True, slots=True)
class Summary:
    """One rate of the sweep, per system."""

    rate: float
    p99_ms: Mapping[str, float | None]
    """None: the run could not be measured."""
    held: Mapping[str, bool]
    deliveries_per_server_cpu_second: Mapping[str, float | None]
    subject_at_or_under: Mapping[str, bool | None]
    """Per reference: whether the subject's p99 was at or under the reference's; None where
    one of the two did not hold (issue 12 compares only there)."""


def summarise(
    steps: Sequence[Step], *, subject: str = SUBJECT, references: Sequence[str] = REFERENCES
) -> list[Summary]:
    summaries = []
    for step in steps:
        rows = _rows(step)
        compared = [name for name in references if name in rows and subject in rows]
        summaries.append(
            Summary(
                rate=step.rate,
                p99_ms={name: _get(row, "latency_p99_ms") for name, row in rows.items()},
                held={name: holds(row) for name, row in rows.items()},
                deliveries_per_server_cpu_second={
                    name: _get(row, "deliveries_per_server_cpu_second")
                    for name, row in rows.items()
                },
                subject_at_or_under={
                    name: _at_or_under(rows[subject], rows[name]) for name in compared
                },
            )
        )
    return summaries


def _get(row: Figures | None, key: str) -> float | None:
    return None if row is None else float(getattr(row, key))


def _at_or_under(subject: Figures | None, reference: Figures | None) -> bool | None:
    if subject is None or reference is None or not (holds(subject) and holds(reference)):
        return None
    return subject.latency_p99_ms <= reference.latency_p99_ms


def p99_series(steps: Sequence[Step]) -> dict[str, list[tuple[float, float]]]:
    """(rate, p99 ms) per system, in the steps' order, for the chart; unmeasured runs left out."""
    series: dict[str, list[tuple[float, float]]] = {}
    for step in steps:
        for name, row in step.rows.items():
            series.setdefault(name, []).append((step.rate, row.latency_p99_ms))
    return series


def summary_table(
    name: str, summaries: Sequence[Summary], *, systems: Sequence[str], subject: str = SUBJECT
) -> str:
    """The sweep at a glance: per rate each system's p99, the subject against each reference,
    and each system's deliveries per server CPU-second."""
    references = list(dict.fromkeys(r for s in summaries for r in s.subject_at_or_under))
    titles = [
        "msg/s",
        *(f"{system} p99 ms" for system in systems),
        *(f"{subject} <= {ref}" for ref in references),
        *(f"{system} deliv/srv CPU-s" for system in systems),
    ]
    rows = [
        [
            f"{summary.rate:g}",
            *(_p99_cell(summary.p99_ms.get(s), summary.held.get(s)) for s in systems),
            *(_verdict(summary.subject_at_or_under.get(ref)) for ref in references),
            *(_number(summary.deliveries_per_server_cpu_second.get(s)) for s in systems),
        ]
        for summary in summaries
    ]
    keys = [f"c{index}" for index in range(len(titles))]
    return "\n".join(
        [
            f"{name} sweep, p99 per rate (x: did not hold: p99 over {LIMIT_MS:g} ms, a delivery "
            "lost or a send refused; failed: not measured; '-' under <=: not compared, one of "
            "the two did not hold)",
            *grid(
                [(title, "{}", key) for title, key in zip(titles, keys, strict=True)],
                [SimpleNamespace(**dict(zip(keys, row, strict=True))) for row in rows],
            ),
        ]
    )


def _p99_cell(p99: float | None, held: bool | None) -> str:
    if held is None:
        return "-"
    if p99 is None:
        return "failed"
    return f"{p99:.1f}" + ("" if held else " x")


def _verdict(at_or_under: bool | None) -> str:
    return "-" if at_or_under is None else ("yes" if at_or_under else "no")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
