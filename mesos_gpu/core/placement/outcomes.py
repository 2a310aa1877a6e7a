"""Placement outcomes (pure): a `Plan`, or why not: `WaitReason` (not now), `NeverFits`, `InvalidDemand`.

As in the Kubernetes coscheduling plugin, "does not fit now", "can never fit" and "error" are distinct.
They are named tuples: one cycle builds thousands of them, so they must be cheap (a frozen dataclass
costs five times as much to build). The `kind` field keeps outcomes of different classes unequal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from mesos_gpu.core.placement.offers import OfferLabels
from mesos_gpu.core.placement.reasons import gang_text, summarize
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import ShareGrant

_UNRESERVED = OfferLabels()


class TaskPlacement(NamedTuple):
    """One task on one agent: its ports, and its exact resources (ports included, labelled like the
    offer) as `resources`, or as the Mesos JSON a TaskInfo carries (`to_mesos()`), built from `request`
    and the offer's `labels` only when asked for. `share`: for a GPU share, the host and what it grants
    (new hosts have provisional ids "new:<agent_id>:<n>", one per host opened in the cycle)."""

    task_id: str
    job_id: str
    role: str
    index: int  # type: ignore[assignment]  # the member's index; shadows tuple.index on purpose
    agent_id: str
    hostname: str
    ports: tuple[int, ...]
    request: Resources
    labels: OfferLabels = _UNRESERVED
    share: ShareGrant | None = None

    @property
    def resources(self) -> Resources:
        """What the task takes from the offer: its request plus its ports, with the offer's role and
        allocation role."""
        resources = self.request.plus_ports(self.ports)
        labels = self.labels
        if resources.role != labels.role or resources.allocation_role != labels.allocation_role:
            resources = resources.with_labels(role=labels.role, allocation_role=labels.allocation_role)
        return resources

    def to_mesos(self) -> list[dict[str, Any]]:
        """`resources` as Mesos `Resource` JSON, labelled as the offer's (role or reservations,
        reservation, allocation_info): what the task's TaskInfo must carry."""
        return self.labels.to_mesos(self.resources)


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


class Plan(NamedTuple):
    """Every member of the job placed; one launch per agent used."""

    job_id: str
    launches: tuple[AgentLaunch, ...]
    kind: Literal["plan"] = "plan"

    @property
    def placements(self) -> tuple[TaskPlacement, ...]:
        return tuple(task for launch in self.launches for task in launch.tasks)

    def only(self) -> TaskPlacement | None:
        """The plan's placement when it has exactly one (one launch of one task: a lone task, the common
        case the offer cycle checks and launches without looking through a gang), else None."""
        launches = self.launches
        if len(launches) == 1 and len(launches[0].tasks) == 1:
            return launches[0].tasks[0]
        return None


class WaitReason(NamedTuple):
    """The job does not fit in the offers at hand. `task_id` is the member that did not fit; `counts`
    give each agent's first failing reason; `held`: the agents held for it in this cycle (see
    `PlacementCycle.reserve`), so that later jobs cannot take what frees up there. For a gang
    (`members` > 1): `placed`, the agent of each member placed before `task_id` failed (then rolled
    back), and `short`, the GPUs (thousandths) it needed beyond the most any agent had free."""

    job_id: str
    task_id: str
    agents: int
    counts: tuple[tuple[str, int], ...]
    kind: Literal["wait"] = "wait"
    held: tuple[str, ...] = ()
    members: int = 1
    placed: tuple[str, ...] = ()
    short: int = 0

    @property
    def summary(self) -> str:
        """`0/5 agents fit: 3 insufficient gpus, 2 constraint UNIQUE hostname; holding S1, S2 for it`;
        for a gang led by how many members fit where: `1 of 2 members fit (on S1); j.worker-1 needs 1
        more GPU than any agent has free: 0/2 agents fit: 2 insufficient gpus`."""
        summary = summarize(0, self.agents, self.counts)
        if self.members > 1:
            summary = f"{gang_text(self.task_id, self.members, self.placed, self.short)}: {summary}"
        held = self.held
        if held:
            more = f" and {len(held) - 3} more" if len(held) > 3 else ""
            summary += f"; holding {', '.join(held[:3])}{more} for it"
        return summary


#: How every "can never fit" summary starts (the state machine recognises a persisted one by it).
NEVER_FITS_PREFIX = "can never fit: "


class NeverFits(NamedTuple):
    """The job would not fit even on the whole, empty cluster (the catalog of agents). `members`,
    `placed`, `short`: as `WaitReason`'s, on that empty cluster."""

    job_id: str
    task_id: str
    agents: int
    counts: tuple[tuple[str, int], ...]
    kind: Literal["never"] = "never"
    members: int = 1
    placed: tuple[str, ...] = ()
    short: int = 0

    @property
    def summary(self) -> str:
        summary = summarize(0, self.agents, self.counts)
        if self.members > 1:
            summary = f"{gang_text(self.task_id, self.members, self.placed, self.short)}: {summary}"
        return NEVER_FITS_PREFIX + summary


class InvalidDemand(NamedTuple):
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
    """The result of one cycle: each job's outcome, one launch per agent (all jobs merged: one ACCEPT
    each), and the offer ids to decline (agents nothing was placed on). Every task of `accepts` belongs
    to a `Plan` of `outcomes`."""

    outcomes: dict[str, Outcome]
    accepts: tuple[AgentLaunch, ...]
    declines: tuple[str, ...]

    def plans(self) -> list[Plan]:
        return [outcome for outcome in self.outcomes.values() if isinstance(outcome, Plan)]

    def waiting(self) -> dict[str, WaitReason | NeverFits | InvalidDemand]:
        return {job_id: o for job_id, o in self.outcomes.items() if not isinstance(o, Plan)}
