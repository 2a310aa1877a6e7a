"""Launches Mesos has said nothing of (pure; `SchedulerState` calls `check_launches` on every Tick).

An ACCEPT whose call failed while the subscription stayed up (a reset connection, a timeout, a 5xx from
the master) may never have reached the master: its tasks are unknown to Mesos and no status update will
ever come, so the job would stay STAGING until some later failover. As Marathon's launch timeout and
Aurora's transient-state timeout do, a member still STAGING `launch_check_seconds` after its launch is
asked of the master by explicit reconciliation, and again each period while it stays so. The master
answers a task it knows with its latest state (TASK_STAGING, e.g. during a slow image pull), and one it
does not know with TASK_LOST or TASK_UNKNOWN, `REASON_RECONCILIATION`: a launch that never reached an
agent, placed again without counting a restart (`state.DROPPED_LAUNCH_REASONS`).
(Tasks recovered by a new leader are reconciled at its subscription, with the others.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesos_gpu.core.commands import Reconcile
from mesos_gpu.core.model import TaskState

if TYPE_CHECKING:
    from mesos_gpu.core.state import SchedulerState

__all__ = ["check_launches"]


def check_launches(state: SchedulerState, now: float) -> None:
    """Ask the master about every member launched or last asked about `launch_check_seconds` ago or more
    and still STAGING, in one explicit reconciliation; each is asked again one period later
    while it stays so. (`state._unheard` is in launch order: every deadline is `now` plus the same period,
    so the earliest is first.)"""
    period = state.launch_check_seconds
    unheard = state._unheard
    if period is None:
        unheard.clear()
        return
    asked: list[tuple[str, str | None]] = []
    while unheard and unheard[0][0] <= now:
        task_id = unheard.popleft()[1]
        ref = state.task_index.get(task_id)
        if ref is None:
            continue    # ended (or never ours any more)
        member = state.jobs[ref[0]].members[ref[1]]
        if member.task_id == task_id and member.state is TaskState.STAGING:
            asked.append((task_id, member.agent_id))
    for task_id, _ in asked:
        unheard.append((now + period, task_id))
    if asked and state.connected:   # (disconnected: the next subscription reconciles every task)
        state._actions.append(Reconcile(tuple(asked)))
