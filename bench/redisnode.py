"""A private redis-server for Centrifugo's Redis engine: Debian's binary, never the system service.

It binds 127.0.0.1 on a port below the ephemeral range, keeps its files in its own temp
directory, persists nothing (a bench run's channels are thrown away) and is stopped with
SIGTERM, then SIGKILL, when the run ends.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.support.ports import free_port

BOOT_TIMEOUT: Final = 20.0
"""Seconds for redis-server to answer PING; it boots in milliseconds on an idle machine."""
STOP_TIMEOUT: Final = 10.0


class RedisError(RuntimeError):
    """redis-server is missing or did not come up; carries the tail of its log."""


@dataclass(frozen=True, slots=True)
class RedisNode:
    url: str
    pid: int


def command(*, port: int, workdir: Path) -> list[str]:
    """redis-server's command line: loopback only, its own dir, no persistence, no config file."""
    return [
        "redis-server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(workdir),
        "--logfile", str(workdir / "redis.log"),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
    ]  # fmt: skip


@contextlib.contextmanager
def private_redis() -> Iterator[RedisNode]:
    if shutil.which("redis-server") is None:
        raise RedisError("no redis-server on PATH: run `make system-deps`")
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    port = free_port()
    process = subprocess.Popen(
        command(port=port, workdir=workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not _answers_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                log = workdir / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RedisError(f"redis-server did not answer on port {port}:\n{tail}")
            time.sleep(0.05)
        yield RedisNode(url=f"redis://127.0.0.1:{port}", pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)
        shutil.rmtree(workdir, ignore_errors=True)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(7) == b"+PONG\r\n"
    except OSError:
        return False
