"""The servers under test, as real processes on 127.0.0.1, and the brokers behind them.

`running_servers` starts the processes of one system (two by default, so messages cross the
broker), waits until each answers its readiness probe, and stops them with SIGTERM, then
SIGKILL. chatcluster and python-socketio share the run's RabbitMQ node, the test suite's private
one (tests/fixtures/rabbitmq.py); centrifugo-redis gets a private redis-server per run
(`bench.redisnode`); centrifugo-memory has no broker, so it runs one node. Never a system
service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import orjson

from bench import procstat
from bench.peers import centrifugo
from bench.redisnode import private_redis
from tests.fixtures.rabbitmq import new_node
from tests.support.ports import free_port

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
class Broker:
    """What a system's servers fan out through, and its processes (for their CPU time)."""

    url: str
    pids: list[int]


@dataclass(frozen=True, slots=True)
class Placement:
    """One server process of a run: where it listens and what it talks to."""

    port: int
    pod: str
    cluster: str
    """Unique to the run: the servers of one run share it, and nothing else does."""
    broker_url: str
    """The run's RabbitMQ or redis-server ("" when the system has no broker)."""
    workdir: Path
    """The run's private directory, for files a server reads (Centrifugo's config)."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to start one server process of a system."""

    argv: tuple[str, ...]
    env: dict[str, str]
    ready_path: str = "/readyz"
    """Answers 200 once the process serves clients."""


def chatserver_spec(at: Placement) -> ServerSpec:
    return ServerSpec(
        argv=(str(Path(sys.executable).with_name("chatserver")), "backend"),
        env={
            "HOST": "127.0.0.1",
            "PORT": str(at.port),
            "POD_NAME": at.pod,
            "RABBITMQ_URL": at.broker_url,
            "CHAT_CLUSTER": at.cluster,
            "CHAT_RATE_PER_SECOND": UNCAPPED_RATE,
            "CHAT_RATE_BURST": UNCAPPED_RATE,
            # Every simulated client connects from 127.0.0.1: no cap per address.
            "CHAT_MAX_CONNECTIONS_PER_IP": "0",
            # Clients are gone when the servers stop: no need to wait the default 10 s.
            "CHAT_DRAIN_SECONDS": "3",
        },
    )


def socketio_spec(at: Placement) -> ServerSpec:
    return ServerSpec(
        argv=(sys.executable, "-m", "bench.peers.socketio_server"),
        env={
            "PORT": str(at.port),
            "POD_NAME": at.pod,
            "RABBITMQ_URL": at.broker_url,
            "SOCKETIO_CHANNEL": f"{at.cluster}-socketio",
        },
    )


def centrifugo_spec(at: Placement) -> ServerSpec:
    """A Centrifugo node with the config `bench.peers.centrifugo.config` writes: the Redis
    engine when the run has a broker, the memory engine otherwise."""
    path = at.workdir / f"{at.pod}.json"
    settings = centrifugo.config(
        port=at.port, redis_url=at.broker_url or None, redis_prefix=at.cluster
    )
    path.write_bytes(orjson.dumps(settings, option=orjson.OPT_INDENT_2))
    return ServerSpec(
        argv=(str(centrifugo.binary()), "--config", str(path)),
        env={},
        ready_path="/health",
    )


@dataclass(frozen=True, slots=True)
class System:
    """How one system under test is run."""

    spec: Callable[[Placement], ServerSpec]
    broker: Literal["rabbitmq", "redis"] | None
    """What its servers fan out through: the run's RabbitMQ node, or a private redis-server."""
    max_servers: int | None = None
    """Server processes it can run as one system (a broker-less engine is one node)."""


SPECS: Final = {
    "chatcluster": System(chatserver_spec, broker="rabbitmq"),
    "python-socketio": System(socketio_spec, broker="rabbitmq"),
    "centrifugo-memory": System(centrifugo_spec, broker=None, max_servers=1),
    "centrifugo-redis": System(centrifugo_spec, broker="redis"),
}
"""Systems by name, as `bench.wire.WIRES` names their protocols."""


@dataclass(frozen=True, slots=True)
class ServerSet:
    """The running processes of one system; `urls` and `pids` index the same processes."""

    processes: list[subprocess.Popen[bytes]]
    urls: list[str]
    broker_pids: list[int]
    """The broker's processes (none for a broker-less system)."""

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def broker_cpu_seconds(self) -> float:
        return procstat.cpu_seconds(self.broker_pids)

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


def server_count(system: str, wanted: int) -> int:
    """Server processes `system` runs when a scenario asks for `wanted`."""
    most = SPECS[system].max_servers
    return wanted if most is None else min(wanted, most)


@contextlib.contextmanager
def running_servers(
    system: str, *, rabbitmq: Broker, cluster: str, count: int, logdir: Path
) -> Iterator[ServerSet]:
    """Start `count` processes of `system` (and its private broker, if it has one), wait until
    all are ready, stop them on exit."""
    with contextlib.ExitStack() as stack:
        broker = _broker_of(system, rabbitmq, stack)
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-{system}-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        servers = ServerSet([], [], broker.pids if broker else [])
        stack.callback(servers.stop)
        logs: list[Path] = []
        ready_paths: list[str] = []
        base_env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        for index in range(count):
            port = free_port()
            pod = f"{system}-{index}"
            placement = Placement(
                port=port,
                pod=pod,
                cluster=cluster,
                broker_url=broker.url if broker else "",
                workdir=workdir,
            )
            spec = SPECS[system].spec(placement)
            log_path = logdir / f"{cluster}-{pod}.log"
            with log_path.open("wb") as log:
                servers.processes.append(
                    subprocess.Popen(
                        spec.argv,
                        env={**base_env, **spec.env, "PYTHONUNBUFFERED": "1"},
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=REPO,  # the peer runs as `python -m bench.peers...`
                    )
                )
            servers.urls.append(f"http://127.0.0.1:{port}")
            logs.append(log_path)
            ready_paths.append(spec.ready_path)
        for process, url, path, log_path in zip(
            servers.processes, servers.urls, ready_paths, logs, strict=True
        ):
            _wait_ready(process, url + path, log_path)
        yield servers


def _broker_of(system: str, rabbitmq: Broker, stack: contextlib.ExitStack) -> Broker | None:
    match SPECS[system].broker:
        case "rabbitmq":
            return rabbitmq
        case "redis":
            node = stack.enter_context(private_redis())
            return Broker(node.url, [node.pid])
        case None:
            return None


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise ServerError(f"{url} not ready (exit {process.poll()}):\n{tail}")
        time.sleep(0.1)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[Broker]:
    """A private RabbitMQ node for the run, with the pids of its Erlang VM (for its CPU time)."""
    node = new_node()
    try:
        node.start()
        yield Broker(node.url, procstat.pids_with_argument(str(node.workdir)))
    finally:
        node.destroy()
