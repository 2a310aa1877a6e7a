"""The scheduler's state machine (pure): events in, commands out; no I/O, no clock, no threads.

Like Dask's worker state machine: `SchedulerState.handle(event)` updates the jobs and returns the list
of commands the runtime must carry out, in order. Every command that changes the world after a state
change comes after the `Persist` of that change, so "persist before acknowledge" and "persist before
launch" hold by construction (DESIGN section 4). Time arrives in each event as `now` (seconds), and
the jitter of restart backoff as a draw in [0, 1].

Events: `Subscribed`, `Disconnected`, `OffersReceived`, `OfferRescinded`, `StatusReceived`,
`JobSubmitted`, `KillRequested`, `JobsRecovered`, `Tick`.
Commands: `Persist`, `Accept`, `Decline`, `KillTask`, `Suppress`, `Revive`, `Reconcile`, `Acknowledge`.

Placement is injected as a `Planner` (see `mesos_gpu.core.scheduling` for the one built on
`mesos_gpu.core.placement`): it gets the jobs ready to place, in priority order, and the offers of one
OFFERS event, and returns for each job either every member's place or the reason it waits. A job is
launched whole or not at all. A failed member restarts the whole gang (after its backoff): TF
addresses change when a member moves, so every member must rendezvous again.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core import policy
from mesos_gpu.core.model import JobSpec, JobState, TaskKey, TaskSpec, TaskState, task_id_for
from mesos_gpu.core.taskinfo import LaunchSettings, Placed, build_task_info
from mesos_gpu.core.validation import validate_job

JsonDict = dict[str, Any]

# Reasons Mesos gives when a launch never reached an agent: the gang is placed again, not "restarted".
DROPPED_LAUNCH_REASONS = frozenset({"REASON_INVALID_OFFERS", "REASON_RECONCILIATION"})


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Subscribed:
    """The driver (re)registered with the master under `framework_id`."""

    framework_id: str
    now: float


@dataclass(frozen=True)
class Disconnected:
    """The driver lost the master; calls are dropped until the next `Subscribed`."""

    now: float


@dataclass(frozen=True)
class OffersReceived:
    """One OFFERS event: Mesos v1 Offer JSON objects."""

    offers: tuple[Mapping[str, Any], ...]
    now: float


@dataclass(frozen=True)
class OfferRescinded:
    offer_id: str
    now: float


@dataclass(frozen=True)
class StatusReceived:
    """A TaskStatus (Mesos JSON). `jitter` is a uniform draw in [0, 1] for a restart's backoff."""

    status: Mapping[str, Any]
    now: float
    jitter: float = 0.5


@dataclass(frozen=True)
class JobSubmitted:
    """A job accepted by the API and already persisted as `record` (see `new_job_record`). `spec`,
    when given, is the record's spec already validated (it is not parsed from the record again)."""

    record: Mapping[str, Any]
    now: float
    spec: JobSpec | None = None


@dataclass(frozen=True)
class JobsSubmitted:
    """Several jobs persisted together (a group commit): the same as each `JobSubmitted` in turn."""

    submitted: tuple[JobSubmitted, ...]
    now: float


@dataclass(frozen=True)
class KillRequested:
    job_id: str
    now: float


@dataclass(frozen=True)
class JobsRecovered:
    """The persisted job records, loaded when this scheduler becomes the leader."""

    records: tuple[Mapping[str, Any], ...]
    now: float


@dataclass(frozen=True)
class Tick:
    """Time passes: deadlines, restart backoffs and reconciliation retries are checked."""

    now: float


Event = (
    Subscribed
    | Disconnected
    | OffersReceived
    | OfferRescinded
    | StatusReceived
    | JobSubmitted
    | JobsSubmitted
    | KillRequested
    | JobsRecovered
    | Tick
)


# -------------------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class Persist:
    """Write the job's record (compare-and-set); nothing after it may run if this fails."""

    job_id: str
    record: JsonDict


@dataclass(frozen=True)
class Accept:
    """One ACCEPT for one agent: its offers and the TaskInfos launched on it."""

    agent_id: str
    offer_ids: tuple[str, ...]
    task_infos: tuple[JsonDict, ...]
    refuse_seconds: float


@dataclass(frozen=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True)
class KillTask:
    task_id: str
    agent_id: str | None


@dataclass(frozen=True)
class Suppress:
    pass


@dataclass(frozen=True)
class Revive:
    pass


@dataclass(frozen=True)
class Reconcile:
    """RECONCILE: `tasks` as (task id, agent id) pairs; empty means implicit reconciliation."""

    tasks: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Acknowledge:
    """ACKNOWLEDGE a status update (only ones with a uuid), after its effect was persisted."""

    status: Mapping[str, Any]


