"""The state machine's planner built on `mesos_gpu.core.placement` (pure): job model in, `CyclePlan` out.

`placement` never imports the job model; this module translates `TaskSpec`s into `TaskDemand`s, runs
one placement cycle per OFFERS event, and hands the state machine placement's own result: each job's
`Plan`, `WaitReason`, `NeverFits` or `InvalidDemand`, one launch per agent and the offers to decline.
The seam itself is here too: `GangRequest` (a job to place), `Planner` (what `SchedulerState` is given)
and `check_plan` (what the state machine checks of a plan before it carries anything out).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core.commands import Accept, Decline
from mesos_gpu.core.model import JobSpec, TaskSpec
from mesos_gpu.core.placement.constraints import parse_constraint
from mesos_gpu.core.placement.demand import JobDemand, TaskDemand
from mesos_gpu.core.placement.offers import AgentSlot, OfferView
from mesos_gpu.core.placement.outcomes import CyclePlan, Plan, WaitReason
from mesos_gpu.core.placement.planner import GangPlanner, PlacementCycle
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import ShareHostView, ShareNeed, milli

#: How many waiting jobs one offer cycle tries to hold agents for before giving up (one succeeds at most).
MAX_RESERVE_TRIES = 4

#: `SchedulerSettings.cpu_tasks_on_gpu_agents` values and whether CPU-only tasks may use GPU agents.
CPU_TASKS_ON_GPU_AGENTS = {"restricted": False, "fallback": True, "unrestricted": True}


@dataclass(frozen=True)
class GangRequest:
    """A job ready to place: every member, in canonical order. `reserve`: it has waited long enough
    that the agents it needs are held for it when it does not fit (see `reserve_after_seconds`)."""

    job_id: str
    spec: JobSpec
    tasks: tuple[TaskSpec, ...]
    reserve: bool = False

    @functools.cached_property
    def demand(self) -> JobDemand:
        """What placement is asked (`job_demand`), worked out once: the state machine keeps a waiting job's
        request from cycle to cycle (a cycle with 10,000 pending jobs would otherwise spend most of its
        time rebuilding them)."""
        return job_demand(self)


#: What the state machine is given: places the requests (highest priority first) on one OFFERS event's
#: offers and the scheduler's share hosts, and answers placement's own `CyclePlan`, which covers every
#: offer (accepted or declined).
Planner = Callable[[Sequence[GangRequest], Sequence[Mapping[str, Any]], Sequence[ShareHostView]], CyclePlan]


def task_demand(task: TaskSpec) -> TaskDemand:
    """What one member asks of placement; its task id is its name ("<job>.<role>-<index>"). A GPU share
    becomes a `ShareNeed` (its resources then have no gpus: the share host holds the whole GPU)."""
    request = task.resources
    share = None
    if request.is_share:
        share = ShareNeed(task.isolation, milli(request.gpus), milli(request.gpus_min or request.gpus),
                          request.gpu_memory or 0)
    return TaskDemand(
        task_id=task.name,
        job_id=task.job_id,
        role=task.role.value,
        index=task.index,
        resources=_request_resources(request.cpus, request.mem, request.disk, request.whole_gpus),
        ports=request.ports,
        constraints=tuple(parse_constraint(c.to_list()) for c in task.constraints),
        share=share,
    )


def _request_resources(cpus: float, mem: float, disk: float, gpus: int) -> Resources:
    """`Resources.of(cpus=cpus, mem=mem, disk=disk, gpus=gpus)`, one object per request shape validation
    makes (many jobs ask alike: what is worked out of a request, its hash and TaskInfo entries, is then
    kept once)."""
    if type(cpus) is not float or type(mem) is not float or type(disk) is not float or type(gpus) is not int:
        return Resources.of(cpus=cpus, mem=mem, disk=disk, gpus=gpus)    # (a request validation did not make)
    return _shared_request(cpus, mem, disk, gpus)


@functools.lru_cache(maxsize=4096)
def _shared_request(cpus: float, mem: float, disk: float, gpus: int) -> Resources:
    return Resources.of(cpus=cpus, mem=mem, disk=disk, gpus=gpus)


def job_demand(request: GangRequest) -> JobDemand:
    return JobDemand(request.job_id, tuple(task_demand(task) for task in request.tasks))


def make_planner(
    policy: PlacementPolicy | None = None, catalog: Callable[[], tuple[AgentSlot, ...] | None] | None = None
) -> Planner:
    """A `Planner` for `SchedulerState`: one placement cycle per OFFERS event, jobs in the order given.

    `catalog`, when given, returns every agent with its whole capacity (or None when not known yet):
    a job that fits none of them is told "can never fit: ..." instead of only why it waits now.
    With `policy.backfill` False (strict FIFO), once a job waits (`WaitReason`) no later job is placed in
    the cycle: each is told it waits behind that one (`behind`). A job that can never fit, or is
    invalid, blocks nothing (nothing that frees up would let it run)."""
    planner = GangPlanner(policy)
    backfill = planner.policy.backfill
    # The job that had agents held in the last cycle, and those agents: held for it again while it waits,
    # as Volcano's reservation locks its nodes until the job runs. Chosen afresh each cycle, they would
    # follow the offers of the moment, and later jobs would take what had been freeing up for it.
    kept: dict[str, tuple[str, ...]] = {}

    def plan(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
             share_hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
        agents = catalog() if catalog is not None else None
        cycle = planner.start(OfferView.from_mesos_offers(offers, catalog=agents), share_hosts)
        held = False
        attempts = 0
        holder: tuple[str, tuple[str, ...]] | None = None
        blocker: str | None = None      # strict FIFO: the first job that waits; the rest wait behind it
        for request in requests:
            demand = request.demand     # (kept on the request while the job waits)
            if blocker is not None:
                cycle.outcomes[request.job_id] = behind(demand, blocker, len(cycle.view.slots))
                continue
            outcome = cycle.place(demand)
            # One job at a time gets agents held (the first in priority order that waits and can fit
            # somewhere), as Volcano's reserve does; a few tries bound the cost of a long queue. Its
            # WaitReason in the cycle's outcomes names the agents held.
            # (Agents where it would fit only on GPUs a profile keeps for shares are not held for it:
            # `PlacementCycle.reserve` plans without those GPUs.)
            starving = request.reserve and isinstance(outcome, WaitReason)
            if starving and not held and attempts < MAX_RESERVE_TRIES:
                attempts += 1
                taken = _hold_again(cycle, demand, kept.get(request.job_id), agents)
                if not taken:
                    taken = cycle.reserve(demand)
                held = bool(taken)
                if held:
                    holder = (request.job_id, taken)
            if not backfill and isinstance(outcome, WaitReason):
                blocker = request.job_id
        kept.clear()
        if holder is not None:
            kept[holder[0]] = holder[1]
        return cycle.finish()

    return plan


def _hold_again(cycle: PlacementCycle, demand: JobDemand, agent_ids: tuple[str, ...] | None,
                agents: tuple[AgentSlot, ...] | None) -> tuple[str, ...]:
    """Hold `agent_ids` (held for the job in the last cycle) for it again, when all are still in the
    catalog and, should the GPU profile in force keep GPUs for shares on one of them (offered in this
    cycle or not), the job still fits on them without those GPUs (`PlacementCycle.reserve` among those
    agents only: a profile switched since, e.g. night -> day, may keep GPUs there now); the job's
    `WaitReason` names them. The agents held (none: choose afresh)."""
    if not agent_ids or agents is None:
        return ()
    known = {slot.agent_id: slot for slot in agents}
    if any(agent_id not in known for agent_id in agent_ids):
        return ()
    slots = tuple(known[agent_id] for agent_id in agent_ids)
    if _keeps_gpus_on(cycle, slots):
        return cycle.reserve(demand, among=slots)    # on the held agents only, their kept GPUs left out
    job_id = demand.job_id
    ledger = cycle.ledger
    for agent_id in agent_ids:
        if agent_id in ledger.by_id:
            ledger.hold(agent_id)
    outcome = cycle.outcomes.get(job_id)
    if isinstance(outcome, WaitReason):
        cycle.outcomes[job_id] = outcome._replace(held=agent_ids)
    return agent_ids


def _keeps_gpus_on(cycle: PlacementCycle, slots: Sequence[AgentSlot]) -> bool:
    """Whether the GPU profile in force keeps GPUs for share hosts on one of the catalog's `slots`."""
    shares = cycle.shares.ledger
    return any((group := shares.group_of(slot.agent_id, slot.attributes)) is not None
               and bool(group.share_gpus) for slot in slots)


