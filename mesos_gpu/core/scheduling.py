"""The state machine's planner built on `mesos_gpu.core.placement` (pure): job model in, gang outcomes out.

`placement` never imports the job model; this module translates `TaskSpec`s into `TaskDemand`s and the
planner's `Plan`s back into `MemberPlacement`s, and turns every other outcome into a wait reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mesos_gpu.core.model import TaskKey, TaskSpec
from mesos_gpu.core.placement.constraints import parse_constraint
from mesos_gpu.core.placement.demand import JobDemand, TaskDemand
from mesos_gpu.core.placement.offers import AgentSlot, OfferView
from mesos_gpu.core.placement.outcomes import Plan, WaitReason
from mesos_gpu.core.placement.planner import GangPlanner
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.state import GangOutcome, GangRequest, MemberPlacement, Planner

#: How many waiting jobs one offer cycle tries to hold agents for before giving up (one succeeds at most).
MAX_RESERVE_TRIES = 4

#: `SchedulerSettings.cpu_tasks_on_gpu_agents` values and whether CPU-only tasks may use GPU agents.
CPU_TASKS_ON_GPU_AGENTS = {"restricted": False, "fallback": True, "unrestricted": True}


def task_demand(task: TaskSpec) -> TaskDemand:
    """What one member asks of placement; its task id is its name ("<job>.<role>-<index>")."""
    request = task.resources
    return TaskDemand(
        task_id=task.name,
        job_id=task.job_id,
        role=task.role.value,
        index=task.index,
        resources=Resources.of(cpus=request.cpus, mem=request.mem, disk=request.disk, gpus=request.gpus),
        ports=request.ports,
        constraints=tuple(parse_constraint(c.to_list()) for c in task.constraints),
    )


def job_demand(request: GangRequest) -> JobDemand:
    return JobDemand(request.job_id, tuple(task_demand(task) for task in request.tasks))


def outcome_of(request: GangRequest, result: object, held: Sequence[str] = ()) -> GangOutcome:
    if not isinstance(result, Plan):
        summary = str(getattr(result, "summary", "not placed"))
        if held:
            names = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
            summary += f"; holding {names} for it"
        return GangOutcome(request.job_id, None, summary)
    keys = {task.name: task.key for task in request.tasks}
    placements = []
    for launch in result.launches:
        for placed in launch.tasks:
            key: TaskKey = keys[placed.task_id]
            placements.append(
                MemberPlacement(key, launch.agent_id, launch.hostname, launch.offer_ids, placed.ports)
            )
    return GangOutcome(request.job_id, tuple(placements))


def make_planner(
    policy: PlacementPolicy | None = None, catalog: Callable[[], tuple[AgentSlot, ...] | None] | None = None
) -> Planner:
    """A `Planner` for `SchedulerState`: one placement cycle per OFFERS event, jobs in the order given.

    `catalog`, when given, returns every agent with its whole capacity (or None when not known yet):
    a job that fits none of them is told "can never fit: ..." instead of only why it waits now."""
    planner = GangPlanner(policy)
    # A job's demand depends on its spec only: built once and kept while the job waits (a cycle with
    # 10,000 pending jobs would otherwise spend most of its time rebuilding them).
    demands: dict[str, tuple[object, JobDemand]] = {}

    def demand_of(request: GangRequest) -> JobDemand:
        cached = demands.get(request.job_id)
        if cached is not None and cached[0] is request.spec:
            return cached[1]
        demand = job_demand(request)
        demands[request.job_id] = (request.spec, demand)
        return demand

    def plan(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]]) -> list[GangOutcome]:
        agents = catalog() if catalog is not None else None
        cycle = planner.start(OfferView.from_mesos_offers(offers, catalog=agents))
        results: dict[str, object] = {}
        held: dict[str, tuple[str, ...]] = {}
        attempts = 0
        for request in requests:
            demand = demand_of(request)
            result = results[request.job_id] = cycle.place(demand)
            # One job at a time gets agents held (the first in priority order that waits and can fit
            # somewhere), as Volcano's reserve does; a few tries bound the cost of a long queue.
            starving = request.reserve and isinstance(result, WaitReason)
            if starving and not held and attempts < MAX_RESERVE_TRIES:
                attempts += 1
                agents_held = cycle.reserve(demand)
                if agents_held:
                    held[request.job_id] = agents_held
        for job_id in demands.keys() - results.keys():
            del demands[job_id]     # placed, killed or finished: no longer waiting
        return [outcome_of(request, results[request.job_id], held.get(request.job_id, ()))
                for request in requests]

    return plan
