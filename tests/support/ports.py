"""Ports for the servers the tests start, chosen below the kernel's ephemeral range.

Between choosing a port and a server binding it, a port from bind(("", 0)) may be taken by an
outgoing connection, whose local port the kernel draws from that same range (seen: a backend
failed to start with EADDRINUSE in a full run). Below it only an explicit bind to that very port
can take one, and this module never hands out the same port twice in one test run.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 20000
"""Above the well-known and most registered services' ports."""
ATTEMPTS = 200

_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, outside the ephemeral range, not handed out before."""
    ephemeral_start = int(EPHEMERAL_RANGE.read_text().split()[0])
    for _ in range(ATTEMPTS):
        port = random.randrange(LOWEST, ephemeral_start)
        if port not in _handed_out and bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port among {ATTEMPTS} tried in {LOWEST}-{ephemeral_start - 1}")


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
