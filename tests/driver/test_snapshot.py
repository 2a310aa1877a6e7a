"""The API's snapshot (`mesos_gpu.driver.snapshot`), published after each event as the runtime does: every
page and view equals the live state machine's at that moment, and a snapshot published earlier never
changes afterwards (new jobs are appended in place to lists older snapshots share, bounded by length)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.events import JobsSubmitted, JobSubmitted, KillRequested
from mesos_gpu.core.model import JobState
from mesos_gpu.core.records import new_job_record
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import SchedulerState
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver import snapshot
from mesos_gpu.driver.changes import changed_records, named_jobs
from mesos_gpu.driver.snapshot import Snapshot

SPECS = {tenant: validate_job({"name": "j", "command": "true", "cpus": 1, "mem": 64, "tenant": tenant})
         for tenant in ("a", "b")}
QUERIES = [(states, tenant, offset, limit)
           for states in (None, (JobState.PENDING,), (JobState.KILLED,), (JobState.PENDING, JobState.KILLED))
           for tenant in (None, "a", "b")
           for offset, limit in ((0, 100), (1, 2), (3, 1), (0, 0))]

# One step: submit a batch of jobs of these tenants at these times (a time may go back: a list's middle),
# or kill the job at this index of those submitted so far.
Step = st.one_of(
    st.tuples(st.just("submit"), st.lists(st.tuples(st.sampled_from("ab"), st.integers(-3, 3)),
                                          min_size=1, max_size=4)),
    st.tuples(st.just("kill"), st.integers(0, 50)),
)


def expected(state: SchedulerState) -> list[Any]:
    """Every query's answer from the live state machine: ids and each job's state and wait reason."""
    answers = []
    for states, tenant, offset, limit in QUERIES:
        ids, total = state.joblist.page(states, tenant, offset, limit)
        answers.append(([(i, state.jobs[i].state.value, state.jobs[i].wait_reason) for i in ids], total))
    return answers


def seen(current: Snapshot) -> list[Any]:
    answers = []
    for states, tenant, offset, limit in QUERIES:
        views, total = current.page(states, tenant, offset, limit)
        answers.append(([(v["id"], v["state"], v["wait_reason"]) for v in views], total))
    return answers


@settings(max_examples=60, deadline=None)
@given(st.lists(Step, max_size=25))
def test_every_snapshot_answers_as_the_state_did_when_it_was_published(steps: list[Any]) -> None:
    state = SchedulerState(make_planner())
    current = snapshot.full(state, True)
    published: list[tuple[Snapshot, list[Any]]] = []
    ids: list[str] = []
    now = 1000.0
    for kind, argument in steps:
        now += 10
        if kind == "submit":
            each = []
            for tenant, shift in argument:
                job_id = f"j-{len(ids):03d}"
                ids.append(job_id)
                record = new_job_record(job_id, SPECS[tenant], now + shift)
                each.append(JobSubmitted(record, now, SPECS[tenant]))
            event: Any = each[0] if len(each) == 1 else JobsSubmitted(tuple(each), now)
        else:
            if not ids:
                continue
            event = KillRequested(ids[argument % len(ids)], now)
        named = named_jobs(state, event)
        commands = state.handle(event)
        current = snapshot.following(current, state, True, records=changed_records(event, commands, current),
                                     named=named)
        assert seen(current) == expected(state)
        for job_id in ids:
            view = current.job(job_id)
            assert view is not None and view == {**state.jobs[job_id].to_dict(), "wait_reason": ""}
        published.append((current, expected(state)))
    for earlier, answers in published:
        assert seen(earlier) == answers


def test_a_forgotten_job_leaves_the_snapshot() -> None:
    state = SchedulerState(make_planner())
    current = snapshot.full(state, True)
    for number in range(3):
        event = JobSubmitted(new_job_record(f"j-{number}", SPECS["a"], 1000.0 + number), 1000.0, SPECS["a"])
        current = snapshot.following(current, state, True,
                                     records=changed_records(event, state.handle(event), current))
    kill = KillRequested("j-1", 1010.0)
    records = changed_records(kill, state.handle(kill), current)
    current = snapshot.following(current, state, True, records=records)
    before = current
    state.forget(["j-1"])
    current = snapshot.following(current, state, True, records={}, listed=True)
    assert current.job("j-1") is None and "j-1" not in current
    assert [view["id"] for view in current.all(None, None)] == ["j-0", "j-2"]
    assert [view["id"] for view in before.all(None, None)] == ["j-0", "j-1", "j-2"]   # unchanged