@dataclass(frozen=True)
class ClearRendezvous:
    """Delete the ZooKeeper nodes of a TF job's rendezvous (`tf/<job>`): no member of it is active any
    more, so they are garbage, and a stale member node left by a killed member (its session not yet
    expired) must not give its old address to the members of the next attempt."""

    job_id: str


Command = (
    Persist | Accept | Decline | KillTask | Suppress | Revive | Reconcile | Acknowledge | ClearRendezvous
)


# ------------------------------------------------------------------------------------------- placement
@dataclass(frozen=True)
class GangRequest:
    """A job ready to place: every member, in canonical order. `reserve`: it has waited long enough
    that the agents it needs are held for it when it does not fit (see `reserve_after_seconds`)."""

    job_id: str
    spec: JobSpec
    tasks: tuple[TaskSpec, ...]
    reserve: bool = False


@dataclass(frozen=True)
class MemberPlacement:
    key: TaskKey
    agent_id: str
    hostname: str
    offer_ids: tuple[str, ...]
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class GangOutcome:
    """Every member placed (`placements`), or None and the `reason` the job waits."""

    job_id: str
    placements: tuple[MemberPlacement, ...] | None
    reason: str = ""


Planner = Callable[[Sequence[GangRequest], Sequence[Mapping[str, Any]]], Sequence[GangOutcome]]


# --------------------------------------------------------------------------------------------- records
@dataclass
class MemberRecord:
    """One member's current launch attempt (attempt -1 and no task before its first launch)."""

    key: TaskKey
    attempt: int = -1
    task_id: str | None = None
    state: TaskState | None = None
    agent_id: str | None = None
    hostname: str | None = None
    ports: tuple[int, ...] = ()
    message: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    ever_started: bool = False  # reached TASK_STARTING or TASK_RUNNING in this attempt

    @property
    def is_active(self) -> bool:
        return self.state is not None and not self.state.is_terminal

    def to_dict(self) -> JsonDict:
        return {
            "attempt": self.attempt,
            "task_id": self.task_id,
            "state": None if self.state is None else self.state.value,
            "agent_id": self.agent_id,
            "hostname": self.hostname,
            "ports": list(self.ports),
            "message": self.message,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "ever_started": self.ever_started,
        }

    @classmethod
    def from_dict(cls, key: TaskKey, data: Mapping[str, Any]) -> MemberRecord:
        state = data.get("state")
        return cls(
            key=key,
            attempt=int(data.get("attempt", -1)),
            task_id=data.get("task_id"),
            state=None if state is None else TaskState(state),
            agent_id=data.get("agent_id"),
            hostname=data.get("hostname"),
            ports=tuple(int(p) for p in data.get("ports", ())),
            message=data.get("message"),
            reason=data.get("reason"),
            exit_code=data.get("exit_code"),
            ever_started=bool(data.get("ever_started", False)),
        )


@dataclass
class JobRecord:
    """A job as the scheduler tracks it; `to_dict()` is what the store keeps."""

    id: str
    spec: JobSpec
    state: JobState
    submitted_at: float
    members: dict[TaskKey, MemberRecord]
    attempt: int = -1
    restarts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    message: str = ""
    kill_requested: bool = False
    wait_reason: str = ""  # not persisted: recomputed at every offer cycle
    _tasks: tuple[JobSpec, tuple[TaskSpec, ...]] | None = field(default=None, repr=False, compare=False)

    def tasks(self) -> tuple[TaskSpec, ...]:
        """`spec.tasks(id)`, expanded once per spec (every offer cycle asks for it again)."""
        cached = self._tasks
        if cached is None or cached[0] is not self.spec:
            cached = self._tasks = (self.spec, self.spec.tasks(self.id))
        return cached[1]

    def active_members(self) -> list[MemberRecord]:
        return [member for member in self.members.values() if member.is_active]

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "spec": self.spec.to_dict(),
            "state": self.state.value,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempt": self.attempt,
            "restarts": self.restarts,
            "next_attempt_at": self.next_attempt_at,
            "message": self.message,
            "kill_requested": self.kill_requested,
            "members": {str(key): member.to_dict() for key, member in self.members.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], spec: JobSpec | None = None) -> JobRecord:
        """The record `to_dict` wrote; `spec`, when given, is `data["spec"]` already parsed."""
        if spec is None:
            spec = validate_job(data["spec"])
        stored = data.get("members", {})
        members = {
            key: MemberRecord.from_dict(key, stored.get(str(key), {})) for key in spec.members()
        }
        return cls(
            id=str(data["id"]),
            spec=spec,
            state=JobState(data["state"]),
            submitted_at=float(data["submitted_at"]),
            members=members,
            attempt=int(data.get("attempt", -1)),
            restarts=int(data.get("restarts", 0)),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            next_attempt_at=data.get("next_attempt_at"),
            message=str(data.get("message", "")),
            kill_requested=bool(data.get("kill_requested", False)),
        )


