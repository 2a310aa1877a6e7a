"""One offer cycle of the scheduler's state machine (pure; `SchedulerState.handle` calls `on_offers`).

The jobs ready to place, in priority order, pass their tenants' quotas (`core.tenancyadmit`), become
`GangRequest`s and go to the injected planner with the offers and the share hosts known; each job then
launches where its `Plan` puts it (the next attempt's TaskInfos, built from the templates of
`core.tasktemplates`, or a GPU share through its share host), fails (`InvalidDemand`; `NeverFits` once
that has held for `never_fits_after_seconds`) or waits with its reason. A preemption round follows when
a job waits (`core.preempt`), and every offer is answered (`scheduling.offer_answers`; while a job
waits, with filters that end in step: `core.declinegrid`). Split out of
`core.state`: the functions read and change the `SchedulerState` they are given, as its methods would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mesos_gpu.core.commands import Decline
from mesos_gpu.core.declinegrid import aligned_refuse
from mesos_gpu.core.events import OffersReceived
from mesos_gpu.core.model import JobState, TaskSpec, TaskState, task_id_for
from mesos_gpu.core.placement.outcomes import NEVER_FITS_PREFIX, InvalidDemand, NeverFits, Plan, TaskPlacement
from mesos_gpu.core.profilereclaim import whole_gpus_by_agent
from mesos_gpu.core.records import JobRecord, MemberRecord
from mesos_gpu.core.scheduling import GangRequest, check_plan, offer_answers
from mesos_gpu.core.sharehosts import ShareCycle, check_share_plan
from mesos_gpu.core.taskinfo import Placed
from mesos_gpu.core.tenancy import TenantsConfig
from mesos_gpu.core.tenancyadmit import admit

if TYPE_CHECKING:
    from mesos_gpu.core.state import SchedulerState

__all__ = ["on_offers"]

JsonDict = dict[str, Any]


def on_offers(state: SchedulerState, event: OffersReceived) -> None:
    now = event.now
    jobs = state.jobs
    state.share_hosts.note_running(event.offers)     # hosts the master says run (before any view)
    if state.share_hosts.config() is not None:   # GPU profiles select agents by their attributes
        state.share_hosts.note_offers(event.offers, now, state.task_index,    # + GPUs free (reclaim)
                                      lambda: whole_gpus_by_agent(state))
    if state.preemption is not None:     # freed capacity is planned with its agents' attributes
        state.preemption.note_offers(event.offers)
    ready = [jobs[job_id] for job_id in state._ready_ids(now)]    # in queue order
    config = state.tenancy() if state.tenancy is not None and ready else None
    held = False
    queue = ready   # before admission: the quota-held ones may preempt within their tenant
    if config is not None:
        ready, held = _admit(state, config, ready)
    if not ready or not state.connected:
        if held and state.connected and state.preemption is not None:
            state.preemption.round(state, (), None, event.offers, now, held=queue)
        if event.offers:    # jobs held by their quota: asked again soon (a job may end meanwhile)
            refuse = aligned_refuse(now, state.refuse_seconds_pending) if held else state.refuse_seconds_idle
            state._actions.append(Decline(tuple(str(o["id"]["value"]) for o in event.offers), refuse))
            state.idle_filters = state.idle_filters or not held
        return
    requests = state._gang_requests(ready, now)
    state.share_hosts.sweep(now)
    plan = state.planner(requests, event.offers, state.share_host_views(now))
    planned = check_plan(plan, requests)
    check_share_plan(plan, planned, state.share_hosts)
    infos: dict[str, JsonDict] = {}     # the TaskInfo of every task launched, by placement task id
    shares = ShareCycle(state.share_hosts, event.offers, state.settings, now)
    waiting = held
    for request in requests:
        job = state.jobs[request.job_id]
        outcome = plan.outcomes.get(job.id)
        if isinstance(outcome, Plan):
            _launch(state, job, request, outcome, infos=infos, shares=shares)
        elif isinstance(outcome, InvalidDemand):
            state._set_state(job, JobState.FAILED, now, f"cannot be placed: {outcome.message}")
        elif isinstance(outcome, NeverFits):
            waiting = _never_fits(state, job, outcome, now) or waiting
        else:
            _waits(state, job, outcome.summary if outcome else "not considered in this offer cycle")
            waiting = True
    if waiting and state.preemption is not None:
        state.preemption.round(state, requests, plan, event.offers, now, held=queue if held else ())
    refuse = aligned_refuse(now, state.refuse_seconds_pending) if waiting else state.refuse_seconds_idle
    answers = offer_answers(plan, event.offers, infos, refuse)
    state._actions.extend(answers)
    if answers and not waiting:
        state.idle_filters = True    # the accepts' unused remainders are filtered for long too

def _admit(state: SchedulerState, config: TenantsConfig, ready: list[JobRecord]
           ) -> tuple[list[JobRecord], bool]:
    """The `ready` jobs their tenants' quotas admit now (in order), and whether any was held; each
    held job says why in its wait reason."""
    answer = admit(config, state.tenant_usage(), [state._waiting_of(job) for job in ready])
    if not answer.held:
        return ready, False
    admitted = []
    for job in ready:
        reason = answer.held.get(job.id)
        if reason is None:
            admitted.append(job)
        else:
            _waits(state, job, reason)
    return admitted, True

def _waits(state: SchedulerState, job: JobRecord, reason: str) -> None:
    """The job does not fit now: say why (in memory), and forget an earlier "can never fit"."""
    job.wait_reason = reason
    # (the message may also be a recovered one: `never_fits_since` is not persisted)
    if job.never_fits_since is not None or job.message.startswith(NEVER_FITS_PREFIX):
        job.never_fits_since = None
        job.message = "waiting for offers"
        state._touch(job)

def _never_fits(state: SchedulerState, job: JobRecord, outcome: NeverFits, now: float) -> bool:
    """The job fits nowhere, not even on the empty cluster: say so in its persisted message, and
    fail it once that has held for `never_fits_after_seconds`. Whether it still waits."""
    summary = outcome.summary
    since = job.never_fits_since
    if since is None:
        since = job.never_fits_since = now
    limit = state.never_fits_after_seconds
    # Only a job that never ran is failed: one that did fitted once (its agents may be away for a
    # while, e.g. rebooting or partitioned) and keeps waiting under its restart policy.
    if limit is not None and now - since >= limit and job.attempt < 0:
        job.never_fits_since = None
        state._set_state(job, JobState.FAILED, now, f"{summary} (for {now - since:.0f} s)")
        return False
    job.wait_reason = summary
    if job.message != summary:
        job.message = summary       # persisted: the job says so, not only in memory
        state._touch(job)
    return True

def _launch(
    state: SchedulerState, job: JobRecord, request: GangRequest, plan: Plan, *, infos: dict[str, JsonDict],
    shares: ShareCycle,
) -> None:
    """Start the job's next attempt where `plan` puts its members; their TaskInfos go to `infos`."""
    now = shares.now
    tasks = request.tasks
    lone = plan.only() if len(tasks) == 1 else None
    if lone is not None:
        pairs: Sequence[tuple[TaskSpec, TaskPlacement]] = ((tasks[0], lone),)    # no gang to look through
    else:
        placed = {placement.task_id: placement for launch in plan.launches for placement in launch.tasks}
        pairs = [(task, placed[task.name]) for task in tasks]
    attempt = job.attempt = job.attempt + 1
    check = state.launch_check_seconds
    unheard = state._unheard
    launched = state.launched_task_ids
    task_index = state.task_index
    spec, settings, templates = job.spec, state.settings, state._templates
    for task, where in pairs:
        task_id = task_id_for(task.name, attempt)
        if task_id in launched:
            raise AssertionError(f"task id {task_id} would be launched twice")
        member = job.members[task.key] = MemberRecord(
            task.key, attempt, task_id, TaskState.STAGING, where.agent_id, where.hostname, where.ports
        )
        task_index[task_id] = (job.id, task.key)
        launched.add(task_id)
        if check is not None:
            unheard.append((now + check, task_id))   # asked of the master if it stays unheard of
        if where.share is None:
            resources = where.labels.task_resources(where.request, where.ports)
            placed_at = Placed(where.agent_id, where.hostname, where.ports, resources)
            infos[where.task_id] = templates.get(spec, task, settings).build(spec, task, attempt, placed_at)
        else:   # a GPU share: to its share host (opened now, or known)
            placed_at = Placed(where.agent_id, where.hostname, where.ports, where.to_mesos())
            infos[where.task_id] = shares.launch(spec, task, member, where, placed_at)
    # After the TaskInfos: leaving the queue drops the templates kept on its members (`_index_state`).
    state._set_state(job, JobState.STAGING, now, f"launching attempt {attempt}")
    job.wait_reason = ""
    job.never_fits_since = None
    job.next_attempt_at = None
