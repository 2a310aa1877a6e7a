"""Placement outcomes (pure): a `Plan`, or why not: `WaitReason` (not now), `NeverFits`, `InvalidDemand`.

As in the Kubernetes coscheduling plugin, "does not fit now", "can never fit" and "error" are distinct.
`AgentLaunch` is a named tuple: built thousands of times per cycle, it must be cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from mesos_gpu.placement.reasons import summarize
from mesos_gpu.resources import Resources


@dataclass(frozen=True)
class TaskPlacement:
    """One task on one agent with its exact resources, ports included (labelled like the offer)."""

    task_id: str
    job_id: str
    role: str
    index: int
    agent_id: str
    hostname: str
    resources: Resources
    ports: tuple[int, ...]


class AgentLaunch(NamedTuple):
    """Everything to launch on one agent: one ACCEPT of all its offers with these tasks."""

    agent_id: str
    hostname: str
    offer_ids: tuple[str, ...]
    tasks: tuple[TaskPlacement, ...]

    @property
    def resources(self) -> Resources:
        """The sum of the tasks' resources (what the ACCEPT uses of the offers)."""
        return Resources.sum(task.resources for task in self.tasks)


@dataclass(frozen=True)
class Plan:
    """Every member of the job placed; one launch per agent used."""

    job_id: str
    launches: tuple[AgentLaunch, ...]
    kind: Literal["plan"] = "plan"

    @property
    def placements(self) -> tuple[TaskPlacement, ...]:
        return tuple(task for launch in self.launches for task in launch.tasks)


@dataclass(frozen=True)
class WaitReason:
    """The job does not fit in the offers at hand; nothing was held. `task_id` is the member that did
    not fit; `counts` give each agent's first failing reason."""

    job_id: str
    task_id: str
    agents: int
    counts: tuple[tuple[str, int], ...]
    kind: Literal["wait"] = "wait"

    @property
    def summary(self) -> str:
        """`0/5 agents fit: 3 insufficient gpus, 2 constraint UNIQUE hostname`."""
        return summarize(0, self.agents, self.counts)


@dataclass(frozen=True)
class NeverFits:
    """The job would not fit even on the whole, empty cluster (the catalog of agents)."""

    job_id: str
    task_id: str
    agents: int
    counts: tuple[tuple[str, int], ...]
    kind: Literal["never"] = "never"

    @property
    def summary(self) -> str:
        return "can never fit: " + summarize(0, self.agents, self.counts)


@dataclass(frozen=True)
class InvalidDemand:
    """The demand itself is wrong (an error, not a wait): duplicate task ids, fractional GPUs, ..."""

    job_id: str
    message: str
    kind: Literal["error"] = "error"

    @property
    def summary(self) -> str:
        return self.message


Outcome = Plan | WaitReason | NeverFits | InvalidDemand


@dataclass(frozen=True)
class CyclePlan:
    """The result of one cycle: each job's outcome, one launch per agent (all jobs merged), and the offer
    ids to decline (agents nothing was placed on)."""

    outcomes: dict[str, Outcome]
    accepts: tuple[AgentLaunch, ...]
    declines: tuple[str, ...]

    def plans(self) -> list[Plan]:
        return [outcome for outcome in self.outcomes.values() if isinstance(outcome, Plan)]

    def waiting(self) -> dict[str, WaitReason | NeverFits | InvalidDemand]:
        return {job_id: o for job_id, o in self.outcomes.items() if not isinstance(o, Plan)}
