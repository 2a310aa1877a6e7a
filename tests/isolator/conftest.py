"""Fixtures for the agent-side tests (the real Docker engine comes from tests/fixtures/docker.py)."""
