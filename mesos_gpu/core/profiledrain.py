"""Kills at a GPU profile's drain deadline (pure; called from `SchedulerState._on_tick`).

When a profile switch takes GPUs out of the share set, their share hosts take no new shares and their
running shares may finish (`core.placement.shares`); once the profile's `drain_seconds` have passed,
`ShareHosts.overdue` names the share tasks still on them. Each of their jobs is stopped as a preemption
is (`core.preempt`): back in the queue at once (RESTARTING, its restart count untouched: not a failure),
its message says which profile drained it and when, and every active task gets a graceful KILL (SIGTERM,
then SIGKILL after the grace: the preemption grace when preemption is on, else
`DEFAULT_GRACE_SECONDS`). A job already stopped this way (RESTARTING), or being killed on request, is
not stopped again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesos_gpu.core.commands import GracefulKill
from mesos_gpu.core.jobenums import JobState
from mesos_gpu.core.preempt import DEFAULT_GRACE_SECONDS

if TYPE_CHECKING:
    from mesos_gpu.core.state import SchedulerState

__all__ = ["drain_overdue"]


def drain_overdue(state: SchedulerState, now: float) -> list[str]:
    """Stop the jobs whose share tasks are overdue at `now`; the ids of the jobs stopped."""
    overdue = state.share_hosts.overdue(now)
    if not overdue:
        return []
    grace = state.preemption.grace_seconds if state.preemption is not None else DEFAULT_GRACE_SECONDS
    stopped: list[str] = []
    for task_id, _agent, note in overdue:
        found = state.task_index.get(task_id)
        if found is None:
            continue
        job = state.jobs.get(found[0])
        if job is None or job.state.is_terminal or job.state is JobState.RESTARTING or job.kill_requested:
            continue
        job.next_attempt_at = now
        state._set_state(job, JobState.RESTARTING, now, f"{note}; back in the queue once its tasks ended")
        for member in job.members.values():
            if member.is_active and member.task_id is not None:
                state._actions.append(GracefulKill(member.task_id, member.agent_id, grace))
        stopped.append(job.id)
    return stopped
