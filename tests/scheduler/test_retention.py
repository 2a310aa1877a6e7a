"""Retention of finished jobs (`mesos_gpu.core.retention`, `SchedulerState.forget`): table tests, and
properties of `expired` on random job sets (never an unfinished, active or recently submitted job; the
limits hold after the deletes; oldest first; nothing deleted that no limit asks for)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.model import JobState
from mesos_gpu.core.retention import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_FINISHED,
    Finished,
    RetentionPolicy,
    expired,
    policy_from_env,
)
from mesos_gpu.core.state import KillRequested, Tick, check_invariants
from mesos_gpu.driver.retention import finished_jobs
from tests.scheduler.builders import offer, single_job
from tests.scheduler.test_joblist import _apply, events
from tests.scheduler.test_state import Harness

P, R, S, F, K = JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED
NOW = 10_000.0


def policy(
    age: float | None = None, count: int | None = None, keep: float = 0.0, batch: int = 1000
) -> RetentionPolicy:
    return RetentionPolicy(
        max_age_seconds=age, max_finished=count, keep_after_submit_seconds=keep, batch=batch
    )


# id, state, submitted_at, finished_at, active members
JOBS = [
    Finished("old-ok", S, 100.0, 200.0),
    Finished("old-failed", F, 50.0, 300.0),
    Finished("old-running", R, 10.0, None),          # not finished: never
    Finished("old-killing", K, 20.0, 150.0, True),   # a kill on its way: never
    Finished("mid", K, 5000.0, 5000.0),
    Finished("new", S, 9000.0, 9900.0),
    Finished("fresh", F, 9950.0, 9990.0),            # submitted 50 s ago
    Finished("legacy", F, 400.0, None),              # an old record without finished_at: submitted_at
]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (policy(), []),                                                   # no limit: nothing
        (policy(age=9000.0), ["old-ok", "old-failed", "legacy"]),         # finished before 1000
        (policy(age=100.0), ["old-ok", "old-failed", "legacy", "mid"]),
        (policy(age=100.0, keep=600.0), ["old-ok", "old-failed", "legacy", "mid"]),
        (policy(age=0.0, keep=100.0), ["old-ok", "old-failed", "legacy", "mid", "new"]),  # not "fresh"
        (policy(count=7), []),                                            # 7 finished jobs
        (policy(count=6), ["old-ok"]),                    # "old-killing" is older, counts, and stays
        (policy(count=2), ["old-ok", "old-failed", "legacy", "mid", "new"]),
        (policy(count=0, keep=100.0), ["old-ok", "old-failed", "legacy", "mid", "new"]),  # not "fresh"
        (policy(age=9000.0, count=1, batch=2), ["old-ok", "old-failed"]),  # a batch: the oldest
        (policy(age=9500.0, count=5), ["old-ok", "old-failed", "legacy"]),  # count 2, age 1 more
    ],
)
def test_expired_by_table(rules: RetentionPolicy, expected: list[str]) -> None:
    assert expired(JOBS, rules, NOW) == expected


def test_the_defaults_keep_a_week_and_ten_thousand() -> None:
    rules = RetentionPolicy()
    assert (rules.max_age_seconds, rules.max_finished) == (DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_FINISHED)
    assert rules.max_age_seconds == 7 * 24 * 3600
    assert rules.keep_after_submit_seconds == 3600
    assert "604800 s after they finished" in rules.describe()


@pytest.mark.parametrize(
    ("env", "age", "count"),
    [
        ({}, DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_FINISHED),
        ({"MESOS_GPU_RETENTION_SECONDS": "3600", "MESOS_GPU_RETENTION_MAX_FINISHED": "50"}, 3600.0, 50),
        ({"MESOS_GPU_RETENTION_SECONDS": "0", "MESOS_GPU_RETENTION_MAX_FINISHED": "0"}, None, None),
        ({"MESOS_GPU_RETENTION_SECONDS": " "}, DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_FINISHED),
    ],
)
def test_policy_from_env(env: dict[str, str], age: float | None, count: int | None) -> None:
    rules = policy_from_env(env)
    assert (rules.max_age_seconds, rules.max_finished) == (age, count)


def test_bad_settings_name_each_variable() -> None:
    with pytest.raises(ValidationError) as error:
        policy_from_env({"MESOS_GPU_RETENTION_SECONDS": "-1", "MESOS_GPU_RETENTION_MAX_FINISHED": "many"})
    text = str(error.value)
    assert "MESOS_GPU_RETENTION_SECONDS" in text and "MESOS_GPU_RETENTION_MAX_FINISHED" in text
    assert {e.path for e in error.value.errors} == {"/MESOS_GPU_RETENTION_SECONDS",
                                                    "/MESOS_GPU_RETENTION_MAX_FINISHED"}


@pytest.mark.parametrize("bad", [{"max_age_seconds": -1.0}, {"max_finished": -1}, {"batch": 0},
                                 {"keep_after_submit_seconds": float("inf")}])
def test_a_policy_refuses_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(**bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- properties
times = st.floats(0.0, NOW, allow_nan=False)
jobs_strategy = st.lists(
    st.builds(
        lambda i, state, sub, dur, active: Finished(
            f"j{i}", state, sub, None if dur is None else min(NOW, sub + dur), active),
        st.integers(0, 10_000), st.sampled_from(list(JobState)), times,
        st.none() | st.floats(0.0, NOW, allow_nan=False), st.booleans(),
    ),
    max_size=40, unique_by=lambda job: job.job_id,
)
policies = st.builds(
    RetentionPolicy,
    max_age_seconds=st.none() | st.floats(0.0, NOW, allow_nan=False),
    max_finished=st.none() | st.integers(0, 40),
    keep_after_submit_seconds=st.floats(0.0, NOW, allow_nan=False),
    batch=st.integers(1, 50),
)


def deletable(job: Finished, rules: RetentionPolicy) -> bool:
    # the window's edge as the code computes it (NOW - submitted >= keep can differ in the last bit)
    return job.state.is_terminal and not job.active_members and \
        job.submitted_at <= NOW - rules.keep_after_submit_seconds


@settings(max_examples=400, deadline=None)
@given(jobs_strategy, policies)
def test_expired_deletes_only_finished_idle_jobs_past_their_idempotency_window(
    jobs: list[Finished], rules: RetentionPolicy
) -> None:
    by_id = {job.job_id: job for job in jobs}
    chosen = expired(jobs, rules, NOW)
    assert len(chosen) == len(set(chosen)) <= rules.batch
    assert all(deletable(by_id[job_id], rules) for job_id in chosen)
    orders = [by_id[job_id].order() for job_id in chosen]
    assert orders == sorted(orders)  # oldest first


@settings(max_examples=400, deadline=None)
@given(jobs_strategy, policies)
def test_after_the_deletes_the_limits_hold_and_nothing_more_went(
    jobs: list[Finished], rules: RetentionPolicy
) -> None:
    unbatched = RetentionPolicy(max_age_seconds=rules.max_age_seconds, max_finished=rules.max_finished,
                                keep_after_submit_seconds=rules.keep_after_submit_seconds, batch=10**6)
    chosen = set(expired(jobs, unbatched, NOW))
    left = [job for job in jobs if job.job_id not in chosen and job.state.is_terminal]
    still_deletable = [job for job in left if deletable(job, rules)]
    if rules.max_age_seconds is not None:   # age: every deletable one left is young enough
        assert all(NOW - job.finished <= rules.max_age_seconds for job in still_deletable)
    if rules.max_finished is not None:      # count: within it, or nothing deletable is left
        assert len(left) <= rules.max_finished or not still_deletable
    gone = [job for job in jobs if job.job_id in chosen]
    for job in gone:                        # each one deleted is too old, or one of the surplus oldest
        too_old = rules.max_age_seconds is not None and NOW - job.finished > rules.max_age_seconds
        older_kept = [o for o in still_deletable if o.order() < job.order()]
        assert too_old or (rules.max_finished is not None and not older_kept)
    if rules.max_finished is not None and rules.max_age_seconds is None:  # exactly the surplus
        finished = sum(job.state.is_terminal for job in jobs)
        assert len(chosen) == min(max(0, finished - rules.max_finished),
                                  sum(deletable(job, rules) for job in jobs))
    # the batch takes a prefix of the unbatched answer
    assert expired(jobs, rules, NOW) == expired(jobs, unbatched, NOW)[: rules.batch]


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, policies, st.floats(0.0, 1000.0, allow_nan=False))
def test_a_job_past_the_age_limit_stays_past_it(jobs: list[Finished], rules: RetentionPolicy,
                                                 later: float) -> None:
    unbatched = RetentionPolicy(max_age_seconds=rules.max_age_seconds, max_finished=None,
                                keep_after_submit_seconds=rules.keep_after_submit_seconds, batch=10**6)
    assert set(expired(jobs, unbatched, NOW)) <= set(expired(jobs, unbatched, NOW + later))


# ------------------------------------------------------------------------------ SchedulerState.forget
def test_forget_drops_finished_jobs_from_every_index() -> None:
    h = Harness()
    h.subscribe()
    h.submit("done", single_job("done"))
    h.offers(offer("S1"))
    task = h.job("done").members[next(iter(h.job("done").members))].task_id
    h.update(task, "TASK_RUNNING")
    h.update(task, "TASK_FINISHED")
    h.submit("waiting", single_job("waiting"))
    h.submit("killed", single_job("killed"))
    h(KillRequested("killed", h.tick()))
    assert task in h.state.launched_task_ids
    with pytest.raises(ValueError, match="waiting"):
        h.state.forget(["done", "waiting"])
    assert "done" in h.state.jobs      # nothing dropped
    h.state.forget(["done", "killed", "done"])
    assert set(h.state.jobs) == {"waiting"}
    assert h.state.joblist.count() == 1 and h.state.joblist.ids_in(JobState.SUCCEEDED) == []
    assert task not in h.state.launched_task_ids
    h(KillRequested("done", h.tick()))   # a late request for a forgotten job: nothing happens
    h.update(task, "TASK_FINISHED")      # a late status: acknowledged, nothing else (the harness checks)


def test_forget_refuses_a_finished_job_whose_kill_is_on_its_way() -> None:
    h = Harness()
    h.subscribe()
    h.submit("late", single_job("late", deadline_seconds=5))
    h.offers(offer("S1"))
    h.run_all("late")
    h(Tick(h.tick(10.0)))                 # past its deadline: FAILED, its task being killed
    job = h.job("late")
    assert job.state is JobState.FAILED and job.active_members()
    with pytest.raises(ValueError, match="still active"):
        h.state.forget(["late"])
    h.update(next(iter(job.members.values())).task_id, "TASK_KILLED")
    h.state.forget(["late"])             # the kill arrived: now it may go
    assert "late" not in h.state.jobs
    with pytest.raises(ValueError, match="unknown"):
        h.state.forget(["nobody"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(events, st.tuples(st.just("retain"), st.integers(0, 5), st.just(""))),
                min_size=1, max_size=30))
def test_forgetting_what_retention_picks_keeps_every_invariant_under_any_events(steps: list[Any]) -> None:
    h = Harness()           # checks the invariants after each event
    h.subscribe()
    submitted: list[str] = []
    for kind, a, b in steps:
        if kind != "retain":
            _apply(h, kind, a, b, submitted)
            continue
        rules = RetentionPolicy(max_age_seconds=float(a * 10), max_finished=a, keep_after_submit_seconds=0.0)
        chosen = expired(finished_jobs(h.state), rules, h.now)
        h.state.forget(chosen)
        assert not set(chosen) & set(h.state.jobs)
        assert check_invariants(h.state, h.now) == []
        finished = [job for job in h.state.jobs.values() if job.state.is_terminal]
        idle = [job for job in finished if not job.active_members()]
        assert len(finished) <= a or not idle
