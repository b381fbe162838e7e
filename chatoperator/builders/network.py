"""Port numbers and names every builder agrees on."""

BACKEND_PORT = 3000
FRONTEND_PORT = 8080
AMQP_PORT = 5672
AMQPS_PORT = 5671
"""AMQP over TLS: an external broker may listen there instead."""
STREAM_PORT = 5552
MANAGEMENT_PORT = 15672
PROMETHEUS_PORT = 15692
EPMD_PORT = 4369
DISTRIBUTION_PORT = 25672
"""Erlang distribution between broker nodes (clustering), alongside EPMD."""
STREAM_REPLICATION_PORTS = (6000, 6500)
"""Where a stream's followers listen for its leader's replication connection (osiris'
`port_range`, one port per follower replica on a node). RabbitMQ 3.10 has no rabbitmq.conf key
for it, so the broker config sets it in advanced.config, and the NetworkPolicy opens exactly it:
without it every follower stays offline and a backend on a follower's node can read no room."""
