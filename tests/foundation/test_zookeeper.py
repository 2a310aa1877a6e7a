"""kazoo against the fixture's real ZooKeeper: nodes, watches, ephemeral nodes, leader election.

These prove the test set-up itself (a real server on a loopback port) before the store builds on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.recipe.election import Election

from mesos_gpu.local.zookeeper import ZooKeeperError, ZooKeeperServer, four_letter_word

pytestmark = pytest.mark.zookeeper


def _make_chroot(zk_hosts: str, zk_chroot: str) -> None:
    root = KazooClient(hosts=zk_hosts, timeout=10)
    root.start(timeout=10)
    root.ensure_path(zk_chroot)
    root.stop()
    root.close()


@pytest.fixture
def client(zk_hosts: str, zk_chroot: str) -> Iterator[KazooClient]:
    _make_chroot(zk_hosts, zk_chroot)
    zk = KazooClient(hosts=zk_hosts + zk_chroot, timeout=10)
    zk.start(timeout=10)
    yield zk
    zk.stop()
    zk.close()


def test_the_server_answers_four_letter_words(zk_hosts: str) -> None:
    host, port = zk_hosts.split(":")
    assert four_letter_word(host, int(port), "ruok") == "imok"
    assert "Zookeeper version: 3." in four_letter_word(host, int(port), "srvr")


def test_create_get_set_and_children(client: KazooClient) -> None:
    client.create("/jobs/a", b'{"n": 1}', makepath=True)
    client.create("/jobs/b", b"{}")
    data, stat = client.get("/jobs/a")
    assert data == b'{"n": 1}'
    assert stat.version == 0
    client.set("/jobs/a", b'{"n": 2}', version=0)
    assert client.get("/jobs/a")[1].version == 1
    assert sorted(client.get_children("/jobs")) == ["a", "b"]


def test_a_data_watch_fires_on_change(client: KazooClient) -> None:
    client.create("/watched", b"one")
    fired: list[WatchedEvent] = []
    changed = threading.Event()

    def watch(event: WatchedEvent) -> None:
        fired.append(event)
        changed.set()

    assert client.get("/watched", watch=watch)[0] == b"one"
    client.set("/watched", b"two")
    assert changed.wait(10), "the watch did not fire"
    assert fired[0].type == EventType.CHANGED
    assert fired[0].path == "/watched"


def test_an_ephemeral_node_vanishes_when_its_session_closes(
    client: KazooClient, zk_hosts: str, zk_chroot: str
) -> None:
    owner = KazooClient(hosts=zk_hosts + zk_chroot, timeout=10)
    owner.start(timeout=10)
    owner.create("/members/worker-0", b"127.0.0.1:31000", ephemeral=True, makepath=True)
    assert client.exists("/members/worker-0") is not None
    gone = threading.Event()

    def watch(event: WatchedEvent) -> None:
        if event.type == EventType.DELETED:
            gone.set()

    client.exists("/members/worker-0", watch=watch)
    owner.stop()
    owner.close()
    assert gone.wait(10), "the ephemeral node outlived its session"
    assert client.exists("/members/worker-0") is None


def test_exactly_one_leader_among_three_contenders(zk_hosts: str, zk_chroot: str) -> None:
    _make_chroot(zk_hosts, zk_chroot)
    clients = [KazooClient(hosts=zk_hosts + zk_chroot, timeout=10) for _ in range(3)]
    for zk in clients:
        zk.start(timeout=10)
    leaders: list[str] = []
    lock = threading.Lock()
    elected = threading.Event()
    release = threading.Event()

    def lead(name: str) -> None:
        with lock:
            leaders.append(name)
        elected.set()
        release.wait(20)

    elections = [Election(zk, "/leader", identifier=f"scheduler-{i}") for i, zk in enumerate(clients)]
    stopped: set[int] = set()

    def contend(i: int) -> None:
        try:
            elections[i].run(lead, f"scheduler-{i}")
        except ConnectionClosedError:
            # Expected only for the contender whose client the test stopped while it led.
            assert i in stopped

    threads = [threading.Thread(target=contend, args=(i,), daemon=True) for i in range(3)]
    try:
        for thread in threads:
            thread.start()
        assert elected.wait(10), "nobody was elected"
        # Give the others every chance to (wrongly) become leader too.
        release.wait(1.0)
        assert len(leaders) == 1
        contenders = elections[0].contenders()
        assert sorted(contenders) == ["scheduler-0", "scheduler-1", "scheduler-2"]
        assert contenders[0] == leaders[0]

        # The leader's session ends: exactly one other contender takes over.
        first = int(leaders[0].rsplit("-", 1)[1])
        elected.clear()
        stopped.add(first)
        clients[first].stop()
        assert elected.wait(15), "no standby took over"
        release.wait(1.0)
        assert len(leaders) == 2
        assert leaders[1] != leaders[0]
    finally:
        for election in elections:
            election.cancel()
        release.set()
        for thread in threads:
            thread.join(10)
        for zk in clients:
            zk.stop()
            zk.close()


def test_a_server_that_cannot_start_says_why() -> None:
    server = ZooKeeperServer(java="no-such-java-binary")
    with pytest.raises(ZooKeeperError, match="Java runtime"):
        server.start()
