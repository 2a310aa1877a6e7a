"""A fenced create whose first attempt committed but whose answer was lost, retried after the leader's
session expired (a paused leader): the retry's fence check fails, yet the jobs ARE stored. They are
answered as created, never "not the leader" (issue 17: a client without an idempotency key, told 503,
submitted again and the long soak stored the job twice). Only what is not there is "not the leader"; a
node holding other data is never ours; an outcome the store cannot tell is an honest 503. The look-up
is part of the write (what is left of its deadline), and whatever fails in it is that 503, never a 500."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from kazoo.exceptions import ConnectionClosedError, ConnectionLoss, NoAuthError
from kazoo.security import make_acl

from mesos_gpu.core.errors import NotLeaderError, UnavailableError
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.control import JobsStored
from mesos_gpu.driver.submits import SubmitPath
from mesos_gpu.store.base import (
    Conflict,
    NotLeader,
    StoreUnavailable,
    Versioned,
    idempotency_key_name,
)
from mesos_gpu.store.zk import ZooKeeperStore, connect
from mesos_gpu.store.zkclient import COMMAND_DEADLINE_S
from tests.store.conftest import ZooKeeperStoreBackend
from tests.waiting import wait_until

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(60)]

SPEC = validate_job({"name": "j", "command": "true", "cpus": 1, "mem": 64})
RUNNING = {"n": 1, "state": "RUNNING"}  # j1 as the next leader moved it on


class Scene:
    """A fenced leader store and a second store (the next leader, unfenced here). `lose_first_commit`
    makes the leader's next transaction reach ZooKeeper (or not, `applied=False`), then its session
    expires and its answer is lost (ConnectionLoss): `command_retry` tries again under the old node."""

    def __init__(self, backend: ZooKeeperStoreBackend, monkeypatch: pytest.MonkeyPatch,
                 command_deadline: float = COMMAND_DEADLINE_S) -> None:
        self.backend = backend
        self.leader: ZooKeeperStore = connect(backend.url, timeout=10.0, command_deadline=command_deadline)
        backend.opened.append(self.leader)
        self.other: ZooKeeperStore = backend.open()
        self.election = self.leader.leader_election()
        self.leader.fence(self.election)
        self.election.campaign("a:1", lambda: None, lambda reason: None)
        wait_until(lambda: self.election.is_leader, 10, "a leader")
        self.commits = 1  # disarmed until `lose_first_commit`
        self.applied = True
        self.meanwhile: Callable[[], Any] = lambda: None
        self.real_commit = self.leader._zk.commit
        monkeypatch.setattr(self.leader._zk, "commit", self._commit)

    def _commit(self, operations: Any) -> Any:
        real = self.real_commit
        self.commits += 1
        if self.commits > 1:
            return real(operations)
        if self.applied:
            real(operations)  # the server applies it (its answer may be a refusal: NodeExists)
        self.meanwhile()  # e.g. the next leader writes the job
        self.backend.expire_session(self.leader)  # the paused leader's session ends
        raise ConnectionLoss("the answer was lost (test)")

    def lose_first_commit(self, applied: bool = True, meanwhile: Callable[[], Any] = lambda: None) -> None:
        """Arm: the next write's first commit is lost (once leading again, after an earlier expiry)."""
        wait_until(lambda: self.election.is_leader and self.election.leader_node, 15, "the leader, elected")
        self.commits, self.applied, self.meanwhile = 0, applied, meanwhile

    def retried(self) -> None:
        assert self.commits == 2, "the write was retried once, under the old election node"


