"""Fixtures of the store tests: one `StoreBackend` per implementation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.connection import _CONNECTION_DROP

from mesos_gpu.store.base import ConnectionState
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from mesos_gpu.store.zk import ZooKeeperStore, connect
from tests.waiting import wait_until


class StoreBackend:
    """Opens several store "clients" of one store, and breaks their connections the way the real
    backend breaks: `expire_session` (the session ends, its ephemeral nodes go) and
    `drop_connection` (the TCP connection drops, the session survives)."""

    name = ""

    def __init__(self) -> None:
        self.opened: list[Any] = []

    def open(self) -> Any:
        raise NotImplementedError

    def expire_session(self, store: Any) -> None:
        raise NotImplementedError

    def drop_connection(self, store: Any) -> None:
        raise NotImplementedError

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


class MemoryStoreBackend(StoreBackend):
    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.backend = MemoryBackend()

    def open(self) -> MemoryStore:
        store = MemoryStore(self.backend)
        self.opened.append(store)
        return store

    def expire_session(self, store: MemoryStore) -> None:
        store.expire_session()

    def drop_connection(self, store: MemoryStore) -> None:
        store.drop_connection()


class ZooKeeperStoreBackend(StoreBackend):
    name = "zookeeper"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def open(self) -> ZooKeeperStore:
        store = connect(self.url, timeout=10.0)
        self.opened.append(store)
        return store

    def expire_session(self, store: ZooKeeperStore) -> None:
        """The classic trick: a second client joins the session with its id and password and closes
        it, so the server really expires the session (ephemeral nodes are deleted at once)."""
        states: list[ConnectionState] = []
        store.add_connection_listener(states.append)
        session_id, password = store.client.client_id
        hosts = self.url.removeprefix("zk://").split("/", 1)[0]
        intruder = KazooClient(hosts, client_id=(session_id, password))
        intruder.start(timeout=10)
        intruder.stop()
        intruder.close()
        wait_until(lambda: ConnectionState.LOST in states, what="the session to expire")

    def drop_connection(self, store: ZooKeeperStore) -> None:
        """kazoo's own test hook (kazoo.testing.harness.lose_connection): drop the TCP connection."""
        states: list[ConnectionState] = []
        store.add_connection_listener(states.append)
        store.client._call(_CONNECTION_DROP, None)
        wait_until(lambda: ConnectionState.SUSPENDED in states, what="the connection to drop")


@pytest.fixture(params=["memory", pytest.param("zookeeper", marks=pytest.mark.zookeeper)])
def backend(request: pytest.FixtureRequest) -> Iterator[StoreBackend]:
    """Each contract test runs once per implementation; ZooKeeper in a fresh chroot per test."""
    chosen: StoreBackend
    if request.param == "memory":
        chosen = MemoryStoreBackend()
    else:
        chosen = ZooKeeperStoreBackend(request.getfixturevalue("zk_url"))
    try:
        yield chosen
    finally:
        chosen.close_all()


@pytest.fixture
def store(backend: StoreBackend) -> Any:
    """One open store of the backend under test."""
    return backend.open()
