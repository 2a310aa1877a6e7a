"""The API fixtures (the store: in memory, or the real ZooKeeper store in a fresh chroot)."""

from tests.api.conftest import memory_store, store  # noqa: F401 - fixtures used by test_api.py
