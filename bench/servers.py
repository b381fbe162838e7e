"""The servers under test, as real processes on 127.0.0.1, and the RabbitMQ node behind them.

`running_servers` starts the processes of one system (two by default, so messages cross the
broker), waits until each answers `/readyz`, and stops them with SIGTERM, then SIGKILL. The node
is the test suite's private RabbitMQ (tests/fixtures/rabbitmq.py): never the system service.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import procstat
from tests.fixtures.rabbitmq import RabbitMQNode, new_node

REPO: Final = Path(__file__).resolve().parent.parent
READY_TIMEOUT: Final = 60.0
"""Seconds a server gets to answer /readyz 200; generous, the cores are shared."""
STOP_GRACE: Final = 10.0
"""Seconds a server gets to exit after SIGTERM (chatserver drains its clients first)."""
UNCAPPED_RATE: Final = "1000000"
"""chatserver's per-connection rate limit and burst for the benchmark: the offered load is set
by the generator, so the limit must never be what caps it."""
_INHERITED: Final = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


class ServerError(RuntimeError):
    """A server under test did not come up; carries the tail of its log."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to start one server process of a system."""

    argv: tuple[str, ...]
    env: dict[str, str]


def chatserver_spec(*, rabbitmq_url: str, cluster: str, pod: str, port: int) -> ServerSpec:
    return ServerSpec(
        argv=(str(Path(sys.executable).with_name("chatserver")), "backend"),
        env={
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "POD_NAME": pod,
            "RABBITMQ_URL": rabbitmq_url,
            "CHAT_CLUSTER": cluster,
            "CHAT_RATE_PER_SECOND": UNCAPPED_RATE,
            "CHAT_RATE_BURST": UNCAPPED_RATE,
            # Every simulated client connects from 127.0.0.1: no cap per address.
            "CHAT_MAX_CONNECTIONS_PER_IP": "0",
            # Clients are gone when the servers stop: no need to wait the default 10 s.
            "CHAT_DRAIN_SECONDS": "3",
        },
    )


def socketio_spec(*, rabbitmq_url: str, cluster: str, pod: str, port: int) -> ServerSpec:
    return ServerSpec(
        argv=(sys.executable, "-m", "bench.peers.socketio_server"),
        env={
            "PORT": str(port),
            "POD_NAME": pod,
            "RABBITMQ_URL": rabbitmq_url,
            "SOCKETIO_CHANNEL": f"{cluster}-socketio",
        },
    )


SPECS: Final = {"chatcluster": chatserver_spec, "python-socketio": socketio_spec}
"""Systems by name, as `bench.wire.WIRES` names their protocols."""


@dataclass(frozen=True, slots=True)
class ServerSet:
    """The running processes of one system; `urls` and `pids` index the same processes."""

    processes: list[subprocess.Popen[bytes]]
    urls: list[str]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def cpu_seconds(self) -> float:
        return procstat.cpu_seconds(self.pids)

    def peak_rss_bytes(self) -> int:
        return procstat.peak_rss_bytes(self.pids)

    def kill(self, index: int) -> None:
        """SIGKILL one process: it dies at once, without draining or telling its clients."""
        process = self.processes[index]
        process.kill()
        process.wait(5.0)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)


@contextlib.contextmanager
def running_servers(
    system: str, *, rabbitmq_url: str, cluster: str, count: int, logdir: Path
) -> Iterator[ServerSet]:
    """Start `count` processes of `system`, wait until all are ready, stop them on exit."""
    spec_of = SPECS[system]
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    logs: list[Path] = []
    base_env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    servers = ServerSet(processes, urls)
    try:
        for index in range(count):
            port = _free_port()
            pod = f"{system}-{index}"
            spec = spec_of(rabbitmq_url=rabbitmq_url, cluster=cluster, pod=pod, port=port)
            log_path = logdir / f"{cluster}-{pod}.log"
            with log_path.open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        spec.argv,
                        env={**base_env, **spec.env, "PYTHONUNBUFFERED": "1"},
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=REPO,  # the peer runs as `python -m bench.peers...`
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
            logs.append(log_path)
        for process, url, log_path in zip(processes, urls, logs, strict=True):
            _wait_ready(process, url, log_path)
        yield servers
    finally:
        servers.stop()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise ServerError(f"{url} not ready (exit {process.poll()}):\n{tail}")
        time.sleep(0.1)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[tuple[RabbitMQNode, list[int]]]:
    """A private RabbitMQ node for the run, with the pids of its Erlang VM (for its CPU time)."""
    node = new_node()
    try:
        node.start()
        yield node, procstat.pids_with_argument(str(node.workdir))
    finally:
        node.destroy()
