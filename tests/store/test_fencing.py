"""Fenced writes (issue 17 "Fencing", issue 20 item 6): once `store.fence(election)` is called, every
write of the store is conditional on that election leading (ZooKeeper: a `check` of its own election
node in the same transaction). A deposed leader's write is refused as NotLeader and stores nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kazoo.exceptions import ConnectionLoss

from mesos_gpu.core.errors import NotLeaderError
from mesos_gpu.store.base import NotFound, NotLeader
from tests.store.conftest import StoreBackend, ZooKeeperStoreBackend
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def leading_and_standby(backend: StoreBackend) -> tuple[Any, Any, Any]:
    """A fenced leader store, its election, and a second store whose contender stands by."""
    leader, standby = backend.open(), backend.open()
    election = leader.leader_election()
    leader.fence(election)
    election.campaign("a:1", lambda: None, lambda reason: None)
    wait_until(lambda: election.is_leader, 10, "a leader")
    other = standby.leader_election()
    other.campaign("b:2", lambda: None, lambda reason: None)
    wait_until(lambda: len(election.contenders()) == 2, 10, "a standby")
    return leader, election, standby


def test_a_leaders_fenced_writes_are_stored(backend: StoreBackend) -> None:
    leader, _, standby = leading_and_standby(backend)
    record = leader.create("j1", {"n": 1})
    assert [r.id for r in leader.create_many([("j2", {}), ("j3", {})])] == ["j2", "j3"]
    assert leader.submit("j4", {}, "key-4").created
    leader.compare_and_set("j1", {"n": 2}, record.version)
    leader.delete("j2", None)
    leader.delete("j4", 0)
    leader.set_framework_id("fw-1")
    assert standby.get("j1").data == {"n": 2}
    assert standby.ids() == ["j1", "j3"]
    assert standby.get_framework_id() == "fw-1"
    leader.clear_framework_id()
    assert standby.get_framework_id() is None


def test_an_unfenced_store_writes_without_an_election(backend: StoreBackend) -> None:
    store = backend.open()
    store.create("j1", {})
    assert store.get("j1").version == 0


def test_a_deposed_leaders_writes_are_refused_and_store_nothing(backend: StoreBackend) -> None:
    leader, election, standby = leading_and_standby(backend)
    leader.create("old", {})
    backend.expire_session(leader)  # the standby leads now; the old leader rejoins second
    wait_until(lambda: election.leader_identifier() == "b:2", 10, "the standby to lead")
    for write in (
        lambda: leader.create("j1", {}),
        lambda: leader.submit("j1", {}, "key-1"),
        lambda: leader.compare_and_set("old", {"n": 2}, 0),
        lambda: leader.delete("old", None),
        lambda: leader.set_framework_id("fw-1"),
    ):
        with pytest.raises(NotLeader) as refused:
            write()
        assert isinstance(refused.value, NotLeaderError)  # the API answers it as "not the leader"
    (item,) = leader.create_many([("j2", {})])
    assert isinstance(item, NotLeader)
    with pytest.raises(NotFound):
        standby.get("j1")
    assert standby.ids() == ["old"]
    assert standby.get("old").version == 0
    assert standby.get_framework_id() is None


@pytest.mark.zookeeper
@pytest.mark.parametrize("write", ["create", "create_many", "submit", "compare_and_set",
                                   "compare_and_set_many", "delete"])
def test_a_write_started_while_leading_and_carried_out_after_the_expiry_is_refused(
    zk_url: str, write: str
) -> None:
    """The process is paused between "I lead" and the write reaching ZooKeeper; meanwhile its session
    expired and it was even elected again (a new node): the old write still fails its check."""
    backend = ZooKeeperStoreBackend(zk_url)
    try:
        store = backend.open()
        store.create("old", {})
        election = store.leader_election()
        store.fence(election)
        election.campaign("a:1", lambda: None, lambda reason: None)
        wait_until(lambda: election.is_leader, 10, "a leader")
        real_commit, gate, entered = store._zk.commit, threading.Event(), threading.Event()

        def paused_commit(operations: Any) -> Any:
            entered.set()
            assert gate.wait(30)
            return real_commit(operations)

        store._zk.commit = paused_commit
        writes = {
            "create": lambda: store.create("j1", {}),
            "create_many": lambda: store.create_many([("j1", {})])[0],
            "submit": lambda: store.submit("j1", {}, "key-1"),
            "compare_and_set": lambda: store.compare_and_set("old", {"n": 2}, 0),
            "compare_and_set_many": lambda: store.compare_and_set_many([("old", {"n": 2}, 0)]),
            "delete": lambda: store.delete("old", None),
        }
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(writes[write]())
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        assert entered.wait(10)
        backend.expire_session(store)
        wait_until(lambda: election.is_leader, 15, "the leader to be elected again with a new session")
        gate.set()
        thread.join(30)
        store._zk.commit = real_commit
        assert len(outcome) == 1 and isinstance(outcome[0], NotLeader), outcome
        assert store.ids() == ["old"]
        assert store.get("old").version == 0
        store.create("j2", {})  # the leader's next write, under its new node, goes through
    finally:
        backend.close_all()


@pytest.mark.zookeeper
def test_a_fenced_write_whose_answer_was_lost_is_recognised_on_retry(
    zk_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ZooKeeperStoreBackend(zk_url)
    try:
        store = backend.open()
        election = store.leader_election()
        store.fence(election)
        election.campaign("a:1", lambda: None, lambda reason: None)
        wait_until(lambda: election.is_leader, 10, "a leader")
        commit, lost = store._zk.commit, []

        def lose_answer_once(operations: Any) -> Any:
            results = commit(operations)  # applied by the server...
            if not lost:
                lost.append(results)
                raise ConnectionLoss("answer lost (test)")  # ...but its answer never arrives
            return results

        monkeypatch.setattr(store._zk, "commit", lose_answer_once)
        for write in (
            lambda: store.create("j1", {"n": 1}),
            lambda: store.compare_and_set("j1", {"n": 2}, 0),
            lambda: store.delete("j1", 1),
        ):
            lost.clear()
            write()  # neither Conflict nor NotFound: the retry recognises its own first attempt
            assert lost
        assert store.ids() == []
    finally:
        backend.close_all()