def new_job_record(job_id: str, spec: JobSpec, now: float) -> JsonDict:
    """The record of a freshly accepted job (PENDING), as the API persists it before `JobSubmitted`."""
    members = {key: MemberRecord(key) for key in spec.members()}
    return JobRecord(job_id, spec, JobState.PENDING, now, members, message="waiting for offers").to_dict()


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
    _placeable: dict[str, None] = field(default_factory=dict, repr=False)
    _deadlines: list[tuple[float, str]] = field(default_factory=list, repr=False)
    _actions: list[Command] = field(default_factory=list, repr=False)

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
                self._on_offers(event)
            case OfferRescinded():
                pass  # offers are decided at once, never held: nothing to undo
            case StatusReceived():
                self._on_status(event)
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

    def _ready(self, now: float) -> Iterator[JobRecord]:
        """The jobs ready to place now (looked for among the waiting ones only)."""
        jobs = self.jobs
        return (job for job in map(jobs.__getitem__, self._placeable) if self.ready_to_place(job, now))

    @staticmethod
    def ready_since(job: JobRecord) -> float:
        """When the job became ready to place: its backoff's end for a restart, else its submission."""
        if job.state is JobState.RESTARTING and job.next_attempt_at is not None:
            return job.next_attempt_at
        return job.submitted_at

    def ready_to_place(self, job: JobRecord, now: float) -> bool:
        """Whether the job should be placed at the next offers: waiting, nothing of it still active."""
        if job.kill_requested or any(member.is_active for member in job.members.values()):
            return False
        if job.state is JobState.PENDING:
            return True
        return job.state is JobState.RESTARTING and (job.next_attempt_at or 0.0) <= now

    # ------------------------------------------------------------------------------------- helpers
    def _touch(self, job: JobRecord) -> None:
        self._dirty[job.id] = None

    def _add_job(self, job: JobRecord) -> None:
        self.jobs[job.id] = job
        self._index_members(job)
        self._index_state(job)
        deadline = policy.deadline_at(job.spec, job.submitted_at)
        if deadline is not None and not job.state.is_terminal:
            heapq.heappush(self._deadlines, (deadline, job.id))

    def _index_state(self, job: JobRecord) -> None:
        if job.state is JobState.PENDING or job.state is JobState.RESTARTING:
            self._placeable[job.id] = None
        else:
            self._placeable.pop(job.id, None)

    def _set_state(self, job: JobRecord, state: JobState, now: float, message: str | None = None) -> None:
        if job.state is not state:
            if not job.state.can_become(state):
                raise AssertionError(f"job {job.id}: {job.state} cannot become {state}")
            job.state = state
            self._index_state(job)
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
        self.suppressed = False  # a (re)subscription starts unsuppressed: Mesos offers again
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
        for job in self.jobs.values():
            if job.state.is_terminal or job.kill_requested or job.state is JobState.RESTARTING:
                self._kill_active(job)

    def _on_submitted(self, event: JobSubmitted) -> None:
        job = JobRecord.from_dict(event.record, event.spec)
        if job.id in self.jobs:
            return  # a retried submit: the job is already known
        self._add_job(job)

    def _on_recovered(self, event: JobsRecovered) -> None:
        for record in event.records:
            self._add_job(JobRecord.from_dict(record))

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
            self._set_state(job, JobState.KILLED, event.now, "killed before it ran")

    def _on_tick(self, event: Tick) -> None:
        now = event.now
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, job_id = heapq.heappop(deadlines)
            job = self.jobs.get(job_id)
            if job is None or job.state.is_terminal:
                continue
            self._set_state(job, JobState.FAILED, now, f"deadline of {job.spec.deadline_seconds} s exceeded")
            self._kill_active(job)
        if (
            self.connected
            and self.reconcile_pending
            and self.last_reconcile_at is not None
            and now - self.last_reconcile_at >= self.reconcile_retry_seconds
        ):
            self._actions.append(Reconcile(tuple(sorted(self.reconcile_pending.items()))))
            self.last_reconcile_at = now

    def _on_offers(self, event: OffersReceived) -> None:
        now = event.now
        offers = list(event.offers)
        ready = sorted(
            self._ready(now),
            key=lambda job: (-job.spec.priority, job.submitted_at, job.id),
        )
        if not ready or not self.connected:
            if offers:
                self._actions.append(
                    Decline(tuple(str(o["id"]["value"]) for o in offers), self.refuse_seconds_idle)
                )
                self.idle_filters = True
            return
        patience = self.reserve_after_seconds
        requests = [
            GangRequest(job.id, job.spec, job.tasks(),
                        reserve=patience is not None and now - self.ready_since(job) >= patience)
            for job in ready
        ]
        outcomes = {outcome.job_id: outcome for outcome in self.planner(requests, offers)}
        per_agent: dict[str, tuple[set[str], list[JsonDict]]] = {}
        waiting = False
        for request in requests:
            job = self.jobs[request.job_id]
            outcome = outcomes.get(job.id)
            if outcome is None or outcome.placements is None:
                job.wait_reason = outcome.reason if outcome else "not considered in this offer cycle"
                waiting = True
                continue
            self._launch(job, request, outcome.placements, per_agent, now)
        used: set[str] = set()
        for agent_id, (offer_ids, infos) in per_agent.items():
            used |= offer_ids
            refuse = self.refuse_seconds_pending if waiting else self.refuse_seconds_idle
            self._actions.append(Accept(agent_id, tuple(sorted(offer_ids)), tuple(infos), refuse))
        if per_agent and not waiting:
            self.idle_filters = True  # the accepts' unused remainders are filtered for long too
        unused = tuple(str(o["id"]["value"]) for o in offers if str(o["id"]["value"]) not in used)
        if unused:
            refuse = self.refuse_seconds_pending if waiting else self.refuse_seconds_idle
            self._actions.append(Decline(unused, refuse))
            self.idle_filters = self.idle_filters or not waiting

    def _launch(
        self,
        job: JobRecord,
        request: GangRequest,
        placements: Sequence[MemberPlacement],
        per_agent: dict[str, tuple[set[str], list[JsonDict]]],
        now: float,
    ) -> None:
        placed = {placement.key: placement for placement in placements}
        missing = [task.key for task in request.tasks if task.key not in placed]
        if missing:
            raise AssertionError(f"planner returned a partial gang for {job.id}: missing {missing}")
        job.attempt += 1
        self._set_state(job, JobState.STAGING, now, f"launching attempt {job.attempt}")
        job.wait_reason = ""
        job.next_attempt_at = None
        for task in request.tasks:
            where = placed[task.key]
            task_id = task_id_for(task.name, job.attempt)
            if task_id in self.launched_task_ids:
                raise AssertionError(f"task id {task_id} would be launched twice")
            job.members[task.key] = MemberRecord(
                key=task.key,
                attempt=job.attempt,
                task_id=task_id,
                state=TaskState.STAGING,
                agent_id=where.agent_id,
                hostname=where.hostname,
                ports=where.ports,
            )
            self.task_index[task_id] = (job.id, task.key)
            self.launched_task_ids.add(task_id)
            placed_at = Placed(where.agent_id, where.hostname, where.ports)
            info = build_task_info(job.spec, task, job.attempt, placed_at, self.settings)
            offer_ids, infos = per_agent.setdefault(where.agent_id, (set(), []))
            offer_ids.update(where.offer_ids)
            infos.append(info)

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
        member.message = status.get("message", member.message)
        member.reason = status.get("reason", member.reason)
        self._touch(job)
        if state in (TaskState.STARTING, TaskState.RUNNING):
            member.ever_started = True
            if state is TaskState.RUNNING:
                self._maybe_running(job, event.now)
            return
        if state is TaskState.UNKNOWN:
            member.state = TaskState.LOST  # partition-aware "unknown": the task is gone
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
        if job.state is not JobState.STAGING and job.state is not JobState.PENDING:
            return
        if all(m.state in (TaskState.RUNNING, TaskState.FINISHED) for m in job.members.values()):
            if job.started_at is None:
                job.started_at = now
            self._set_state(job, JobState.RUNNING, now, "running")

    def _on_member_ended(self, job: JobRecord, member: MemberRecord, event: StatusReceived) -> None:
        now = event.now
        if job.state.is_terminal or job.state is JobState.RESTARTING:
            return  # clean-up of a finished job, or of a gang waiting to restart
        if job.kill_requested:
            if not job.active_members():
                self._set_state(job, JobState.KILLED, now, "killed on request")
            return
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
        if not member.ever_started and (member.reason in DROPPED_LAUNCH_REASONS):
            # The launch never reached an agent (stale offer, lost during failover): place it again.
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
    timed = {job_id for _, job_id in state._deadlines}
    for job in state.jobs.values():
        if not job.state.is_terminal and job.spec.deadline_seconds is not None and job.id not in timed:
            problems.append(f"job {job.id} has a deadline but is not in the deadline index")
    if state.connected:
        wants = any(state.ready_to_place(job, now) for job in state.jobs.values())
        if wants and state.suppressed:
            problems.append("offers are suppressed while a job waits to be placed")
    return problems
