"""Fixtures for the agent-side tests; loads the real-Docker fixture plugin until tests/conftest.py does."""

pytest_plugins = ["tests.fixtures.docker"]
