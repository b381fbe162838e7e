"""CPU time and memory of processes, and the kernel's socket memory, read from /proc (Linux
only)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_PROC = Path("/proc")
SOCKET_SLABS = ("TCP", "sock_inode_cache")
"""Slab caches holding a TCP socket's kernel objects: the socket and its inode."""


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of /proc/<pid>/stat.

    The fields are counted after the last `)`: the command name before it may hold spaces.
    """
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the name: state is field 3 of stat(5); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def parse_status_bytes(status: str, field: str) -> int:
    """A memory field (`VmHWM`, peak resident; `VmRSS`, resident now) from the text of
    /proc/<pid>/status, where it is in kB."""
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no {field} line: the process is a zombie or a kernel thread")


def parse_tcp_buffer_pages(sockstat: str) -> int:
    """Pages of TCP send and receive buffers in use, machine wide (`TCP: ... mem N` of
    /proc/net/sockstat)."""
    for line in sockstat.splitlines():
        if line.startswith("TCP:"):
            words = line.split()
            return int(words[words.index("mem") + 1])
    raise ValueError("no TCP line in sockstat")


def parse_slab_bytes(slabinfo: str, caches: Iterable[str]) -> int:
    """Bytes of the active objects of these slab caches (/proc/slabinfo: name, active objects,
    objects, object size, ...)."""
    wanted = set(caches)
    total = 0
    for line in slabinfo.splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            total += int(fields[1]) * int(fields[3])
    return total


def parse_netstat_counter(netstat: str, group: str, name: str) -> int:
    """One counter of /proc/net/netstat (or /proc/net/snmp): each group is a line of names
    then a line of values, both starting with `<group>:`."""
    lines = [line.split() for line in netstat.splitlines() if line.startswith(f"{group}:")]
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if name in names:
            return int(values[names.index(name)])
    raise ValueError(f"no {group} {name} counter")


def listen_overflows() -> int:
    """Connections the kernel dropped so far, machine wide, because a listening socket's accept
    queue was full (the server did not accept fast enough for its backlog)."""
    netstat = (_PROC / "net" / "netstat").read_text()
    return parse_netstat_counter(netstat, "TcpExt", "ListenOverflows")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by these processes, summed."""
    ticks = sum(parse_cpu_ticks((_PROC / str(pid) / "stat").read_text()) for pid in pids)
    return ticks / _TICKS_PER_SECOND


def peak_rss_bytes(pids: Iterable[int]) -> int:
    """Peak resident memory of these processes so far, summed."""
    return _status_sum(pids, "VmHWM")


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident memory of these processes now, summed."""
    return _status_sum(pids, "VmRSS")


def _status_sum(pids: Iterable[int], field: str) -> int:
    return sum(parse_status_bytes((_PROC / str(pid) / "status").read_text(), field) for pid in pids)


def tcp_buffer_bytes() -> int:
    """Memory of every TCP socket's buffers on the machine now."""
    return parse_tcp_buffer_pages((_PROC / "net" / "sockstat").read_text()) * _PAGE_BYTES


def socket_slab_bytes() -> int:
    """Memory of the kernel's socket objects on the machine now (root may read slabinfo)."""
    return parse_slab_bytes((_PROC / "slabinfo").read_text(), SOCKET_SLABS)


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
