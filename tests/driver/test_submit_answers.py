"""Once a batch's jobs are stored, nothing that fails afterwards answers the whole batch with an error
(issue 17 review): not the leader lookup for the jobs the store's fence refused (ZooKeeper away: they get
"not the leader" naming nobody, a 503), not the view of a stored job (answered from the record written),
not the hand-over to the state machine (the next leader lists the jobs). A client told "error" for a
stored job without an idempotency key would submit it again: a second job."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from mesos_gpu.core.errors import NotLeaderError
from mesos_gpu.core.state import new_job_record
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.control import JobsStored
from mesos_gpu.driver.submits import SubmitPath, _Item
from mesos_gpu.store.base import NotLeader, StoreUnavailable, Submitted
from tests.driver.fakes import Store

NOW = 1_000_000.0
SPEC = validate_job({"name": "j", "command": "true", "cpus": 1, "mem": 64})


class KeyedRefused(Store):
    """The unkeyed jobs' transaction commits; then the fence refuses the keyed write (leadership ended
    between the two, as kazoo's SUSPENDED drops it)."""

    def submit(self, job_id: str, data: Any, idempotency_key: str | None) -> Submitted:
        if idempotency_key is None:   # (the memory store's `create` comes through here)
            return super().submit(job_id, data, None)
        raise NotLeader(None)


def unavailable(*_: Any) -> Any:
    raise StoreUnavailable("ZooKeeper did not answer")


def no_view(job_id: str) -> None:
    return None   # the snapshot does not lead, or lacks the job


def handed(message: JobsStored) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result([])
    return future


def not_taken(message: JobsStored) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(TimeoutError("the state machine did not take the jobs in time"))
    return future


def stored_view(store: Store) -> Any:
    return lambda job_id: dict(store.get(job_id).data, wait_reason="from the view")


@pytest.mark.parametrize(("leader_fails", "view_fails", "hand_over"), [
    (True, False, handed),        # who leads cannot be asked now
    (False, True, handed),        # no leading snapshot holds the stored job's view
    (False, False, not_taken),    # the state machine did not take the stored jobs
    (True, True, not_taken),      # all of it
])
def test_stored_jobs_are_answered_created_and_refused_ones_not_the_leader(
    leader_fails: bool, view_fails: bool, hand_over: Any,
) -> None:
    store = KeyedRefused()
    path = SubmitPath(store, may_act=lambda: True, leader=unavailable if leader_fails else lambda: "b:2",
                      hand_over=hand_over, known=no_view if view_fails else stored_view(store),
                      view=unavailable,   # a job created now is never read back from the store
                      clock=lambda: NOW)
    batch = [_Item(job_id, new_job_record(job_id, SPEC, NOW), SPEC, key)
             for job_id, key in (("plain-1", None), ("keyed-1", "k-1"), ("plain-2", None))]

    answers = path._write(batch)

    for answer, job_id in ((answers[0], "plain-1"), (answers[2], "plain-2")):
        assert isinstance(answer, tuple), f"{job_id} was stored but answered {answer!r}"
        view, created = answer
        assert created and view["id"] == job_id and view["state"] == "PENDING"
        assert view["wait_reason"] == ("" if view_fails else "from the view")
        assert store.get(job_id).data["id"] == job_id
    refused = answers[1]
    assert isinstance(refused, NotLeaderError)
    assert refused.leader_url == (None if leader_fails else "b:2")   # None: the API answers 503


def test_a_batch_refused_before_any_write_names_nobody_when_the_election_cannot_be_asked() -> None:
    store = Store()
    path = SubmitPath(store, may_act=lambda: False, leader=unavailable, hand_over=handed,
                      known=lambda job_id: None, view=stored_view(store), clock=lambda: NOW)
    with pytest.raises(NotLeaderError) as refused:
        path._write([_Item("plain-1", new_job_record("plain-1", SPEC, NOW), SPEC, None)])
    assert refused.value.leader_url is None and store.list() == []
