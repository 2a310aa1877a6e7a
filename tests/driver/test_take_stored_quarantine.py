"""Review 9, finding 5: stored jobs the state machine fails on deterministically no longer bounce
leadership forever. The first failure resigns, as before (the next leader lists them); when the new term's
recovery fails on them again, they are quarantined: written back FAILED with a message saying why, and the
leader stays. Before (bde103e), every term failed on the same records and resigned again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu.core.events import JobsRecovered, JobsSubmitted
from mesos_gpu.core.state import SchedulerState
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.quarantine import QUARANTINE_AFTER, StoredFailures, quarantined, recover_quarantining
from mesos_gpu.driver.runtime import SchedulerRuntime
from tests.driver.fakes import Store
from tests.driver.test_runtime_review8 import Campaigning, runtime_of
from tests.waiting import wait_until

POISON = validate_job({"name": "poison", "command": "true", "cpus": 1, "mem": 64})
FINE = validate_job({"name": "fine", "command": "true", "cpus": 1, "mem": 64})


def poisoned(runtime: SchedulerRuntime, *, even_failed: bool) -> list[SchedulerState]:
    """Each new term's state machine raises on a job named "poison": when it is submitted, and when it
    is recovered (unless FAILED, or `even_failed`). The states made, one per term."""
    made: list[SchedulerState] = []
    new_state = runtime._new_state

    def with_poison() -> SchedulerState:
        state = new_state()
        handle = state.handle

        def failing(event: Any) -> Any:
            if isinstance(event, JobsSubmitted) and any(s.spec.name == "poison" for s in event.submitted):
                raise RuntimeError("the state machine failed")
            if isinstance(event, JobsRecovered) and any(
                    r["spec"]["name"] == "poison" and (even_failed or r["state"] != "FAILED")
                    for r in event.records):
                raise RuntimeError("the state machine failed on recovery")
            return handle(event)

        state.handle = failing  # type: ignore[method-assign]
        made.append(state)
        return state

    runtime._new_state = with_poison  # type: ignore[method-assign]
    return made


@pytest.fixture
def runtime() -> Iterator[SchedulerRuntime]:
    store = Store()
    store.election = Campaigning()
    made = runtime_of(store)
    yield made
    made.stop()


def start_poisoned(runtime: SchedulerRuntime, even_failed: bool) -> tuple[list[SchedulerState], str]:
    """The runtime started with a poisoned state machine, and a fine job submitted: the states, its id."""
    terms = poisoned(runtime, even_failed=even_failed)
    runtime.start()
    wait_until(lambda: runtime.is_leader and runtime._driver is not None, 5, "leadership")
    fine, created = runtime.submit(FINE)
    assert created
    return terms, fine["id"]


@pytest.mark.parametrize("even_failed", [False, True])
def test_a_job_the_state_machine_always_fails_on_is_quarantined_and_leadership_stays(
        runtime: SchedulerRuntime, even_failed: bool) -> None:
    terms, fine = start_poisoned(runtime, even_failed)
    view, created = runtime.submit(POISON)
    assert created          # stored: answered created all the same (the first failure resigns)
    job_id = view["id"]
    store = runtime.store
    wait_until(lambda: store.get(job_id).data["state"] == "FAILED", 5, "the poison job quarantined")
    wait_until(lambda: runtime.is_leader and runtime._driver is not None, 5, "leading again")
    record = store.get(job_id).data
    assert record["message"].startswith(
        "quarantined: the scheduler's state machine failed on this job 2 times")
    # the first term; a failed recovery, one without the poison job, one with it FAILED (and, should that
    # fail, one without it again)
    assert len(terms) == 1 + 3 + (1 if even_failed else 0)
    listed = {job["id"]: job for job in runtime.jobs()}
    assert [job_id for job_id, job in listed.items() if job["state"] == "PENDING"] == [fine]
    if even_failed:
        assert job_id not in listed     # the state machine fails on it even FAILED: it stays out
    else:
        assert listed[job_id]["state"] == "FAILED" and listed[job_id]["message"] == record["message"]
    later, created = runtime.submit(FINE)      # the leader works on
    assert created and runtime.is_leader
    assert later["id"] in [job["id"] for job in runtime.jobs()]


def test_the_failures_are_counted_per_job_set_and_only_a_set_that_failed_before_is_quarantined() -> None:
    failures = StoredFailures()
    assert failures.to_quarantine({"a", "b"}) == set()        # nothing failed before: resign
    assert failures.failed({"a", "b"}) == 1
    assert failures.failed({"c"}) == 1
    assert failures.to_quarantine({"z"}) == set()
    assert failures.to_quarantine({"a", "b", "z"}) == {"a", "b"} and QUARANTINE_AFTER == 2
    failures.forget({"a"})
    assert failures.suspects({"a", "b", "c"}) == [frozenset({"c"})]
    marked = quarantined({"id": "a", "state": "PENDING", "message": ""}, 2, 5.0)
    assert (marked["state"], marked["finished_at"]) == ("FAILED", 5.0) and "quarantined" in marked["message"]


def test_a_recovery_that_fails_without_the_suspects_too_quarantines_nothing() -> None:
    failures = StoredFailures()
    failures.failed({"a"})
    calls: list[list[str]] = []

    def recover(records: Any) -> None:
        calls.append([record.id for record in records])
        raise RuntimeError("another record is to blame")

    store = Store()
    a, b = store.create_many([(job_id, {"id": job_id, "state": "PENDING"}) for job_id in "ab"])
    with pytest.raises(RuntimeError):
        recover_quarantining(recover, [a, b], failures, store, 5.0)
    assert calls == [["a", "b"], ["b"]]
    assert store.get("a").data["state"] == "PENDING"
