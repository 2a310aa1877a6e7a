"""One case of the replay in time: the scheduler's state machine (`SchedulerState`, with the product's
planner for one `PlacementPolicy`) driven on simulated time against the simulated master.

A discrete-event loop: job submissions (`JobsSubmitted`, one group per instant), task ends
(`TASK_FINISHED` at launch + the trace's duration), share host exits (`ExecutorEnded`) and the master's
allocation rounds (`OffersReceived`); each instant ends with a `Tick`, as the runtime's ticker sends
them (the machine's time-based work: deadlines, share host sweeps). Commands go to the master, whose
status updates go back to the machine at once. The run ends once every job has launched or failed, or
`HORIZON_SECONDS` after the last submission (jobs still waiting then were never placed).

`StarvationGuard` watches each cycle's plan: the agents held for a job waiting past
`reserve_after_seconds` (Volcano-style reserve, `core.scheduling`), and any launch of a job submitted
after it on one of them while it still waits (a violation).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.commands import Command, Persist
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.events import (
    Event,
    ExecutorEnded,
    JobsSubmitted,
    JobSubmitted,
    OffersReceived,
    StatusReceived,
    Subscribed,
    Tick,
)
from mesos_gpu.core.model import JobSpec
from mesos_gpu.core.placement import AgentSlot, CyclePlan, PlacementPolicy, Plan, WaitReason
from mesos_gpu.core.records import new_job_record
from mesos_gpu.core.scheduling import GangRequest, make_planner
from mesos_gpu.core.sharing import ShareHostView
from mesos_gpu.core.state import SchedulerState
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.tenancy import TenantsConfig
from mesos_gpu.core.validation import validate_job
from mesos_gpu.sim.replay_master import FRAMEWORK_ID, SimMaster, status
from mesos_gpu.sim.trace import TraceTask

#: How long after the last submission the run goes on for jobs still waiting (simulated seconds).
HORIZON_SECONDS = 6 * 3600.0
SETTINGS = SchedulerSettings()
_FINISH, _EXIT, _SUBMIT = 0, 1, 2      # event kinds, in the order they are taken at one instant


@dataclass(frozen=True)
class ReplayJob:
    """A trace task as a one-task job: its id, its submission on simulated time, its spec."""

    job_id: str
    task: TraceTask
    submit: float
    spec: JobSpec

    @property
    def duration(self) -> float:
        assert self.task.duration is not None
        return self.task.duration


def job_spec(task: TraceTask) -> JobSpec:
    """The job the API would accept for `task` (its minimums applied: mem >= 32 MiB, cpus >= 0.01); a GPU
    share (a fraction of one GPU) is `capped`."""
    data: dict[str, Any] = {"name": task.job_id, "command": "true",
                            "cpus": max(0.01, task.cpu_milli / 1000), "mem": max(32, task.memory_mib)}
    if task.is_share:
        data.update(gpus=task.gpu_milli / 1000, isolation="capped")
    else:
        data["gpus"] = task.gpus
    return validate_job(data)


@dataclass
class StarvationGuard:
    """Checks each cycle's plan: no job submitted after one that has agents held for it is launched on
    them while it still waits. "Held" covers the agents held in the cycle itself and those held in the
    last cycle (a hold that moves between cycles would let later jobs take what was freeing up)."""

    order: Mapping[str, int]            # job id -> submission rank
    holds: dict[str, frozenset[str]] = field(default_factory=dict)
    held_jobs: set[str] = field(default_factory=set)
    violations: list[tuple[str, str, str]] = field(default_factory=list)  # (waiting, launched, agent)

    def observe(self, plan: CyclePlan) -> None:
        outcomes = plan.outcomes
        current = {job: frozenset(o.held) for job, o in outcomes.items()
                   if isinstance(o, WaitReason) and o.held}
        holding = {job: agents for job, agents in self.holds.items()
                   if job in outcomes and not isinstance(outcomes[job], Plan)}
        for job, agents in current.items():
            holding[job] = holding.get(job, frozenset()) | agents
        order = self.order
        for launch in plan.accepts if holding else ():
            for job, agents in holding.items():
                if launch.agent_id in agents:
                    self.violations.extend((job, task.job_id, launch.agent_id) for task in launch.tasks
                                           if order[task.job_id] > order[job])
        self.holds = current
        self.held_jobs.update(current)


@dataclass
class CaseRun:
    """The replay of `jobs` under `policy`; `run()` fills `launch`, `failed`, and the counters."""

    nodes: Sequence[AgentSlot]
    jobs: Sequence[ReplayJob]
    policy: PlacementPolicy
    on_decided: Callable[[int], None] | None = None
    # The tenants' quotas, as the scheduler's tenant admission applies them (None: no quotas).
    tenancy: TenantsConfig | None = None

    def __post_init__(self) -> None:
        self.master = SimMaster(self.nodes)
        self.order = {job.job_id: rank for rank, job in enumerate(self.jobs)}
        self.guard = StarvationGuard(self.order)
        catalog = tuple(self.nodes)
        inner = make_planner(self.policy, catalog=lambda: catalog)

        def planner(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
                    share_hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
            plan = inner(requests, offers, share_hosts)
            self.guard.observe(plan)
            self.cycles += 1
            return plan

        self.state = SchedulerState(
            planner, LaunchSettings(share_linger_seconds=SETTINGS.share_linger_seconds),
            reserve_after_seconds=SETTINGS.reserve_after_seconds or None,
            never_fits_after_seconds=SETTINGS.never_fits_after_seconds or None,
            tenancy=None if self.tenancy is None else self._tenancy)
        self.launch: dict[str, float] = {}
        self.launches: dict[str, int] = {}     # launches per job (a dropped launch is placed again)
        self.agent_of: dict[str, int] = {}     # the agent (index into nodes) each job runs on
        self.finished: dict[str, float] = {}   # when the master saw each job's task end
        self.failed: dict[str, str] = {}
        self.cycles = 0
        self.ticks = 0
        self.seconds = 0.0          # wall time of `run`
        self.cpu_seconds = 0.0      # CPU time of `run` (this process)
        self.end = 0.0
        self._events: list[tuple[float, int, int, Any]] = []
        self._seq = 0
        self._waiting: set[str] = set()

    def _tenancy(self) -> TenantsConfig | None:
        return self.tenancy

    # --------------------------------------------------------------------------------------- loop
    def run(self, drain: bool = False) -> CaseRun:
        """Replay until every job has launched or failed (`drain`: until every task has ended and every
        share host has exited too)."""
        started, cpu = time.perf_counter(), time.process_time()
        for job in self.jobs:
            self._push(job.submit, _SUBMIT, job)
        last_submit = max((job.submit for job in self.jobs), default=0.0)
        now = min((job.submit for job in self.jobs), default=0.0)
        self._drive(Subscribed(FRAMEWORK_ID, now), now)
        submits_left = len(self.jobs)
        while submits_left or self._waiting or (drain and self._events):
            upcoming = self._events[0][0] if self._events else math.inf
            round_at = self.master.next_round(now)
            now = min(upcoming, round_at if round_at is not None else math.inf)
            if now == math.inf or now > last_submit + HORIZON_SECONDS:
                break
            if upcoming == now:
                submits_left -= self._instant(now)
            if round_at is not None and round_at <= now:
                offers = self.master.allocate(now)
                if offers:
                    self._drive(OffersReceived(offers, now), now)
        self.end = now if now != math.inf else last_submit
        self.seconds = time.perf_counter() - started
        self.cpu_seconds = time.process_time() - cpu
        return self

    def _push(self, at: float, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, kind, self._seq, payload))

    def _instant(self, now: float) -> int:
        """Everything that happens at `now`, in one go; how many jobs were submitted."""
        events = self._events
        finished: list[Event] = []
        exits: list[Event] = []
        submitted: list[JobSubmitted] = []
        while events and events[0][0] == now:
            _, kind, _, payload = heapq.heappop(events)
            if kind == _FINISH:
                task = self.master.tasks[payload]
                self.finished[task.job_id] = now
                agent_id = self.master.agents[task.agent].slot.agent_id
                executor = self.master.finish(payload, now)
                finished.append(StatusReceived(status(payload, "TASK_FINISHED", agent_id), now))
                if executor is not None:
                    self._push(now + executor.linger, _EXIT, (agent_id, executor.executor_id, now))
            elif kind == _EXIT:
                if self.master.executor_exits(*payload):
                    exits.append(ExecutorEnded(payload[0], payload[1], now))
            else:
                job: ReplayJob = payload
                self._waiting.add(job.job_id)
                submitted.append(JobSubmitted(new_job_record(job.job_id, job.spec, now), now, job.spec))
        for event in (*finished, *exits):
            self._drive(event, now)
        if submitted:
            self._drive(JobsSubmitted(tuple(submitted), now), now)
        self._drive(Tick(now), now)
        self.ticks += 1
        return len(submitted)

    def _drive(self, event: Event, now: float) -> None:
        """Hand `event` to the state machine, its commands to the master, and the master's status
        updates back to the machine, until nothing more happens at `now`."""
        pending: list[Event] = [event]
        while pending:
            commands = self.state.handle(pending.pop(0))
            self._note(commands)
            statuses, started = self.master.carry_out(commands, now)
            for task in started:
                self.launch[task.job_id] = now
                self.launches[task.job_id] = self.launches.get(task.job_id, 0) + 1
                self.agent_of[task.job_id] = task.agent
                self._waiting.discard(task.job_id)
                self._push(now + self.jobs[self.order[task.job_id]].duration, _FINISH, task.task_id)
                if self.on_decided is not None:
                    self.on_decided(1)
            pending.extend(StatusReceived(update, now) for update in statuses)

    def _note(self, commands: Sequence[Command]) -> None:
        """Jobs the machine failed (one that can never fit fails after `never_fits_after_seconds`)."""
        for command in commands:
            if isinstance(command, Persist) and command.record["state"] == "FAILED":
                job_id = command.job_id
                if job_id in self._waiting:
                    self._waiting.discard(job_id)
                    self.failed[job_id] = str(command.record.get("message", ""))
                    if self.on_decided is not None:
                        self.on_decided(1)
