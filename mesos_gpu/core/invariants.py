"""The state machine's invariants (pure): `check_invariants(state, now)`, run after every event in tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesos_gpu.core.joblist import JobList
from mesos_gpu.core.model import JobState
from mesos_gpu.core.sharehosts import SHARE_HOST_PREFIX

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
    listed = {id(place) for place in state._order} | {id(place) for place in state._order_added}
    unlisted = sorted(job_id for job_id, place in state._placeable.items() if id(place) not in listed)
    if unlisted:    # the kept queue order would skip them (`SchedulerState._ready_ids`)
        problems.append(f"waiting jobs missing from the queue order: {unlisted[:10]}")
    problems.extend(_joblist_problems(state))
    problems.extend(_share_problems(state))
    timed = {job_id for _, job_id in state._deadlines}
    for job in state.jobs.values():
        if not job.state.is_terminal and job.spec.deadline_seconds is not None and job.id not in timed:
            problems.append(f"job {job.id} has a deadline but is not in the deadline index")
    if state.connected:
        wants = any(job.ready_to_place(now) for job in state.jobs.values())
        if wants and state.suppressed:
            problems.append("offers are suppressed while a job waits to be placed")
    return problems


def _share_problems(state: SchedulerState) -> list[str]:
    """The share hosts' ledger against the members: no device over its GPU or its memory, one level per
    host, every active share member on its known host and every task a host lists an active member of it."""
    problems: list[str] = []
    for host_id, host in state.share_hosts.items():
        if host.host_id != host_id or not host_id.startswith(SHARE_HOST_PREFIX):
            problems.append(f"share host {host_id} is recorded as {host.host_id}")
        if host.used > 1000:
            problems.append(f"share host {host_id} gives {host.used / 1000} of its GPU")
        if host.device_memory and host.used_memory > host.device_memory:
            problems.append(f"share host {host_id} gives {host.used_memory} MB of {host.device_memory} MB")
        levels = {grant.isolation for grant in host.tasks.values()} | {host.isolation}
        if len(levels) > 1 or not host.isolation.is_share:
            problems.append(f"share host {host_id} mixes isolation levels {sorted(levels)}")
        instances = [grant.mig_index for grant in host.tasks.values() if grant.mig_index is not None]
        if len(instances) != len(set(instances)):
            problems.append(f"share host {host_id} gives a MIG instance twice: {sorted(instances)}")
        if (host.empty_since is not None) == bool(host.tasks):
            problems.append(f"share host {host_id}: {len(host.tasks)} tasks, empty since {host.empty_since}")
        for task_id, grant in host.tasks.items():
            ref = state.task_index.get(task_id)
            share = state.jobs[ref[0]].members[ref[1]].share if ref is not None else None
            if share is None or share.get("host") != host_id or grant.host_id != host_id:
                problems.append(f"share host {host_id} lists {task_id}, not an active share member of it")
    for task_id, (job_id, key) in state.task_index.items():
        member = state.jobs[job_id].members[key] if job_id in state.jobs else None
        if member is None or member.share is None:
            continue
        host_id = str(member.share.get("host"))
        on = state.share_hosts.get(host_id)
        if on is None or task_id not in on.tasks:
            problems.append(f"share member {job_id}/{key} is not on a known share host ({host_id})")
        elif on.agent_id != member.agent_id:
            problems.append(f"share member {job_id}/{key} on {member.agent_id}, its host on {on.agent_id}")
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
