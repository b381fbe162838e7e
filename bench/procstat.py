"""CPU time and memory of processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of /proc/<pid>/stat.

    The fields are counted after the last `)`: the command name before it may hold spaces.
    """
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the name: state is field 3 of stat(5); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def parse_memory_bytes(status: str, field: str) -> int:
    """A memory field of the text of /proc/<pid>/status, in bytes: `VmHWM` (peak resident set)
    or `VmRSS` (resident now); the file gives kB."""
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no {field} line: the process is a zombie or a kernel thread")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by these processes, summed."""
    ticks = sum(parse_cpu_ticks((_PROC / str(pid) / "stat").read_text()) for pid in pids)
    return ticks / _TICKS_PER_SECOND


def peak_rss_bytes(pids: Iterable[int]) -> int:
    """Peak resident memory of these processes so far, summed."""
    return _memory_bytes(pids, "VmHWM")


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident memory of these processes now, summed."""
    return _memory_bytes(pids, "VmRSS")


def _memory_bytes(pids: Iterable[int], field: str) -> int:
    return sum(parse_memory_bytes((_PROC / str(pid) / "status").read_text(), field) for pid in pids)


def pids_with_argument(argument: str) -> list[int]:
    """Processes whose command line has `argument` as one of its words (e.g. a directory)."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited while we looked
            continue
        if argument.encode() in words:
            found.append(int(entry.name))
    return found