def behind(demand: JobDemand, blocker: str, agents: int) -> WaitReason:
    """Why `demand` waits under strict FIFO (`PlacementPolicy.backfill` False): job `blocker`, before it in
    priority order, waits, so no job after it is placed in this cycle (every offered agent counts as
    taken by the job waiting ahead, as an agent held for a waiting job does)."""
    return WaitReason(demand.job_id, demand.members[0].task_id, agents,
                      ((f"behind waiting job {blocker} (no backfill)", agents),))


def check_plan(plan: CyclePlan, requests: Sequence[GangRequest]) -> list[GangRequest]:
    """Before anything changes: every `Plan` places exactly its job's members, and every task launched
    belongs to one (a planner that breaks this is a bug: nothing of its plan is carried out). The
    requests planned, in their order."""
    planned: set[str] = set()
    chosen: list[GangRequest] = []
    outcomes = plan.outcomes
    for request in requests:
        outcome = outcomes.get(request.job_id)
        if not isinstance(outcome, Plan):
            continue
        chosen.append(request)
        tasks = request.tasks
        lone = outcome.only() if len(tasks) == 1 else None
        if lone is not None and lone.task_id == tasks[0].name:
            planned.add(tasks[0].name)      # a single task placed: the common case, checked at once
            continue
        ids = {placement.task_id for placement in outcome.placements}
        missing = [task.key for task in tasks if task.name not in ids]
        if missing:
            raise AssertionError(f"a partial gang planned for {request.job_id}: missing {missing}")
        stray = ids - {task.name for task in tasks}
        if stray:
            raise AssertionError(f"the plan of {request.job_id} places tasks of no member: {sorted(stray)}")
        planned |= ids
    if planned.issuperset([task.task_id for launch in plan.accepts for task in launch.tasks]):
        return chosen
    for launch in plan.accepts:
        stray_tasks = [task.task_id for task in launch.tasks if task.task_id not in planned]
        if stray_tasks:
            raise AssertionError(
                f"the launch on {launch.agent_id} has tasks of no planned job: {stray_tasks}"
            )
    return chosen


def offer_answers(plan: CyclePlan, offers: Sequence[Mapping[str, Any]], infos: Mapping[str, dict[str, Any]],
                  refuse_seconds: float) -> list[Accept | Decline]:
    """One ACCEPT per agent of the plan, with the TaskInfos (`infos`, by task id) of its tasks; the
    other offers declined in one DECLINE (any the planner did not name too). Both carry the filter
    `refuse_seconds`."""
    answers: list[Accept | Decline] = []
    named = set(plan.declines)
    for launch in plan.accepts:
        named.update(launch.offer_ids)
        task_infos = tuple(infos[task.task_id] for task in launch.tasks)
        answers.append(Accept(launch.agent_id, launch.offer_ids, task_infos, refuse_seconds))
    declines = plan.declines + tuple(
        offer_id for offer in offers if (offer_id := str(offer["id"]["value"])) not in named
    )
    if declines:
        answers.append(Decline(declines, refuse_seconds))
    return answers
