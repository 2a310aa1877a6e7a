"""The ZooKeeper barrier, in-process, against the real ZooKeeper: one kazoo client per member."""

from __future__ import annotations

import threading
import time

import pytest
from kazoo.client import KazooClient

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.tfconfig import Member
from mesos_gpu.tf.rendezvous import Rendezvous, RendezvousTimeoutError, clear_job

pytestmark = pytest.mark.zookeeper

COUNTS = {"chief": 1, "ps": 1, "worker": 2}


def address_of(member: Member) -> str:
    return f"127.0.0.1:{31000 + 10 * tfc.ROLES.index(member.role) + member.index}"


def join(client, chroot, member, counts=COUNTS, *, address=None) -> Rendezvous:
    rendezvous = Rendezvous(client, "job-1", member, address or address_of(member), counts, chroot=chroot)
    rendezvous.register()
    return rendezvous


def wait_in_thread(rendezvous: Rendezvous, timeout: float) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["addresses"] = rendezvous.wait(timeout)
        except RendezvousTimeoutError as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_every_member_gets_every_address_and_the_cluster_is_published(kazoo_client, zk_chroot):
    members = tfc.expected_members(COUNTS)
    rendezvous = [join(kazoo_client(), zk_chroot, m) for m in members]
    waits = [wait_in_thread(r, 10) for r in rendezvous]
    for thread, _ in waits:
        thread.join(15)
    expected = {m: address_of(m) for m in members}
    for _, outcome in waits:
        assert outcome.get("addresses") == expected
    assert all(r.flush(5) for r in rendezvous)  # the member that completed the cluster wrote it
    observer = kazoo_client()
    children = observer.get_children(tfc.members_path("job-1", zk_chroot))
    assert sorted(children) == sorted(m.name for m in members)
    data, _ = observer.get(tfc.member_path("job-1", Member("ps", 0), zk_chroot))
    assert data == address_of(Member("ps", 0)).encode()
    record, _ = observer.get(tfc.cluster_path("job-1", zk_chroot))
    addresses, owners = tfc.parse_cluster_record(record)
    assert addresses == expected
    for member in members:
        stat = observer.exists(tfc.member_path("job-1", member, zk_chroot))
        assert owners[member] == stat.ephemeralOwner != 0


def test_a_waiting_member_wakes_on_the_watch_when_the_last_one_registers(kazoo_client, zk_chroot):
    counts = {"worker": 2}
    first = join(kazoo_client(), zk_chroot, Member("worker", 0), counts)
    thread, outcome = wait_in_thread(first, 20)
    time.sleep(0.5)
    assert thread.is_alive()
    join(kazoo_client(), zk_chroot, Member("worker", 1), counts)
    registered = time.monotonic()
    thread.join(10)
    assert outcome["addresses"] == {m: address_of(m) for m in tfc.expected_members(counts)}
    assert outcome["at"] - registered < 0.5  # woken by the watch, not by a timer


def test_a_timeout_names_the_missing_members(kazoo_client, zk_chroot):
    rendezvous = join(kazoo_client(), zk_chroot, Member("worker", 0))
    join(kazoo_client(), zk_chroot, Member("chief", 0))
    started = time.monotonic()
    with pytest.raises(RendezvousTimeoutError) as caught:
        rendezvous.wait(1.0)
    assert 0.9 < time.monotonic() - started < 3
    assert caught.value.missing == [Member("ps", 0), Member("worker", 1)]
    assert str(caught.value) == "rendezvous timed out after 1 s: missing ps-0, worker-1"


def test_a_member_that_left_after_completing_still_releases_the_others(kazoo_client, zk_chroot):
    counts = {"worker": 2}
    fast = join(kazoo_client(), zk_chroot, Member("worker", 0), counts)
    slow = join(kazoo_client(), zk_chroot, Member("worker", 1), counts)
    assert len(fast.wait(5)) == 2
    fast.leave()  # e.g. its command finished before `slow` ever looked
    assert not kazoo_client().exists(tfc.member_path("job-1", Member("worker", 0), zk_chroot))
    assert slow.wait(5) == {Member("worker", 0): "127.0.0.1:31030", Member("worker", 1): "127.0.0.1:31031"}


def test_a_member_that_completed_later_writes_the_cluster_when_it_leaves(kazoo_client, zk_chroot):
    counts = {"worker": 2}
    early = join(kazoo_client(), zk_chroot, Member("worker", 0), counts)
    thread, outcome = wait_in_thread(early, 10)  # its first look finds worker-1 missing
    time.sleep(0.3)
    late = join(kazoo_client(), zk_chroot, Member("worker", 1), counts)  # registers, does not look yet
    thread.join(10)
    assert len(outcome["addresses"]) == 2  # `early` completed on a later look: it has not written yet
    observer = kazoo_client()
    assert observer.exists(tfc.cluster_path("job-1", zk_chroot)) is None
    early.leave()  # ... so it writes the cluster node before its own node goes
    assert (
        tfc.parse_cluster_record(observer.get(tfc.cluster_path("job-1", zk_chroot))[0])[0]
        == outcome["addresses"]
    )
    assert late.wait(5) == outcome["addresses"]


def test_a_cluster_published_before_this_registration_does_not_count(kazoo_client, zk_chroot):
    counts = {"worker": 2}
    old0 = join(kazoo_client(), zk_chroot, Member("worker", 0), counts)
    old1 = join(kazoo_client(), zk_chroot, Member("worker", 1), counts)
    old0.wait(5)
    old0.leave()
    old1.leave()
    # The job restarts: worker-1 comes back alone; the old cluster node must not release it.
    again = join(kazoo_client(), zk_chroot, Member("worker", 1), counts, address="127.0.0.1:40001")
    with pytest.raises(RendezvousTimeoutError, match="missing worker-0"):
        again.wait(1.0)


