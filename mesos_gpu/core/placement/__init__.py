"""Placement (pure): offers view, filters with named reasons, scorers, and the gang planner.

Nomad-style: a snapshot of the offers (`OfferView` of `AgentSlot`s) goes through filters, each naming
why an agent cannot take a task (`reasons`), then scorers in [0, 1] (GPU best fit, ps spreading, job
locality), then the `GangPlanner` places every member of a job or none and says why it waits:
`0/5 agents fit: 3 insufficient gpus, 2 constraint UNIQUE hostname`. `plan_cycle` places several jobs
on one snapshot and merges their tasks into one launch (one ACCEPT) per agent. The `CyclePlan` and its
outcomes (`Plan`, `WaitReason`, `NeverFits`, `InvalidDemand`) go to the state machine as they are; a
placed task's resources are labelled as its offer's (`OfferLabels`: role, reservations, allocation).
GPU shares (`TaskDemand.share`) go to share hosts (`shares`: the per-device ledger, existing hosts first,
new ones opened with a whole GPU of the offer), chosen to limit fragmentation (`fragmentation`, FGD).
"""

from mesos_gpu.core.placement.constraints import Constraint, Operator, parse_constraint, parse_constraints
from mesos_gpu.core.placement.demand import JobDemand, Needs, RunningMember, TaskDemand
from mesos_gpu.core.placement.offers import AgentSlot, OfferLabels, OfferView, attributes_from_mesos
from mesos_gpu.core.placement.outcomes import (
    AgentLaunch,
    CyclePlan,
    InvalidDemand,
    NeverFits,
    Outcome,
    Plan,
    TaskPlacement,
    WaitReason,
)
from mesos_gpu.core.placement.planner import GangPlanner, PlacementCycle, plan_cycle
from mesos_gpu.core.placement.policy import PlacementPolicy

__all__ = [
    "AgentLaunch",
    "AgentSlot",
    "Constraint",
    "CyclePlan",
    "GangPlanner",
    "InvalidDemand",
    "JobDemand",
    "Needs",
    "NeverFits",
    "OfferLabels",
    "OfferView",
    "Operator",
    "Outcome",
    "PlacementCycle",
    "PlacementPolicy",
    "Plan",
    "RunningMember",
    "TaskDemand",
    "TaskPlacement",
    "WaitReason",
    "attributes_from_mesos",
    "parse_constraint",
    "parse_constraints",
    "plan_cycle",
]
