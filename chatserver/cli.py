"""`chatserver backend | frontend | dev`: settings from the environment, then serve until
SIGTERM/SIGINT, drain, exit.

The signal handling is ours rather than `web.run_app`'s: aiohttp stops listening before its
shutdown hooks run, but a draining backend must keep answering `/readyz` (503) while its
clients leave.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from aiohttp import web

from chatserver import logs
from chatserver.auth import TokenVerifier
from chatserver.backend import add_backend, create_backend_app, drain_backend
from chatserver.broker.base import Broker
from chatserver.broker.memory import MemoryBroker
from chatserver.contract import Env
from chatserver.frontend import (
    add_ui_routes,
    create_frontend_app,
    dev_host_names,
    drain_frontend,
    only_hosts,
)
from chatserver.listener import Guard, GuardedSite, connection_cap
from chatserver.settings import (
    BackendSettings,
    ListenSettings,
    SettingsError,
    backend_settings_from_env,
    frontend_settings_from_env,
)

log = logging.getLogger("chatserver")

CLEANUP_RESERVE = 1.5
"""Seconds of `CHAT_DRAIN_SECONDS` kept for cutting stragglers, the last presence beat and
closing the broker after the drain proper."""
DEV_PORT = 8080


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatserver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("backend", help="the WebSocket tier (PORT, default 3000)")
    commands.add_parser("frontend", help="the UI and the /ws relay to BACKEND_URL (PORT 8080)")
    commands.add_parser("dev", help="UI and backend in one process, in-memory broker (PORT 8080)")
    command = parser.parse_args(argv).command
    logs.configure(process=command)
    try:
        serve = _prepare(command, os.environ)
    except SettingsError as exc:
        print(f"chatserver {command}: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve())
    return 0


def _prepare(command: str, env: Mapping[str, str]) -> Callable[[], Coroutine[Any, Any, None]]:
    """Read the settings (failing fast on bad values) and return the coroutine that serves."""
    if command == "frontend":
        fsettings = frontend_settings_from_env(env)
        budget = _drain_budget(fsettings.drain_seconds)

        # A relayed browser holds two descriptors: its own socket and the one to the backend.
        guard = _guard(fsettings.listen, descriptors_each=2)

        async def serve_frontend() -> None:
            app = create_frontend_app(fsettings)
            await _serve(
                app,
                fsettings.host,
                fsettings.port,
                guard=guard,
                drain=drain_frontend,
                budget=budget,
            )

        return serve_frontend

    if command == "dev":
        dev_env = {"HOST": "127.0.0.1", **env}
        # dev is the embedded default: memory broker only, whichever way a URL is given.
        dev_env.pop(Env.RABBITMQ_URL, None)
        dev_env.pop(Env.RABBITMQ_URL_FILE, None)
        settings = backend_settings_from_env(dev_env, default_port=DEV_PORT)
    else:
        settings = backend_settings_from_env(env)
    TokenVerifier.from_settings(settings.auth)  # an unusable key stops the process here, clearly
    budget = _drain_budget(settings.chat.drain_seconds)
    guard = _guard(settings.listen, descriptors_each=1)

    async def serve_backend() -> None:
        if command == "dev":
            names = dev_host_names(settings.host, settings.chat.allowed_origins)
            app = web.Application(middlewares=[only_hosts(names)])
            add_backend(app, settings, _broker(settings))
            add_ui_routes(app)
        else:
            app = create_backend_app(settings, _broker(settings))
        await _serve(
            app, settings.host, settings.port, guard=guard, drain=drain_backend, budget=budget
        )

    return serve_backend


def _broker(settings: BackendSettings) -> Broker:
    if not settings.rabbitmq_urls:
        log.info(
            "RABBITMQ_URL is not set: in-memory broker, so this process is the whole cluster "
            "(other backends would not see its rooms)"
        )
        return MemoryBroker(
            retention_bytes=settings.room_max_bytes, max_rooms=settings.memory_max_rooms
        )
    from chatserver.broker.rabbitmq import (  # noqa: PLC0415 - aiormq only when used
        RabbitMQBroker,
        RabbitMQSettings,
    )

    return RabbitMQBroker(
        settings.rabbitmq_urls,
        cluster=settings.cluster,
        pod=settings.pod,
        settings=RabbitMQSettings(retention_bytes=settings.room_max_bytes),
    )


def _guard(settings: ListenSettings, *, descriptors_each: int) -> Guard:
    cap = connection_cap(settings.max_connections, descriptors_each=descriptors_each)
    if cap < settings.max_connections:
        log.warning(
            "connection cap lowered to fit the file descriptor limit",
            extra={"max_connections": cap, "configured": settings.max_connections},
        )
    return Guard(settings, max_connections=cap)


def _drain_budget(drain_seconds: float) -> float:
    return max(0.5, drain_seconds - CLEANUP_RESERVE)


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    guard: Guard,
    drain: Callable[..., Awaitable[None]],
    budget: float,
) -> None:
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, guard=guard).start()
        log.info("listening", extra={"host": host, "port": port})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("stopping", extra={"drain_budget": budget})
        await drain(app, budget=budget)
    finally:
        await runner.cleanup()
    log.info("stopped")
