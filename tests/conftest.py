"""Shared pytest set-up: fixture plugins live in tests/fixtures/, one module per real dependency."""

pytest_plugins = [
    "tests.fixtures.zookeeper",
    "tests.fixtures.docker",
]
