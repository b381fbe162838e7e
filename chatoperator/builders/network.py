"""Port numbers and names every builder agrees on."""

BACKEND_PORT = 3000
FRONTEND_PORT = 8080
AMQP_PORT = 5672
STREAM_PORT = 5552
MANAGEMENT_PORT = 15672
PROMETHEUS_PORT = 15692
EPMD_PORT = 4369
DISTRIBUTION_PORT = 25672
"""Erlang distribution between broker nodes (clustering), alongside EPMD."""