@pytest.fixture
def scene(zk_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    backend = ZooKeeperStoreBackend(zk_url)
    try:
        yield Scene(backend, monkeypatch)
    finally:
        backend.close_all()


def test_a_group_commit_stored_before_the_session_expired_is_reported_created(scene: Scene) -> None:
    scene.lose_first_commit()
    results = scene.leader.create_many([("j1", {"n": 1}), ("j2", {"n": 2}), ("j3", {"n": 3})])
    scene.retried()
    assert results == [Versioned(f"j{n}", {"n": n}, 0) for n in (1, 2, 3)]
    assert scene.other.ids() == ["j1", "j2", "j3"]  # durable: the next leader lists them


def test_a_create_stored_before_the_session_expired_is_reported_created(scene: Scene) -> None:
    scene.lose_first_commit()
    assert scene.leader.create("j1", {"n": 1}) == Versioned("j1", {"n": 1}, 0)
    scene.retried()
    assert scene.other.get("j1").data == {"n": 1}


def test_a_keyed_submit_stored_before_the_session_expired_is_reported_created(scene: Scene) -> None:
    scene.lose_first_commit()
    submitted = scene.leader.submit("j1", {"n": 1}, "key-1")
    scene.retried()
    assert submitted.created and submitted.record == Versioned("j1", {"n": 1}, 0)
    assert scene.other.job_for_idempotency_key("key-1") == "j1"


def test_a_job_the_next_leader_modified_meanwhile_is_ours_by_its_transaction(scene: Scene) -> None:
    """Both nodes were created by one transaction (one zxid): j2 holds our record, so j1, already moved
    on by the next leader, is ours too."""
    scene.lose_first_commit(meanwhile=lambda: scene.other.compare_and_set("j1", RUNNING, 0))
    results = scene.leader.create_many([("j1", {"n": 1}), ("j2", {"n": 2})])
    scene.retried()
    assert results == [Versioned("j1", {"n": 1}, 0), Versioned("j2", {"n": 2}, 0)]


@pytest.mark.parametrize("ours", [True, False])
def test_a_lone_job_modified_meanwhile_is_an_honest_unknown_outcome(scene: Scene, ours: bool) -> None:
    """Undecidable (zkrecover's docstring): j1 created by our lost transaction (ours) and moved on by the
    next leader, or created after our election node was gone by a later leader (ours did not commit) and
    moved on, leave the same trace: a node modified since, created after our first attempt was sent."""

    def meanwhile() -> None:
        if not ours:
            scene.other.create("j1", {"theirs": True})
        scene.other.compare_and_set("j1", RUNNING, 0)

    scene.lose_first_commit(applied=ours, meanwhile=meanwhile)
    with pytest.raises(StoreUnavailable) as unknown:
        scene.leader.create("j1", {"n": 1})
    scene.retried()
    assert not isinstance(unknown.value, NotLeaderError)  # 503 "unavailable", never a 307 to resubmit to
    assert "may or may not be stored" in str(unknown.value) and "Idempotency-Key" in str(unknown.value)


def test_nothing_committed_stays_not_the_leader(scene: Scene) -> None:
    scene.lose_first_commit(applied=False)
    (item,) = scene.leader.create_many([("j1", {})])
    scene.retried()
    assert isinstance(item, NotLeader)
    for write in (lambda: scene.leader.create("j2", {}), lambda: scene.leader.submit("j3", {}, "key-3")):
        scene.lose_first_commit(applied=False)
        with pytest.raises(NotLeader):
            write()
        scene.retried()
    assert scene.other.ids() == []
    assert scene.other.job_for_idempotency_key("key-3") is None


def test_a_node_holding_other_data_is_never_ours(scene: Scene) -> None:
    """j1 was someone else's before (our transaction was refused: NodeExists, its answer lost): j1 is a
    Conflict, j2 (not stored) is not the leader; a key naming another job is not ours either."""
    scene.other.create("j1", {"theirs": True})
    scene.other.submit("k1", {"theirs": True}, "key-1")
    scene.lose_first_commit()
    first, second = scene.leader.create_many([("j1", {"n": 1}), ("j2", {"n": 2})])
    scene.retried()
    assert isinstance(first, Conflict) and not isinstance(first, NotLeader)
    assert isinstance(second, NotLeader)
    scene.lose_first_commit()
    with pytest.raises(Conflict):
        scene.leader.create("j1", {"n": 1})
    scene.retried()
    scene.lose_first_commit()  # applied: refused, the key is taken
    with pytest.raises(NotLeader):
        scene.leader.submit("j3", {"n": 3}, "key-1")
    scene.retried()
    assert scene.other.get("j1").data == {"theirs": True}
    assert scene.other.ids() == ["j1", "k1"]


def test_a_job_there_before_our_write_is_never_ours_even_modified(scene: Scene) -> None:
    """j1 was created (and moved on) before our first attempt was sent: our transaction was refused
    (NodeExists), so j1 is someone else's job: a Conflict, not an undecided 503. (The leader has read
    the jobs since j1 was made, as a leader does when elected: its client has seen j1's zxid.)"""
    scene.other.create("j1", {"theirs": True})
    scene.other.compare_and_set("j1", RUNNING, 0)
    assert scene.leader.ids() == ["j1"]
    scene.lose_first_commit()
    (item,) = scene.leader.create_many([("j1", {"n": 1})])
    scene.retried()
    assert isinstance(item, Conflict) and not isinstance(item, NotLeader)
    scene.lose_first_commit()
    with pytest.raises(Conflict):
        scene.leader.create("j1", {"n": 1})
    scene.retried()
    assert scene.other.get("j1").data == RUNNING


def test_a_transaction_that_could_not_commit_owns_no_job(scene: Scene) -> None:
    """j1 was there before our transaction: it was refused as a whole, so j2, created and moved on by
    someone else after it, is not ours either (was: 'may or may not be stored')."""
    scene.other.create("j1", {"theirs": True})
    assert scene.leader.ids() == ["j1"]  # seen by the leader before its write

    def meanwhile() -> None:
        scene.other.create("j2", {"theirs": True})
        scene.other.compare_and_set("j2", RUNNING, 0)

    scene.lose_first_commit(meanwhile=meanwhile)
    first, second = scene.leader.create_many([("j1", {"n": 1}), ("j2", {"n": 2})])
    scene.retried()
    assert isinstance(first, Conflict) and not isinstance(first, NotLeader)
    assert isinstance(second, Conflict) and not isinstance(second, NotLeader)


def test_a_failed_look_up_is_an_unknown_outcome_not_nothing_written(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(paths: list[str]) -> Any:
        raise ConnectionClosedError("ZooKeeper away (test)")

    scene.lose_first_commit()
    monkeypatch.setattr(scene.leader._zk, "get_many", unreachable, raising=False)
    (item,) = scene.leader.create_many([("j1", {})])
    scene.retried()
    assert isinstance(item, StoreUnavailable) and not isinstance(item, NotLeaderError)
    assert "may or may not be stored" in str(item) and "nothing was written" not in str(item)
    scene.lose_first_commit()
    with pytest.raises(StoreUnavailable, match="may or may not be stored"):
        scene.leader.submit("j2", {}, "key-2")
    scene.retried()


def submit_path(store: ZooKeeperStore) -> SubmitPath:
    """The scheduler's submit path on the real store; the state machine takes every job at once."""

    def hand_over(message: JobsStored) -> Future[Any]:
        taken: Future[Any] = Future()
        taken.set_result(None)
        return taken

    path = SubmitPath(store, may_act=lambda: True, leader=lambda: "b:2", hand_over=hand_over,
                      known=lambda job_id: None, view=lambda job_id: {})
    path.start()
    return path


@pytest.mark.parametrize("key", [None, "key-1"])
def test_the_submitter_gets_its_job_not_not_the_leader(scene: Scene, key: str | None) -> None:
    scene.lose_first_commit()
    path = submit_path(scene.leader)
    try:
        view, created = path.submit(SPEC, key).result(30)
    finally:
        path.close()
    scene.retried()
    assert created and view["state"] == "PENDING"
    assert scene.other.ids() == [view["id"]]


def test_the_submitter_of_an_unknown_outcome_gets_an_honest_503(scene: Scene) -> None:
    scene.lose_first_commit(meanwhile=lambda: scene.other.compare_and_set(
        scene.other.ids()[0], {"moved": "on"}, 0))
    path = submit_path(scene.leader)
    try:
        with pytest.raises(UnavailableError, match="may or may not be stored") as answer:
            path.submit(SPEC).result(30)
    finally:
        path.close()
    assert not isinstance(answer.value, NotLeaderError)
    assert answer.value.http_status == 503


def never_answered(store: ZooKeeperStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on ZooKeeper answers none of `store`'s reads (writes still go through)."""
    client = store.client
    monkeypatch.setattr(client, "get_async", lambda *args, **kwargs: client.handler.async_result())


@pytest.mark.parametrize("keyed", [False, True])
def test_the_look_up_gets_what_is_left_of_the_write_s_deadline(
    zk_url: str, monkeypatch: pytest.MonkeyPatch, keyed: bool
) -> None:
    """The write's first attempt takes 1.5 s (a paused process), the retry is refused, the look-up's reads
    get no answer: the whole write is over within its 4 s deadline (was: the look-up alone took another
    4 s and more), so a submit stays within the API's SUBMIT_TIMEOUT."""
    backend = ZooKeeperStoreBackend(zk_url)
    try:
        scene = Scene(backend, monkeypatch, command_deadline=4.0)

        def paused() -> None:
            time.sleep(1.5)
            never_answered(scene.leader, monkeypatch)

        scene.lose_first_commit(meanwhile=paused)
        began = time.monotonic()
        with pytest.raises(StoreUnavailable, match="may or may not be stored"):
            if keyed:
                scene.leader.submit("j1", {"n": 1}, "key-1")
            else:
                scene.leader.create("j1", {"n": 1})
        took = time.monotonic() - began
        scene.retried()
        assert took < 4.0 + 0.5, f"the write took {took:.1f} s"
    finally:
        backend.close_all()


def test_a_look_up_without_read_permission_is_an_unknown_outcome(scene: Scene) -> None:
    """The lost attempt stored j1, then j1's ACL was changed so that we may not read it: NoAuthError in
    the look-up is the honest 503 (was: NoAuthError out of create_many, an API 500)."""
    no_read = [make_acl("world", "anyone", write=True, create=True, delete=True, admin=True)]
    path = f"{scene.other.root}/jobs/j1"
    scene.lose_first_commit(meanwhile=lambda: scene.other.client.set_acls(path, no_read))
    (item,) = scene.leader.create_many([("j1", {"n": 1})])
    scene.retried()
    assert isinstance(item, StoreUnavailable) and not isinstance(item, NotLeaderError)
    assert "may or may not be stored" in str(item) and "NoAuthError" in str(item)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"not json", b"[1]", b'"j1"'])
def test_a_malformed_idempotency_node_is_an_unknown_outcome(scene: Scene, raw: bytes) -> None:
    """Someone else's malformed node holds our key (our attempt was not applied): the look-up cannot
    read it: 503 'may or may not be stored' (was: UnicodeDecodeError, JSONDecodeError or AttributeError
    out of submit, an API 500)."""
    key_path = f"{scene.other.root}/idempotency/{idempotency_key_name('key-1')}"
    scene.lose_first_commit(applied=False, meanwhile=lambda: scene.other.client.create(key_path, raw))
    with pytest.raises(StoreUnavailable, match="may or may not be stored"):
        scene.leader.submit("j1", {"n": 1}, "key-1")
    scene.retried()


def test_any_error_of_the_look_up_is_a_503_at_the_submit_path(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the look-up raises, the submitter gets UnavailableError (503), never that exception."""

    def refused_to_read(paths: list[str]) -> Any:
        raise NoAuthError()

    scene.lose_first_commit(meanwhile=lambda: monkeypatch.setattr(scene.leader._zk, "get_many",
                                                                  refused_to_read))
    path = submit_path(scene.leader)
    try:
        with pytest.raises(UnavailableError, match="may or may not be stored") as answer:
            path.submit(SPEC).result(30)
    finally:
        path.close()
    scene.retried()
    assert not isinstance(answer.value, NotLeaderError)
    assert answer.value.http_status == 503

