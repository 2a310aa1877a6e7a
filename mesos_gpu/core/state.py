"""The scheduler's state machine (pure): events in, commands out; no I/O, no clock, no threads.

Like Dask's worker state machine: `SchedulerState.handle(event)` updates the jobs and returns the list
of commands the runtime must carry out, in order. Every command that changes the world after a state
change comes after the `Persist` of that change, so "persist before acknowledge" and "persist before
launch" hold by construction (DESIGN section 4). Time arrives in each event as `now` (seconds), and
the jitter of restart backoff as a draw in [0, 1].

This module is the entry point: it also gives the events (`mesos_gpu.core.events`: `Subscribed`,
`Disconnected`, `OffersReceived`, `OfferRescinded`, `StatusReceived`, `ExecutorEnded`, `JobSubmitted`,
`JobsSubmitted`, `KillRequested`, `JobsRecovered`, `Tick`), the commands (`mesos_gpu.core.commands`:
`Persist`, `Accept`, `Decline`, `KillTask`, `Suppress`, `Revive`, `Reconcile`, `Acknowledge`,
`ClearRendezvous`) and the job records (`mesos_gpu.core.records`).

Placement is injected as a `Planner` (`mesos_gpu.core.scheduling` defines it and builds the one on
`mesos_gpu.core.placement`): it gets the jobs ready to place (`GangRequest`s), in priority order, the
offers of one OFFERS event and the share hosts known (`share_host_views`: GPU shares run on share hosts,
`mesos_gpu.core.sharehosts`), and returns placement's own `CyclePlan`: each job's `Plan`, or why not
(`WaitReason`: not now; `NeverFits`: not even on the empty cluster; `InvalidDemand`: an error), one
launch per agent, and the offers to decline. A planned job is launched whole; an invalid one fails at
once; one that can never fit says so in its persisted message and fails once that has held for
`never_fits_after_seconds` (an agent may join meanwhile). A failed member restarts the whole gang
(after its backoff): TF addresses change when a member moves, so every member must rendezvous again.
The offer cycle itself (admission, planning, launches, the answers to the offers) is in
`mesos_gpu.core.offercycle`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core import policy
from mesos_gpu.core.commands import (
    Accept,
    Acknowledge,
    ClearRendezvous,
    Command,
    Decline,
    KillTask,
    Persist,
    Reconcile,
    Revive,
    Suppress,
)
from mesos_gpu.core.devicelabels import note_devices
from mesos_gpu.core.events import (
    Disconnected,
    Event,
    ExecutorEnded,
    JobsRecovered,
    JobsSubmitted,
    JobSubmitted,
    KillRequested,
    OfferRescinded,
    OffersReceived,
    StatusReceived,
    Subscribed,
    Tick,
)
from mesos_gpu.core.invariants import check_invariants
from mesos_gpu.core.joblist import JobList
from mesos_gpu.core.launchcheck import check_launches
from mesos_gpu.core.model import JobSpec, JobState, TaskKey, TaskState, task_id_for
from mesos_gpu.core.offercycle import on_offers
from mesos_gpu.core.preempt import Preemption, ended_in_grace, kill_again, stopped_to_requeue
from mesos_gpu.core.profiledrain import drain_overdue
from mesos_gpu.core.profilereclaim import reclaim_kept
from mesos_gpu.core.records import JobRecord, MemberRecord, killed_between_attempts, new_job_record
from mesos_gpu.core.scheduling import GangRequest, Planner
from mesos_gpu.core.sharehosts import ShareHosts, gone_hosts
from mesos_gpu.core.sharing import ShareHostView
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.tasktemplates import TaskInfoTemplates
from mesos_gpu.core.tenancy import TenantsConfig
from mesos_gpu.core.tenancyadmit import TenantSummary, Waiting, summarize
from mesos_gpu.core.tenancyusage import tenant_usage, waiting_of

__all__ = [
    "DROPPED_LAUNCH_REASONS", "Accept", "Acknowledge", "ClearRendezvous", "Command", "Decline",
    "Disconnected", "Event", "ExecutorEnded", "GangRequest", "JobRecord", "JobSubmitted", "JobsRecovered",
    "JobsSubmitted", "KillRequested", "KillTask", "MemberRecord", "OfferRescinded", "OffersReceived",
    "Persist", "Planner", "Reconcile", "Revive", "SchedulerState", "StatusReceived", "Subscribed", "Suppress",
    "Tick", "check_invariants", "new_job_record",
]

JsonDict = dict[str, Any]

# Reasons Mesos gives when a launch never reached an agent: the gang is placed again, not "restarted".
DROPPED_LAUNCH_REASONS = frozenset({"REASON_INVALID_OFFERS", "REASON_RECONCILIATION"})


# ----------------------------------------------------------------------------------------- the machine
@dataclass
class SchedulerState:
    """All jobs and the framework's view of Mesos. Feed it events with `handle`."""

    planner: Planner
    settings: LaunchSettings = field(default_factory=LaunchSettings)
    refuse_seconds_pending: float = 2.0  # decline filter while some job waits for resources
    # A job ready to place for this long without fitting gets the agents it needs held for it, so
    # smaller jobs behind it cannot take what frees up there for ever (None: never).
    reserve_after_seconds: float | None = 300.0
    refuse_seconds_idle: float = 300.0  # decline filter when nothing waits (REVIVE clears it)
    reconcile_retry_seconds: float = 30.0
    # A job placement says can never fit (not even on the empty cluster) fails once that has held this
    # long: an agent that was away may come back meanwhile (None: it waits for ever, saying why).
    never_fits_after_seconds: float | None = 300.0
    # A member still STAGING this long after its launch is asked of the master (explicit reconciliation):
    # its ACCEPT may never have reached it (`mesos_gpu.core.launchcheck`; None: never asked).
    launch_check_seconds: float | None = 60.0
    # The tenants' quotas now (`mesos_gpu.core.tenancy`), asked at every offer cycle: jobs their tenant's
    # quota does not admit (`mesos_gpu.core.tenancyadmit`) are not offered to the planner and say why.
    # None, or a config of None: no quotas (every job is offered, as before tenants existed).
    tenancy: Callable[[], TenantsConfig | None] | None = None
    # Preemption after each offer cycle (`mesos_gpu.core.preempt`; None: never preempt).
    preemption: Preemption | None = None

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    framework_id: str | None = None
    connected: bool = False
    suppressed: bool = False
    # Offers were declined with the long idle filter since the last REVIVE: new work must revive.
    idle_filters: bool = False
    task_index: dict[str, tuple[str, TaskKey]] = field(default_factory=dict)
    launched_task_ids: set[str] = field(default_factory=set)
    reconcile_pending: dict[str, str | None] = field(default_factory=dict)
    last_reconcile_at: float | None = None

    _dirty: dict[str, None] = field(default_factory=dict, repr=False)  # ordered set of job ids
    # Indexes that keep every event O(jobs concerned), not O(all jobs ever): the jobs PENDING or
    # RESTARTING (the only ones that may be placed), and a heap of (deadline, job id).
    # Each placeable job's place in the queue: (-priority, submitted_at, id), highest priority first.
    _placeable: dict[str, tuple[int, float, str]] = field(default_factory=dict, repr=False)
    # Those places in queue order, kept across cycles (`_queue_order`): new ones are merged in when next
    # read; those no longer in `_placeable` (the very tuple) are skipped, and dropped when they pile up.
    _order: list[tuple[int, float, str]] = field(default_factory=list, repr=False)
    _order_added: list[tuple[int, float, str]] = field(default_factory=list, repr=False)
    # The last `GangRequest` of each placeable job (made again when its spec or `reserve` changes).
    _requests: dict[str, GangRequest] = field(default_factory=dict, repr=False)
    # Each placeable job as tenant admission sees it (made again when its spec changes).
    _waiting: dict[str, tuple[JobSpec, Waiting]] = field(default_factory=dict, repr=False)
    _deadlines: list[tuple[float, str]] = field(default_factory=list, repr=False)
    # (when to ask, task id) of each member launched, in launch order (`launchcheck.check_launches`).
    _unheard: deque[tuple[float, str]] = field(default_factory=deque, repr=False)
    # The jobs as `GET /v1/jobs` lists them, by submission per state and tenant (`jobs_page`).
    joblist: JobList = field(default_factory=JobList, repr=False)
    # The share hosts and what each has granted (not persisted: rebuilt from the members' records).
    share_hosts: ShareHosts = field(default_factory=ShareHosts, repr=False)
    _actions: list[Command] = field(default_factory=list, repr=False)
    # The TaskInfo templates of the members launched: what every launch of members alike shares.
    _templates: TaskInfoTemplates = field(default_factory=TaskInfoTemplates, repr=False)

    # ---------------------------------------------------------------------------------------- entry
    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands to carry out, persists first."""
        self._dirty = {}
        self._actions = []
        match event:
            case Subscribed():
                self._on_subscribed(event)
            case Disconnected():
                self.connected = False
            case OffersReceived():
                on_offers(self, event)
            case OfferRescinded():
                pass  # offers are decided at once, never held: nothing to undo
            case StatusReceived():
                self._on_status(event)
            case ExecutorEnded():
                self.share_hosts.executor_ended(event.agent_id, event.executor_id)
            case JobSubmitted():
                self._on_submitted(event)
            case JobsSubmitted():
                for submitted in event.submitted:
                    self._on_submitted(submitted)
            case KillRequested():
                self._on_kill(event)
            case JobsRecovered():
                self._on_recovered(event)
            case Tick():
                self._on_tick(event)
        self._offer_interest(event.now)
        persists: list[Command] = [Persist(job_id, self.jobs[job_id].to_dict()) for job_id in self._dirty]
        return persists + self._actions

    def jobs_page(self, states: Collection[JobState] | None, tenant: str | None, offset: int,
                  limit: int) -> tuple[list[JobRecord], int]:
        """Jobs `offset` to `offset + limit` by (submitted_at, id) among those in `states` of `tenant`
        (None: any), and how many there are in all; O(page), not O(all jobs)."""
        ids, total = self.joblist.page(states, tenant, offset, limit)
        return [self.jobs[job_id] for job_id in ids], total

    def forget(self, job_ids: Collection[str]) -> None:
        """Drop finished jobs whose records were deleted (retention, `mesos_gpu.core.retention`) from the
        jobs and every index; no command follows. ValueError, and nothing dropped, when one is unknown,
        unfinished or has an active member (its status updates must still find it)."""
        jobs = [job for job in map(self.jobs.get, dict.fromkeys(job_ids)) if job is not None]
        done = {job.id for job in jobs if job.state.is_terminal and not job.active_members()}
        kept = sorted(set(job_ids) - done)
        if kept:
            raise ValueError(f"cannot forget jobs that are unknown, unfinished or still active: {kept[:10]}")
        for job in jobs:
            del self.jobs[job.id]
            self.joblist.discard(job.id)
            self._dirty.pop(job.id, None)
            attempts = range(job.attempt + 1)   # every attempt's task ids (a failover knows the last only)
            self.launched_task_ids.difference_update(
                task_id_for(f"{job.id}.{key}", attempt) for key in job.members for attempt in attempts)

    def share_host_views(self, now: float) -> tuple[ShareHostView, ...]:
        """The share hosts as placement sees them now (what each has given, whether it takes more)."""
        return self.share_hosts.views(now)

    def _ready(self, now: float) -> Iterator[JobRecord]:
        """The jobs ready to place now (looked for among the waiting ones only)."""
        jobs = self.jobs
        return (job for job in map(jobs.__getitem__, self._placeable) if job.ready_to_place(now))

    def _ready_ids(self, now: float) -> list[str]:
        """The ids of the jobs ready to place now, in queue order (highest priority, then oldest, first)."""
        jobs, placeable = self.jobs, self._placeable
        return [place[2] for place in self._queue_order()
                if placeable.get(place[2]) is place and jobs[place[2]].ready_to_place(now)]

    def _queue_order(self) -> list[tuple[int, float, str]]:
        """Every place of `_placeable` in order, and stale ones (not the job's place now) among them."""
        order, added = self._order, self._order_added
        if len(order) + len(added) > 2 * len(self._placeable) + 64:    # mostly stale: made again
            order = self._order = sorted(self._placeable.values())
            added.clear()
        elif added:
            order.extend(added)     # sorted runs: the sort merges them in linear time
            order.sort()
            added.clear()
        return order

    # ------------------------------------------------------------------------------------- helpers
    def _touch(self, job: JobRecord) -> None:
        self._dirty[job.id] = None

    def _add_job(self, job: JobRecord, listed: bool = False) -> None:
        self.jobs[job.id] = job
        if not listed:
            self.joblist.add(job.id, job.submitted_at, job.state, job.spec.tenant)
        self._index_members(job)
        self._index_state(job)
        deadline = policy.deadline_at(job.spec, job.submitted_at)
        if deadline is not None and not job.state.is_terminal:
            heapq.heappush(self._deadlines, (deadline, job.id))

    def _index_state(self, job: JobRecord) -> None:
        if job.state is JobState.PENDING or job.state is JobState.RESTARTING:
            place = (-job.spec.priority, job.submitted_at, job.id)
            if self._placeable.get(job.id) != place:    # (an equal place stays the very tuple listed)
                self._placeable[job.id] = place
                self._order_added.append(place)
                if len(self._order_added) > 2 * len(self._placeable) + 64:
                    self._queue_order()     # (not read for long: e.g. no offers) kept in bounds
        else:
            self._placeable.pop(job.id, None)
            request = self._requests.pop(job.id, None)
            if request is not None:     # no longer waiting: its members keep no template
                self._templates.release(request.tasks)
            self._waiting.pop(job.id, None)

    def _set_state(self, job: JobRecord, state: JobState, now: float, message: str | None = None) -> None:
        if job.state is not state:
            if not job.state.can_become(state):
                raise AssertionError(f"job {job.id}: {job.state} cannot become {state}")
            job.state = state
            self._index_state(job)
            self.joblist.set_state(job.id, state)
            if state.is_terminal:
                job.finished_at = now
                job.next_attempt_at = None
        if message is not None:
            job.message = message
        self._touch(job)

    def _kill_active(self, job: JobRecord, keys: Iterable[TaskKey] | None = None) -> None:
        """Kill the job's active members (those in `keys`, in that order; else all, canonical order)."""
        for key in job.members if keys is None else keys:
            member = job.members[key]
            if member.is_active and member.task_id is not None:
                self._actions.append(KillTask(member.task_id, member.agent_id))

    def _index_members(self, job: JobRecord) -> None:
        for member in job.members.values():
            if member.task_id is not None:
                self.launched_task_ids.add(member.task_id)
                if member.is_active:
                    self.task_index[member.task_id] = (job.id, member.key)

    # ---------------------------------------------------------------------------------- handlers
    def _on_subscribed(self, event: Subscribed) -> None:
        self.framework_id = event.framework_id
        self.connected = True
        # What the master holds for us after a (re)subscription is not known here (a failed-over leader may
        # have suppressed, filters outlive the connection): the next interest check sends REVIVE when
        # work waits, SUPPRESS when none does.
        self.suppressed = False
        self.idle_filters = True
        self.share_hosts.resubscribed(event.now)    # their executors may have ended, unheard of
        known = tuple(
            (task_id, self.jobs[job_id].members[key].agent_id)
            for task_id, (job_id, key) in sorted(self.task_index.items())
        )
        if known:
            self._actions.append(Reconcile(known))
        self._actions.append(Reconcile(()))
        self.reconcile_pending = dict(known)
        self.last_reconcile_at = event.now
        # Kills sent while disconnected were dropped by the driver: send them again.
        # (A PENDING job's active members are the left-overs of a gang placed again: killed too.)
        for job in self.jobs.values():
            if job.state.is_terminal or job.kill_requested or job.state is JobState.RESTARTING \
                    or job.state is JobState.PENDING:
                kill_again(self, job)   # a preempted or drained job's kills keep their grace

    def _on_submitted(self, event: JobSubmitted) -> None:
        job = JobRecord.from_dict(event.record, event.spec)
        if job.id in self.jobs:
            return  # a retried submit: the job is already known
        self._add_job(job)

    def _on_recovered(self, event: JobsRecovered) -> None:
        jobs = [JobRecord.from_dict(record) for record in event.records]
        self.joblist.add_many((job.id, job.submitted_at, job.state, job.spec.tenant) for job in jobs)
        for job in jobs:
            self._add_job(job, listed=True)
            for member in job.members.values():
                self.share_hosts.restore(member, self.settings, event.now,   # the hosts of its shares
                                         closing=stopped_to_requeue(job))   # a preemption closed them

    def _on_kill(self, event: KillRequested) -> None:
        job = self.jobs.get(event.job_id)
        if job is None or job.state.is_terminal or job.kill_requested:
            return
        job.kill_requested = True
        if job.active_members():
            job.message = "killing: the job was asked to stop"
            self._touch(job)
            self._kill_active(job)
        else:
            self._set_state(job, JobState.KILLED, event.now, killed_between_attempts(job))

    def _on_tick(self, event: Tick) -> None:
        now = event.now
        self.share_hosts.sweep(now)
        drain_overdue(self, now)   # share tasks past a GPU profile's drain deadline
        reclaim_kept(self, now)    # whole-GPU jobs on GPUs a switch keeps for shares, past it too
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, job_id = heapq.heappop(deadlines)
            job = self.jobs.get(job_id)
            if job is None or job.state.is_terminal:
                continue
            self._set_state(job, JobState.FAILED, now, f"deadline of {job.spec.deadline_seconds} s exceeded")
            self._kill_active(job)
        check_launches(self, now)   # launches Mesos said nothing of (an ACCEPT that may not have arrived)
        if self.preemption is not None:   # after the deadlines: a job failed on this tick preempts nobody
            self.preemption.on_tick(self, now)   # a round when no offer cycle ran one for a while
        if (
            self.connected
            and self.reconcile_pending
            and self.last_reconcile_at is not None
            and now - self.last_reconcile_at >= self.reconcile_retry_seconds
        ):
            self._actions.append(Reconcile(tuple(sorted(self.reconcile_pending.items()))))
            self.last_reconcile_at = now

    def _waiting_of(self, job: JobRecord) -> Waiting:
        """`waiting_of(job)`, kept while its spec stays the same (a cycle may look at 10,000 jobs)."""
        kept = self._waiting.get(job.id)
        if kept is None or kept[0] is not job.spec:
            kept = self._waiting[job.id] = (job.spec, waiting_of(job))
        return kept[1]

    def tenant_usage(self) -> dict[str, int]:
        """Thousandths of a GPU each tenant's running and launching tasks hold now: O(active tasks)."""
        return tenant_usage(self.jobs, self.task_index.values())

    def tenant_summaries(self, now: float) -> list[TenantSummary]:
        """Each tenant's terms, GPUs in use and borrowed, and jobs waiting (`GET /v1/tenants`, `/metrics`):
        every tenant listed, and every other one with GPUs in use or jobs ready to place. Without quotas,
        every tenant is unlisted (the default terms: quota 0, no limit)."""
        config = (self.tenancy() if self.tenancy is not None else None) or TenantsConfig()
        return summarize(config, self.tenant_usage(), [waiting_of(job) for job in self._ready(now)])

    def _gang_requests(self, ready: list[JobRecord], now: float) -> list[GangRequest]:
        """The requests of the `ready` jobs, in that order; a job's request is kept from the last cycle
        while its spec and `reserve` stay the same."""
        patience = self.reserve_after_seconds
        kept = self._requests
        requests = []
        for job in ready:
            reserve = patience is not None and now - job.ready_since >= patience
            request = kept.get(job.id)
            tasks = job.tasks()
            if request is None or request.spec is not job.spec or request.tasks is not tasks:
                self._templates.prepare(job.spec, tasks, self.settings)     # once while it waits
                request = kept[job.id] = GangRequest(job.id, job.spec, tasks, reserve=reserve)
            elif request.reserve is not reserve:
                request = kept[job.id] = GangRequest(job.id, job.spec, tasks, reserve=reserve)
            requests.append(request)
        return requests


    def _on_status(self, event: StatusReceived) -> None:
        status = event.status
        if "uuid" in status:
            self._actions.append(Acknowledge(status))
        task_id = str(status.get("task_id", {}).get("value", ""))
        agent_id = status.get("agent_id", {}).get("value")
        try:
            state = TaskState(str(status.get("state")))
        except ValueError:
            return
        self.reconcile_pending.pop(task_id, None)
        ref = self.task_index.get(task_id)
        if ref is None:
            # Not a task we run now (an old attempt, another framework's leftovers): make sure it stops.
            if not state.is_terminal and state is not TaskState.UNKNOWN and task_id:
                self._actions.append(KillTask(task_id, agent_id))
            return
        job = self.jobs[ref[0]]
        member = job.members[ref[1]]
        member.state = state
        if agent_id:
            member.agent_id = agent_id
        if state.is_terminal or state is TaskState.UNKNOWN or "uuid" in status \
                or status.get("reason") != "REASON_RECONCILIATION":
            # (a reconciliation's answer that the task goes on tells no new reason: the last one stays,
            # so that a later end without a reason is not read as the reconciliation's, a dropped launch)
            member.message = status.get("message", member.message)
            member.reason = status.get("reason", member.reason)
        self._touch(job)
        if state is TaskState.UNKNOWN:
            member.state = TaskState.LOST  # partition-aware "unknown": the task is gone
        self.share_hosts.on_status(member, status, event.now)
        note_devices(member, status)
        if state in (TaskState.STARTING, TaskState.RUNNING):
            member.ever_started = True
            if job.state is JobState.PENDING:   # a left-over of a gang placed again: its kill was lost
                self._actions.append(KillTask(task_id, member.agent_id))
                return
            if state is TaskState.RUNNING:
                self._maybe_running(job, event.now)
            return
        if not member.state.is_terminal:
            return  # KILLING, UNREACHABLE: wait for the terminal state
        del self.task_index[task_id]
        member.exit_code = policy.exit_code_from_message(member.message)
        if member.state is TaskState.FINISHED:
            member.exit_code = 0
        self._on_member_ended(job, member, event)
        if job.spec.roles and not job.active_members():
            self._actions.append(ClearRendezvous(job.id))   # before any relaunch of the gang

    def _maybe_running(self, job: JobRecord, now: float) -> None:
        if job.state is not JobState.STAGING:
            return
        if all(m.state in (TaskState.RUNNING, TaskState.FINISHED) for m in job.members.values()):
            if job.started_at is None:
                job.started_at = now
            self._set_state(job, JobState.RUNNING, now, "running")

    def _on_member_ended(self, job: JobRecord, member: MemberRecord, event: StatusReceived) -> None:
        now = event.now
        if ended_in_grace(self, job, member, now):
            return  # a preempted or drained job's member finished during its grace: the job succeeded
        if job.state.is_terminal:
            return  # clean-up of a finished job
        if job.kill_requested:   # before RESTARTING: a job killed while it waits to restart ends KILLED
            if not job.active_members():
                self._set_state(job, JobState.KILLED, now, "killed on request")
            return
        if job.state is JobState.RESTARTING or job.state is JobState.PENDING:
            return  # clean-up of a gang waiting to restart, or placed again after a dropped launch
        if member.state is TaskState.FINISHED:
            finished = [m.key for m in job.members.values() if m.state is TaskState.FINISHED]
            if policy.job_succeeded(job.spec, finished):
                self._set_state(job, JobState.SUCCEEDED, now, f"succeeded: {member.key} finished")
                active = [m.key for m in job.active_members()]
                self._kill_active(job, policy.members_to_kill_after_success(job.spec, active))
            elif not job.active_members():
                self._set_state(
                    job, JobState.FAILED, now, "every member ended but the success policy was not met"
                )
            return
        assert member.state is not None
        detail = member.message or member.state.value
        gone = gone_hosts(member, job.members.values())
        for agent_id, host_id in gone:     # they take no more shares
            self.share_hosts.executor_ended(agent_id, host_id)
        if not member.ever_started and (member.reason in DROPPED_LAUNCH_REASONS or gone):
            # The launch never reached an agent (stale offer, lost during failover), or shares went to a
            # host whose executor had ended: place it again.
            message = f"{member.key} was not launched ({detail}); placing again"
            self._set_state(job, JobState.PENDING, now, message)
            self._kill_active(job)
            return
        kind = policy.failure_kind(member.state) or policy.FailureKind.LOST
        decision = policy.should_restart(job.spec.restart, member.exit_code, job.restarts, kind)
        if decision:
            delay = policy.backoff_delay(job.spec.restart, job.restarts, event.jitter)
            job.restarts += 1
            job.next_attempt_at = now + delay
            self._set_state(
                job,
                JobState.RESTARTING,
                now,
                f"{member.key} failed ({detail}); {decision.reason}; relaunching in {delay:.1f} s",
            )
        else:
            self._set_state(job, JobState.FAILED, now, f"{member.key} failed ({detail}); {decision.reason}")
        self._kill_active(job)

    def _offer_interest(self, now: float) -> None:
        if not self.connected:
            return
        wants = any(self._ready(now))
        if wants and (self.suppressed or self.idle_filters):
            # REVIVE un-suppresses and clears the long decline filters, so new work is placed at the
            # next offers; while jobs wait, declines use short filters and no REVIVE is needed.
            self._actions.append(Revive())
            self.suppressed = False
            self.idle_filters = False
        elif not wants and not self.suppressed:
            self._actions.append(Suppress())
            self.suppressed = True
