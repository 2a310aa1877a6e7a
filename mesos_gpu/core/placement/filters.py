"""Feasibility filters (pure): each says why an agent cannot take a task, as a named reason, or None.

They run in the order of `FILTERS`; an agent is counted under its first failing reason.
"""

from __future__ import annotations

from collections.abc import Callable

from mesos_gpu.core.placement import reasons
from mesos_gpu.core.placement.capabilities import share_capable
from mesos_gpu.core.placement.demand import Needs
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.state import AgentState, JobContext
from mesos_gpu.core.resources import ranges_contains, ranges_count

Filter = Callable[[AgentState, Needs, JobContext, PlacementPolicy], "str | None"]


def not_held(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    """An agent held in this cycle for a job that waits for it to free up takes nothing else."""
    return reasons.HELD if agent.held else None


def gpu_agent_reserved(
    agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy
) -> str | None:
    """A CPU-only task may not use a GPU agent unless the operator allows it (the stack also tries
    CPU agents first, so an allowed GPU agent is used only when no CPU agent fits)."""
    if not needs.gpus and agent.is_gpu and not policy.cpu_tasks_on_gpu_agents:
        return reasons.GPU_AGENT_RESERVED
    return None


def healthy_gpus(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    """A GPU task may not use an agent whose attributes mark its GPUs unhealthy."""
    if needs.gpus and agent.unhealthy:
        return reasons.UNHEALTHY_GPUS
    return None


def enough_gpus(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    return reasons.INSUFFICIENT_GPUS if agent.gpus < needs.gpus else None


def constraints_met(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    """Marathon constraints, in the order the job lists them, against the job's placed members."""
    for constraint in needs.constraints:
        field = constraint.field
        if not constraint.allows(agent.value_of(field), job.counts.get(field, {}), job.first.get(field)):
            return constraint.reason
    return None


def enough_cpus(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    return reasons.INSUFFICIENT_CPUS if agent.cpus < needs.cpus else None


def enough_mem(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    return reasons.INSUFFICIENT_MEM if agent.mem < needs.mem else None


def enough_disk(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    return reasons.INSUFFICIENT_DISK if agent.disk < needs.disk else None


def enough_ports(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    """Enough port numbers for the task's count, after any fixed port ranges it asks for."""
    if not needs.ranges:
        return reasons.INSUFFICIENT_PORTS if agent.port_count < needs.ports else None
    fixed = 0
    for name, ranges in needs.ranges:
        if name == "ports":
            if not ranges_contains(agent.ports, ranges):
                return reasons.INSUFFICIENT_PORTS
            fixed += ranges_count(ranges)
    return reasons.INSUFFICIENT_PORTS if agent.port_count - fixed < needs.ports else None


def enough_named(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    """Any other scalar (`fpgas`) or range resource the task names."""
    for name, milli in needs.scalars:
        if agent.scalars.get(name, 0) < milli:
            return reasons.insufficient(name)
    for name, ranges in needs.ranges:
        if name != "ports" and not ranges_contains(agent.ranges.get(name, ()), ranges):
            return reasons.insufficient(name)
    return None


#: Every filter, in order. The first four are answered in bulk by the candidate indexes.
FILTERS: tuple[Filter, ...] = (
    not_held,             # held for a job that waits for it (answered in bulk: held agents leave the index)
    gpu_agent_reserved,   # CPU-only work stays off GPU agents unless the operator allows it
    healthy_gpus,         # GPU work avoids agents whose GPUs are marked unhealthy
    enough_gpus,          # whole GPUs free
    share_capable,        # opening a share host: the agent offers the share's isolation level and memory
    constraints_met,      # Marathon constraints on hostname and attributes
    enough_cpus,
    enough_mem,
    enough_disk,
    enough_ports,         # port numbers for the TF gRPC servers
    enough_named,         # other named scalars and ranges
)
AFTER_GPU_FILTERS: tuple[Filter, ...] = FILTERS[4:]
#: Those of AFTER_GPU_FILTERS a simple demand (`Needs.is_simple`: no constraints, named scalars or fixed
#: ranges) can fail; the others pass it whatever the agent. The stack runs these for the common demand.
SIMPLE_FILTERS: tuple[Filter, ...] = (enough_cpus, enough_mem, enough_disk, enough_ports)


def simple_failure(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    """`SIMPLE_FILTERS` in one call (same reasons, same order): for a simple demand (`Needs.is_simple`:
    no fixed ranges, so ports are a count), where the scans visit tens of thousands of agents a cycle."""
    if agent.cpus < needs.cpus:
        return reasons.INSUFFICIENT_CPUS
    if agent.mem < needs.mem:
        return reasons.INSUFFICIENT_MEM
    if agent.disk < needs.disk:
        return reasons.INSUFFICIENT_DISK
    if agent.port_count < needs.ports:
        return reasons.INSUFFICIENT_PORTS
    return None


#: `SIMPLE_FILTERS` as one filter (see `simple_failure`).
SIMPLE_CHECK: tuple[Filter, ...] = (simple_failure,)


def first_failure(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy,
                  filters: tuple[Filter, ...] = FILTERS) -> str | None:
    """The reason of the first filter `agent` fails for `needs`, or None when it fits."""
    for check in filters:
        reason = check(agent, needs, job, policy)
        if reason is not None:
            return reason
    return None
