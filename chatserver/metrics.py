"""Prometheus metrics of one backend, on a registry of its own (several apps may share a
process in tests and in `chatserver dev`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ChatMetrics:
    """Everything `/metrics` reports; names are prefixed `chat_`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("chat_connections", "Open WebSocket sessions", registry=r)
        self.messages_in = Counter(
            "chat_messages_in", "Messages accepted from this pod's clients (acked)", registry=r
        )
        self.messages_out = Counter(
            "chat_messages_out", "Message frames queued to this pod's clients", registry=r
        )
        self.fanout_latency = Histogram(
            "chat_fanout_latency_seconds",
            "From acceptance on any backend (message ts) to queued for this pod's members",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.broker_connected = Gauge(
            "chat_broker_connected", "1 while the broker connection is up", registry=r
        )
        self.broker_blocked = Gauge(
            "chat_broker_blocked",
            "1 while the broker holds back this pod's writes (a RabbitMQ memory or disk alarm)",
            registry=r,
        )
        self.room_limit_reached = Gauge(
            "chat_room_limit_reached",
            "1 while the broker refused the last new room this pod asked for (the cluster's room"
            " cap); existing rooms are unaffected",
            registry=r,
        )
        self.rooms_followed = Gauge(
            "chat_rooms_followed",
            "Rooms this pod reads from the broker (one per room with a local member)",
            registry=r,
        )
        self.slow_consumers = Counter(
            "chat_slow_consumers_dropped", "Clients cut because their outbox overflowed", registry=r
        )
        self.client_errors = Counter(
            "chat_client_errors", "Error frames sent to clients, by code", ["code"], registry=r
        )
        self.duplicates = Counter(
            "chat_duplicate_sends",
            "Records dropped as retries of an already stored send",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
