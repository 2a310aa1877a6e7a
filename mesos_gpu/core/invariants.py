"""The state machine's invariants (pure): `check_invariants(state, now)`, run after every event in tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesos_gpu.core.joblist import JobList
from mesos_gpu.core.model import JobState

if TYPE_CHECKING:
    from mesos_gpu.core.state import SchedulerState


def check_invariants(state: SchedulerState, now: float) -> list[str]:
    """Every broken invariant of `state`, as sentences (empty when all hold). Used after every test."""
    problems: list[str] = []
    for task_id, (job_id, key) in state.task_index.items():
        job = state.jobs.get(job_id)
        if job is None:
            problems.append(f"task {task_id} indexed for unknown job {job_id}")
            continue
        member = job.members[key]
        if member.task_id != task_id or not member.is_active:
            problems.append(f"task {task_id} indexed but member {job_id}/{key} is {member.state}")
    for job in state.jobs.values():
        for member in job.members.values():
            if member.is_active and state.task_index.get(member.task_id or "") != (job.id, member.key):
                problems.append(f"active member {job.id}/{member.key} is not indexed")
            if member.attempt > job.attempt:
                problems.append(f"member {job.id}/{member.key} has attempt {member.attempt} > {job.attempt}")
        if job.state in (JobState.STAGING, JobState.RUNNING):
            stale = [m.key for m in job.members.values() if m.attempt != job.attempt]
            if stale:
                problems.append(f"job {job.id} is {job.state} with members of older attempts: {stale}")
        if job.state.is_terminal and job.finished_at is None:
            problems.append(f"job {job.id} is {job.state} without finished_at")
    waiting = (JobState.PENDING, JobState.RESTARTING)
    placeable = {job.id for job in state.jobs.values() if job.state in waiting}
    if set(state._placeable) != placeable:
        problems.append(f"placeable index {sorted(state._placeable)} != waiting jobs {sorted(placeable)}")
    problems.extend(_joblist_problems(state))
    timed = {job_id for _, job_id in state._deadlines}
    for job in state.jobs.values():
        if not job.state.is_terminal and job.spec.deadline_seconds is not None and job.id not in timed:
            problems.append(f"job {job.id} has a deadline but is not in the deadline index")
    if state.connected:
        wants = any(state.ready_to_place(job, now) for job in state.jobs.values())
        if wants and state.suppressed:
            problems.append("offers are suppressed while a job waits to be placed")
    return problems


def _joblist_problems(state: SchedulerState) -> list[str]:
    """The job list index against one recomputed from the jobs."""
    index = state.joblist
    expected = JobList.of(
        (job.id, job.submitted_at, job.state, job.spec.tenant) for job in state.jobs.values()
    )
    if index == expected:
        return []
    wrong = sorted(job_id for job_id in state.jobs if index.entry(job_id) != expected.entry(job_id))
    if wrong or len(index) != len(expected):
        return [f"job list index: {len(index)} jobs for {len(expected)}, wrong for {wrong[:10]}"]
    return ["job list index: its ordered lists do not match its entries"]
