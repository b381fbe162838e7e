"""Test-suite wide settings. Fixtures live in tests/fixtures/, one plugin module per service."""

pytest_plugins = [
    "tests.fixtures.rabbitmq",
    "tests.fixtures.chatprocs",
    "tests.fixtures.k8s",
    "tests.fixtures.node",
]
