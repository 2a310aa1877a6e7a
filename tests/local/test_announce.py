"""The local master's ZooKeeper announcement survives a session expiry: the contender node comes back
with the same MasterInfo, and the master's leadership view follows (issue 20, item 2)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from mesos_gpu.local.announce import MASTER_INFO_JSON_LABEL, MasterAnnouncer, connection_retry
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.zookeeper import ZooKeeperServer, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.zookeeper

SESSION_S = 4.0  # the shortest session the fixture's server grants (2 x tickTime)
BACK_S = 5.0  # how soon the announcement must be back after an expiry


def master_info(port: int) -> dict[str, Any]:
    return {"id": f"master-{port}", "port": port, "address": {"ip": "127.0.0.1", "port": port}}


class Recorder:
    """The verdicts an announcer reports, in order (from kazoo's threads)."""

    def __init__(self) -> None:
        self.verdicts: list[tuple[str | None, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, leader: str | None, is_self: bool) -> None:
        with self._lock:
            self.verdicts.append((leader, is_self))

    def last(self) -> tuple[str | None, bool] | None:
        with self._lock:
            return self.verdicts[-1] if self.verdicts else None


def expire_session(announcer: MasterAnnouncer) -> None:
    """The classic trick: a second client joins the session with its id and password and closes it,
    so the server expires the session at once (its ephemeral nodes go); then wait for kazoo's LOST."""
    client = announcer.client
    assert client is not None
    lost = threading.Event()
    client.add_listener(lambda state: lost.set() if state == KazooState.LOST else None)
    session_id, password = client.client_id
    intruder = KazooClient(announcer.hosts, client_id=(session_id, password))
    intruder.start(timeout=10)
    intruder.stop()
    intruder.close()
    assert lost.wait(10), "the session did not expire"


@pytest.fixture
def observer(zk_hosts: str) -> Any:
    """A client of its own that reads what is announced."""
    client = KazooClient(zk_hosts)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


def contenders(observer: KazooClient, chroot: str) -> dict[str, dict[str, Any]]:
    """The MasterInfo JSON of every contender node under `chroot`, by node name."""
    found = {}
    for child in observer.get_children(chroot):
        if child.startswith(MASTER_INFO_JSON_LABEL + "_"):
            data, _ = observer.get(f"{chroot}/{child}")
            found[child] = json.loads(data)
    return found


@pytest.fixture
def announcers() -> Any:
    started: list[MasterAnnouncer] = []
    yield started
    for announcer in reversed(started):
        announcer.stop()


def test_the_node_is_announced_again_after_the_session_expires(
    zk_hosts: str, zk_chroot: str, announcers: list[MasterAnnouncer], observer: KazooClient
) -> None:
    recorder = Recorder()
    info = master_info(5050)
    announcer = MasterAnnouncer(f"zk://{zk_hosts}{zk_chroot}", info, recorder, timeout=SESSION_S).start()
    announcers.append(announcer)
    wait_until(lambda: recorder.last() == (None, True), what="the announcer to lead")
    first = announcer.node

    expire_session(announcer)

    wait_until(lambda: len(contenders(observer, zk_chroot)) == 1 and announcer.node != first,
               timeout=BACK_S, what="the contender node to be created again")
    assert contenders(observer, zk_chroot) == {announcer.node: info}  # the same MasterInfo
    wait_until(lambda: recorder.last() == (None, True), timeout=BACK_S, what="the announcer to lead again")


def test_a_master_info_updated_around_an_expiry_is_the_one_announced_again(
    zk_hosts: str, zk_chroot: str, announcers: list[MasterAnnouncer], observer: KazooClient
) -> None:
    recorder = Recorder()
    announcer = MasterAnnouncer(f"zk://{zk_hosts}{zk_chroot}", master_info(5050), recorder, timeout=SESSION_S)
    announcers.append(announcer.start())
    announcer.update(master_info(6060))  # as after LocalCluster.restart_master
    assert contenders(observer, zk_chroot) == {announcer.node: master_info(6060)}

    expire_session(announcer)
    announcer.update(master_info(7070))  # the node may be gone or already back: either way

    wait_until(lambda: contenders(observer, zk_chroot) == {announcer.node: master_info(7070)},
               timeout=BACK_S, what="the updated MasterInfo to be announced")
    wait_until(lambda: recorder.last() == (None, True), timeout=BACK_S, what="the announcer to lead again")


def test_an_expired_leader_rejoins_behind_the_standby_that_took_over(
    zk_hosts: str, zk_chroot: str, announcers: list[MasterAnnouncer], observer: KazooClient
) -> None:
    url = f"zk://{zk_hosts}{zk_chroot}"
    first, second = Recorder(), Recorder()
    leader = MasterAnnouncer(url, master_info(5050), first, timeout=SESSION_S).start()
    announcers.append(leader)
    standby = MasterAnnouncer(url, master_info(5051), second, timeout=SESSION_S).start()
    announcers.append(standby)
    wait_until(lambda: second.last() == ("127.0.0.1:5050", False), what="the standby to follow")

    expire_session(leader)

    wait_until(lambda: second.last() == (None, True), timeout=BACK_S, what="the standby to take over")
    wait_until(lambda: leader.node in contenders(observer, zk_chroot), timeout=BACK_S,
               what="the old leader to be announced again")
    assert sorted(contenders(observer, zk_chroot).values(), key=lambda i: i["port"]) == [
        master_info(5050), master_info(5051)]
    wait_until(lambda: first.last() == ("127.0.0.1:5051", False), timeout=BACK_S,
               what="the old leader to follow the new one")
    assert leader.probe() == ("127.0.0.1:5051", False)


def test_the_local_master_leads_again_after_its_session_expires(
    tmp_path: Path, zk_hosts: str, zk_chroot: str, observer: KazooClient
) -> None:
    with LocalCluster(agents=1, gpus_per_agent=1, workdir=tmp_path / "c", zk_url=f"zk://{zk_hosts}{zk_chroot}",
                      heartbeat_interval=0.5, allocation_interval=0.1) as cluster:
        wait_until(lambda: cluster.state().get("leader"), what="the master to lead")
        leader = cluster.state()["leader"]

        expire_session(cluster.announcer)

        wait_until(lambda: len(contenders(observer, zk_chroot)) == 1, timeout=BACK_S,
                   what="the master to be announced again")
        wait_until(lambda: cluster.master.is_leader and cluster.state().get("leader") == leader,
                   timeout=BACK_S, what="the master to lead again")


@pytest.mark.slow
def test_an_outage_longer_than_the_session_leaves_the_master_announced_and_leading(tmp_path: Path) -> None:
    """The fault run's outage: the server is down past the session timeout. The client must come
    back soon after the server does (kazoo's default backoff had grown past the session by then, so
    the session expired and the node was gone for good)."""
    port = free_port()
    server = ZooKeeperServer(port=port, workdir=tmp_path).start()
    recorder = Recorder()
    announcer = MasterAnnouncer(f"zk://{server.hosts}/outage", master_info(5050), recorder, timeout=SESSION_S)
    observer = KazooClient(server.hosts)
    try:
        announcer.start()
        wait_until(lambda: recorder.last() == (None, True), what="the announcer to lead")
        server.stop()
        time.sleep(SESSION_S + 1)  # the fault itself: an outage longer than the session timeout
        server = ZooKeeperServer(port=port, workdir=tmp_path).start()  # same data, same port
        observer.start(timeout=10)
        wait_until(lambda: announcer.client is not None and announcer.client.connected, timeout=BACK_S,
                   what="the announcer to reconnect")
        wait_until(lambda: contenders(observer, "/outage") == {announcer.node: master_info(5050)},
                   timeout=BACK_S, what="the master to be announced")
        wait_until(lambda: recorder.last() == (None, True), timeout=BACK_S, what="the master to lead")
    finally:
        observer.stop()
        observer.close()
        announcer.stop()
        server.stop()


def test_the_reconnection_backoff_stays_well_inside_the_session_timeout(
    zk_hosts: str, zk_chroot: str, announcers: list[MasterAnnouncer]
) -> None:
    """kazoo's default policy backs off up to an hour: after a long outage the client came back
    long after the server, too late to keep its session."""
    announcer = MasterAnnouncer(f"zk://{zk_hosts}{zk_chroot}", master_info(5050), Recorder()).start()
    announcers.append(announcer)
    assert announcer.client is not None
    policy = announcer.client._conn_retry  # kazoo keeps it there; it has no public accessor
    assert policy.max_tries == -1  # never gives up
    assert policy.max_delay <= 2.0 < announcer.timeout
    assert connection_retry().max_delay == policy.max_delay