def test_a_restarted_member_replaces_the_node_of_its_previous_run(kazoo_client, zk_chroot, zk_hosts):
    counts = {"worker": 2}
    path = tfc.member_path("job-1", Member("worker", 1), zk_chroot)
    old_client = kazoo_client()  # the previous run: killed, but its session has not expired yet
    old_client.ensure_path(tfc.members_path("job-1", zk_chroot))
    old_client.create(path, b"127.0.0.1:39999", ephemeral=True)
    other = join(kazoo_client(), zk_chroot, Member("worker", 0), counts)
    new_client = kazoo_client()
    restarted = join(new_client, zk_chroot, Member("worker", 1), counts, address="127.0.0.1:40001")
    assert restarted.replaced_stale_node
    data, stat = kazoo_client().get(path)
    assert data == b"127.0.0.1:40001"
    assert stat.ephemeralOwner == new_client.client_id[0]
    expected = {Member("worker", 0): "127.0.0.1:31030", Member("worker", 1): "127.0.0.1:40001"}
    assert restarted.wait(5) == expected
    assert other.wait(5) == expected


def test_registering_twice_in_one_session_keeps_the_node(kazoo_client, zk_chroot):
    client = kazoo_client()
    rendezvous = join(client, zk_chroot, Member("worker", 0), {"worker": 2})
    rendezvous.register()
    assert not rendezvous.replaced_stale_node
    _, stat = client.get(tfc.member_path("job-1", Member("worker", 0), zk_chroot))
    assert stat.ephemeralOwner == client.client_id[0]


def test_after_a_session_expiry_the_member_registers_again(kazoo_client, zk_chroot, zk_hosts):
    client = kazoo_client()
    join(client, zk_chroot, Member("worker", 0), {"worker": 2})
    path = tfc.member_path("job-1", Member("worker", 0), zk_chroot)
    old_session = client.client_id[0]
    # Expire the session the classic way: a second client attaches to it and closes it.
    thief = KazooClient(hosts=zk_hosts, client_id=client.client_id, timeout=10.0)
    thief.start(timeout=15)
    thief.stop()
    thief.close()
    observer = kazoo_client()
    deadline = time.monotonic() + 15
    stat = None
    while time.monotonic() < deadline:
        stat = observer.exists(path)
        if stat is not None and stat.ephemeralOwner not in (0, old_session):
            break
        time.sleep(0.1)
    assert stat is not None and stat.ephemeralOwner == client.client_id[0] != old_session


def test_nodes_that_are_not_members_are_ignored(kazoo_client, zk_chroot):
    client = kazoo_client()
    client.ensure_path(tfc.members_path("job-1", zk_chroot) + "/lock")
    client.ensure_path(tfc.members_path("job-1", zk_chroot) + "/worker-7")
    counts = {"worker": 2}
    a = join(client, zk_chroot, Member("worker", 0), counts)
    join(kazoo_client(), zk_chroot, Member("worker", 1), counts)
    assert set(a.wait(5)) == {Member("worker", 0), Member("worker", 1)}


def test_wait_before_register_is_a_programming_error(kazoo_client, zk_chroot):
    client = kazoo_client()
    rendezvous = Rendezvous(client, "job-1", Member("worker", 0), "h:1", {"worker": 2}, chroot=zk_chroot)
    with pytest.raises(RuntimeError, match="register"):
        rendezvous.wait(1)
    with pytest.raises(tfc.ClusterError):
        Rendezvous(client, "job-1", Member("worker", 5), "h:1", {"worker": 2}, chroot=zk_chroot)


def test_clear_job_deletes_the_members_and_the_cluster_of_a_job(kazoo_client, zk_chroot):
    members = tfc.expected_members(COUNTS)
    rendezvous = [join(kazoo_client(), zk_chroot, m) for m in members]
    waits = [wait_in_thread(r, 10) for r in rendezvous]
    for thread, _ in waits:
        thread.join(15)
    assert all(r.flush(5) for r in rendezvous)
    other_path = tfc.member_path("job-1", Member("chief", 0), zk_chroot).replace("/job-1/", "/job-2/")
    kazoo_client().create(other_path, b"127.0.0.1:1", makepath=True)   # another job's node stays
    observer = kazoo_client()
    assert observer.exists(tfc.cluster_path("job-1", zk_chroot)) is not None
    clear_job(observer, "job-1", zk_chroot)      # members still connected: their nodes go too
    assert observer.exists(tfc.job_path("job-1", zk_chroot)) is None
    assert observer.exists(other_path) is not None
    clear_job(observer, "job-1", zk_chroot)      # nothing left: no error


def test_clear_job_gives_up_in_time_when_zookeeper_is_gone(tmp_path):
    from kazoo.handlers.threading import KazooTimeoutError

    from mesos_gpu.local.zookeeper import ZooKeeperServer

    server = ZooKeeperServer(workdir=tmp_path).start()
    client = KazooClient(hosts=server.hosts, timeout=10.0)
    try:
        client.start(timeout=30)
        client.create(tfc.member_path("job-9", Member("chief", 0)), b"127.0.0.1:1", makepath=True)
        server.stop()
        started = time.monotonic()
        with pytest.raises(KazooTimeoutError):
            clear_job(client, "job-9", timeout=0.5)
        assert time.monotonic() - started < 3        # bounded: the scheduler's event thread goes on
    finally:
        client.stop()
        client.close()
        server.stop()
