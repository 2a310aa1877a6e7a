"""Review 9b, findings 1, 2 and 6 (the runtime): a healthy job stored in the poison job's group-commit batch
is not failed with it; after the "fails even FAILED" fallback a later term keeps leading (one recovery);
a record failing only at recovery is quarantined without a failed submit; the quarantine's store writes
are not made holding the runtime's lock. Each failed on a7406c3."""

from __future__ import annotations

import threading
from typing import Any

from mesos_gpu.core.records import new_job_record
from mesos_gpu.driver.control import WorkerCall
from mesos_gpu.driver.quarantine import skipped
from mesos_gpu.driver.runtime import SchedulerRuntime
from tests.driver.test_take_stored_quarantine import FINE, POISON, poisoned, runtime, start_poisoned  # noqa: F401
from tests.waiting import wait_until


def _leading(made: SchedulerRuntime) -> bool:
    return made.is_leader and made._driver is not None


def test_a_healthy_job_in_the_poison_jobs_batch_is_not_failed(runtime: SchedulerRuntime) -> None:  # noqa: F811
    start_poisoned(runtime, even_failed=False)
    go = threading.Event()
    runtime._post(WorkerCall(lambda _: go.wait(5)))   # the worker busy: the next batch's hand-over waits
    first = runtime.submit_nowait(FINE)               # batch 1 (its writer waits in the hand-over)
    wait_until(lambda: runtime._submits.batches >= 2, 5, "batch 1 written")
    poison = runtime.submit_nowait(POISON)            # these two queue meanwhile: one batch, one JobsStored
    healthy = runtime.submit_nowait(FINE)
    go.set()
    first.result(10)
    poison_id, healthy_id = poison.result(10)[0]["id"], healthy.result(10)[0]["id"]
    store = runtime.store
    wait_until(lambda: store.get(poison_id).data["state"] == "FAILED", 5, "the poison job quarantined")
    wait_until(lambda: _leading(runtime), 5, "leading again")
    assert store.get(healthy_id).data["state"] == "PENDING", store.get(healthy_id).data["message"]
    assert healthy_id in [job["id"] for job in runtime.jobs(state=None)]


def test_a_later_term_after_the_even_failed_fallback_recovers_once_and_leads(
        runtime: SchedulerRuntime) -> None:  # noqa: F811
    terms, _ = start_poisoned(runtime, even_failed=True)
    view, _ = runtime.submit(POISON)
    store = runtime.store
    wait_until(lambda: skipped(store.get(view["id"]).data), 5, "quarantined, skipped")
    wait_until(lambda: _leading(runtime), 5, "leading again")
    before, version = len(terms), store.get(view["id"]).version
    runtime._lost("a ZooKeeper blip")         # any later re-election (this process stays a candidate)
    runtime._elected()
    wait_until(lambda: len(terms) > before and _leading(runtime), 5, "a new term")
    runtime.call_on_worker(lambda _: None).result(5)    # the worker idle: any resign would have happened
    assert len(terms) - before == 1 and _leading(runtime)    # a7406c3: a term per resign, forever
    assert store.get(view["id"]).version == version
    assert runtime.job(view["id"])["state"] == "FAILED"    # from its stored record (not listed)
    assert view["id"] not in [job["id"] for job in runtime.jobs()]


def test_a_record_failing_only_at_recovery_is_quarantined_without_a_failed_submit(
        runtime: SchedulerRuntime) -> None:  # noqa: F811
    store = runtime.store
    store.create_many([("poison-1", new_job_record("poison-1", POISON, 1.0)),
                       ("fine-1", new_job_record("fine-1", FINE, 1.0))])
    terms = poisoned(runtime, even_failed=False)
    runtime.start()     # term 1 fails on it and resigns; term 2 fails again: blame, quarantine
    wait_until(lambda: _leading(runtime), 5, "leading")
    assert store.get("poison-1").data["state"] == "FAILED" and store.get("fine-1").data["state"] == "PENDING"
    # two failed recoveries, one without the suspects (both), one keeping fine-1 in, one keeping
    # poison-1 in, and the term's recovery with it FAILED
    assert len(terms) == 2 + 3 + 1


def test_the_quarantine_writes_are_not_made_holding_the_runtimes_lock(
        runtime: SchedulerRuntime) -> None:  # noqa: F811
    start_poisoned(runtime, even_failed=False)
    store: Any = runtime.store
    write = store.compare_and_set
    free: list[bool] = []

    def checking(*args: Any, **kwargs: Any) -> Any:
        other = threading.Thread(target=lambda: free.append(_try(runtime._lock)))
        other.start()
        other.join(5)
        return write(*args, **kwargs)

    store.compare_and_set = checking
    view, _ = runtime.submit(POISON)
    wait_until(lambda: store.get(view["id"]).data["state"] == "FAILED", 5, "the poison job quarantined")
    wait_until(lambda: _leading(runtime), 5, "leading again")
    assert free and all(free)      # a7406c3: tenant_summaries readers waited behind ZooKeeper writes


def _try(lock: Any) -> bool:
    if lock.acquire(timeout=0.5):
        lock.release()
        return True
    return False
