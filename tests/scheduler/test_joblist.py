"""The job list index (`mesos_gpu.core.joblist`): table tests, and properties that a page is always the
naive filter + sort + slice, of the index alone and of the state machine's jobs under random events."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesos_gpu.core.joblist import JobList
from mesos_gpu.core.model import JobState
from mesos_gpu.core.state import (
    JobsRecovered,
    JobsSubmitted,
    JobSubmitted,
    KillRequested,
    SchedulerState,
    StatusReceived,
    Tick,
    check_invariants,
)
from tests.scheduler.builders import offer, record, single_job, status, tf_job
from tests.scheduler.test_state import Harness

P, R, S, F, K = JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED
JOBS = [  # id, submitted_at, state, tenant: listed by (submitted_at, id)
    ("e", 5.0, F, "b"),
    ("a", 1.0, P, "a"),
    ("c", 3.0, S, "a"),
    ("b", 3.0, R, "b"),     # same time as "c": the id decides
    ("d", 4.0, P, "b"),
    ("f", 0.5, K, "a"),
]


def naive(jobs: dict[str, tuple[float, JobState, str]], states: Any, tenant: str | None,
          offset: int, limit: int) -> tuple[list[str], int]:
    matching = sorted(
        (submitted_at, job_id) for job_id, (submitted_at, state, of) in jobs.items()
        if (states is None or state in states) and (tenant is None or of == tenant)
    )
    return [job_id for _, job_id in matching[offset : offset + limit]], len(matching)


@pytest.mark.parametrize(
    ("states", "tenant", "offset", "limit", "expected"),
    [
        (None, None, 0, 100, (["f", "a", "b", "c", "d", "e"], 6)),
        (None, None, 2, 2, (["b", "c"], 6)),
        (None, None, 5, 10, (["e"], 6)),
        (None, None, 6, 10, ([], 6)),
        (None, None, 10**9, 10, ([], 6)),
        (None, None, 0, 0, ([], 6)),
        ([P], None, 0, 10, (["a", "d"], 2)),
        ([P, F], None, 1, 10, (["d", "e"], 3)),
        ([P, P, F], None, 0, 10, (["a", "d", "e"], 3)),   # a state named twice counts once
        ([R, S, P], None, 1, 2, (["b", "c"], 4)),
        ([JobState.STAGING], None, 0, 10, ([], 0)),
        ([], None, 0, 10, ([], 0)),
        (None, "a", 0, 10, (["f", "a", "c"], 3)),
        (None, "b", 1, 1, (["d"], 3)),
        ([P], "b", 0, 10, (["d"], 1)),
        ([P, R, F], "b", 1, 1, (["d"], 3)),
        (None, "nobody", 0, 10, ([], 0)),
    ],
)
def test_a_page_is_in_submission_order_filtered_by_states_and_tenant(
    states: Any, tenant: str | None, offset: int, limit: int, expected: tuple[list[str], int]
) -> None:
    index = JobList.of(JOBS)
    assert index.page(states, tenant, offset, limit) == expected
    assert index.count(states, tenant) == expected[1]


def test_a_state_change_moves_the_job_between_states_and_keeps_its_place() -> None:
    index = JobList.of(JOBS)
    index.set_state("a", JobState.STAGING)
    assert index.page([P], None, 0, 10) == (["d"], 1)
    assert index.page([JobState.STAGING], None, 0, 10) == (["a"], 1)
    assert index.page(None, "a", 0, 10) == (["f", "a", "c"], 3)
    index.set_state("a", JobState.STAGING)      # no change: nothing moves
    assert index.entry("a") is not None and index.entry("a").state is JobState.STAGING  # type: ignore[union-attr]
    assert index == JobList.of([(i, t, JobState.STAGING if i == "a" else s, n) for i, t, s, n in JOBS])


def test_removing_and_adding_again() -> None:
    index = JobList.of(JOBS)
    index.discard("b")
    index.discard("b")                          # not indexed: nothing happens
    assert "b" not in index and len(index) == 5
    assert index.page([R], None, 0, 10) == ([], 0)
    assert index.page(None, None, 0, 10) == (["f", "a", "c", "d", "e"], 5)
    index.add("c", 9.0, F, "b")                 # added again: moved to its new place
    assert index.page(None, None, 0, 10) == (["f", "a", "d", "e", "c"], 5)
    assert index.page(None, "a", 0, 10) == (["f", "a"], 2)
    for job_id in ["a", "c", "d", "e", "f"]:
        index.discard(job_id)
    assert index == JobList()                   # no empty lists left behind


def test_adding_many_at_once_is_adding_them_one_by_one() -> None:
    one_by_one = JobList()
    for job in [*JOBS, ("a", 7.0, F, "c")]:
        one_by_one.add(*job)
    at_once = JobList.of(JOBS[:2])
    at_once.add_many([*reversed(JOBS), ("a", 2.0, S, "c"), ("a", 7.0, F, "c")])  # the last "a" wins
    assert at_once == one_by_one
    assert at_once.page(None, None, 0, 10) == (["f", "b", "c", "d", "e", "a"], 6)
    assert at_once.page(None, "c", 0, 10) == (["a"], 1)


def test_a_negative_offset_or_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        JobList().page(None, None, -1, 10)
    with pytest.raises(ValueError):
        JobList().page(None, None, 0, -1)


# ------------------------------------------------------------------------------------- properties
ALL_STATES = list(JobState)
TENANTS = ["a", "b", "c"]
queries = st.tuples(
    st.none() | st.lists(st.sampled_from(ALL_STATES), max_size=4),
    st.none() | st.sampled_from([*TENANTS, "z"]),
    st.integers(0, 30),
    st.integers(0, 12),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 25), st.integers(0, 6), st.sampled_from(ALL_STATES),
                  st.sampled_from(TENANTS)),
        st.tuples(st.just("state"), st.integers(0, 25), st.just(0), st.sampled_from(ALL_STATES), st.just("")),
        st.tuples(st.just("discard"), st.integers(0, 25), st.just(0), st.just(P), st.just("")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations, st.lists(queries, min_size=1, max_size=8))
def test_the_index_pages_as_the_naive_filter_sort_and_slice(ops: list[Any], asked: list[Any]) -> None:
    index = JobList()
    jobs: dict[str, tuple[float, JobState, str]] = {}
    for kind, number, at, state, tenant in ops:
        job_id = f"j{number}"
        if kind == "add":
            index.add(job_id, float(at), state, tenant)
            jobs[job_id] = (float(at), state, tenant)
        elif kind == "state" and job_id in jobs:
            index.set_state(job_id, state)
            jobs[job_id] = (jobs[job_id][0], state, jobs[job_id][2])
        elif kind == "discard":
            index.discard(job_id)
            jobs.pop(job_id, None)
        for states, tenant_, offset, limit in asked:
            assert index.page(states, tenant_, offset, limit) == naive(jobs, states, tenant_, offset, limit)
    assert index == JobList.of((job_id, *entry) for job_id, entry in jobs.items())


@settings(max_examples=300, deadline=None)
@given(operations, st.lists(queries, min_size=1, max_size=8))
def test_state_changes_batched_before_a_read_page_as_the_naive_index(ops: list[Any], asked: list[Any]
                                                                     ) -> None:
    """Many state changes (an offer cycle's launches) noted before any read: the pages after them are
    the naive ones, whatever moved where and back in between."""
    index = JobList()
    jobs: dict[str, tuple[float, JobState, str]] = {}
    for kind, number, at, state, tenant in ops:
        job_id = f"j{number}"
        if kind == "add" and job_id not in jobs:
            index.add(job_id, float(at), state, tenant)
            jobs[job_id] = (float(at), state, tenant)
        elif kind in ("state", "discard") and job_id in jobs:     # a discard here is a second change
            index.set_state(job_id, state)
            jobs[job_id] = (jobs[job_id][0], state, jobs[job_id][2])
    for states, tenant_, offset, limit in asked:
        assert index.page(states, tenant_, offset, limit) == naive(jobs, states, tenant_, offset, limit)
    assert index == JobList.of((job_id, *entry) for job_id, entry in jobs.items())


RESTART = {"policy": "OnFailure", "backoff_limit": 2, "backoff_seconds": 5}
TASK_STATES = ["TASK_RUNNING", "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST"]
events = st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 3), st.sampled_from(TENANTS)),
    st.tuples(st.just("offers"), st.integers(1, 3), st.just("")),
    st.tuples(st.just("status"), st.integers(0, 50), st.sampled_from(TASK_STATES)),
    st.tuples(st.just("kill"), st.integers(0, 20), st.just("")),
    st.tuples(st.just("tick"), st.integers(1, 100), st.just("")),
    st.tuples(st.just("recover"), st.integers(1, 4), st.sampled_from(TENANTS)),
)


def state_naive(state: SchedulerState, states: Any, tenant: str | None, offset: int,
                limit: int) -> tuple[list[str], int]:
    jobs = {job.id: (job.submitted_at, job.state, job.spec.tenant) for job in state.jobs.values()}
    return naive(jobs, states, tenant, offset, limit)


def _apply(h: Harness, kind: str, a: int, b: str, submitted: list[str]) -> None:
    if kind == "submit":
        # Several jobs at the same instant: the id orders them.
        now = h.tick(0.0 if submitted else 1.0)
        batch: list[JobSubmitted] = []
        for _ in range(a):
            job_id = f"j{len(submitted) + len(batch)}"
            spec = (single_job(job_id, tenant=b, restart=RESTART) if len(submitted) % 2
                    else tf_job(job_id, tenant=b, gpus=0))
            batch.append(JobSubmitted(record(job_id, spec, now), now, spec))
        h(JobsSubmitted(tuple(batch), now))
        submitted.extend(s.record["id"] for s in batch)
    elif kind == "offers":
        h.offers(*(offer(f"S{i}", gpus=4) for i in range(a)))
    elif kind == "status" and h.state.task_index:
        active = sorted(h.state.task_index)
        h(StatusReceived(status(active[a % len(active)], b, message="Command exited with status 1"),
                         h.tick(), 0.5))
    elif kind == "kill" and submitted:
        h(KillRequested(submitted[a % len(submitted)], h.tick()))
    elif kind == "tick":
        h(Tick(h.tick(a)))
    elif kind == "recover":
        # Jobs a predecessor stored (a leader recovers them), submitted at any time before now, some ended.
        records = []
        for number in range(a):
            job_id = f"r{len(submitted)}"
            records.append(record(job_id, single_job(job_id, tenant=b), min(float((number * 7) % 5), h.now)))
            if number % 2:
                records[-1].update(state="SUCCEEDED", finished_at=h.now)
            submitted.append(job_id)
        h(JobsRecovered(tuple(records), h.tick()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=1, max_size=30), st.lists(queries, min_size=1, max_size=5))
def test_the_state_machines_pages_are_the_naive_ones_after_any_events(
    steps: list[Any], asked: list[Any]
) -> None:
    h = Harness()           # checks the invariants (the index against a recomputation) after each event
    h.subscribe()
    submitted: list[str] = []
    for kind, a, b in steps:
        _apply(h, kind, a, b, submitted)
        for states, tenant, offset, limit in asked:
            page, total = h.state.jobs_page(states, tenant, offset, limit)
            assert ([job.id for job in page], total) == state_naive(h.state, states, tenant, offset, limit)


def test_the_invariants_see_an_index_out_of_step_with_the_jobs() -> None:
    h = Harness()
    h.subscribe()
    h.submit("one", single_job("one"))
    h.state.joblist.set_state("one", JobState.RUNNING)
    assert any("job list index" in problem for problem in check_invariants(h.state, h.now))
    h.state.joblist.set_state("one", JobState.PENDING)
    assert check_invariants(h.state, h.now) == []
    h.state.joblist.discard("one")
    assert any("job list index" in problem for problem in check_invariants(h.state, h.now))


def test_recovered_jobs_are_listed_in_submission_order() -> None:
    h = Harness()
    records = [record(f"r{i}", single_job(f"r{i}", tenant=TENANTS[i % 3]), float(10 - i)) for i in range(6)]
    records[0]["state"], records[0]["finished_at"] = "SUCCEEDED", 11.0
    h(JobsRecovered(tuple(records), 20.0))
    page, total = h.state.jobs_page(None, None, 0, 3)
    assert ([job.id for job in page], total) == (["r5", "r4", "r3"], 6)
    page, total = h.state.jobs_page([JobState.SUCCEEDED], None, 0, 10)
    assert ([job.id for job in page], total) == (["r0"], 1)
