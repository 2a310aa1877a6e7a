"""The public surface of mesos_gpu.core.placement and mesos_gpu.core.resources, pinned (httpx-style)."""

from __future__ import annotations

import mesos_gpu.core.placement
import mesos_gpu.core.resources


def test_placement_exports():
    assert sorted(mesos_gpu.core.placement.__all__) == [
        "AgentLaunch", "AgentSlot", "Constraint", "CyclePlan", "GangPlanner", "InvalidDemand", "JobDemand",
        "Needs", "NeverFits", "OfferLabels", "OfferView", "Operator", "Outcome", "PlacementCycle",
        "PlacementPolicy", "Plan", "RunningMember", "TaskDemand", "TaskPlacement", "WaitReason",
        "attributes_from_mesos", "parse_constraint", "parse_constraints", "plan_cycle",
    ]
    for name in mesos_gpu.core.placement.__all__:
        assert getattr(mesos_gpu.core.placement, name) is not None


def test_resources_exports():
    assert sorted(mesos_gpu.core.resources.__all__) == [
        "Range", "Resources", "ResourcesError", "from_milli", "ranges_add", "ranges_contains", "ranges_count",
        "ranges_subtract", "take_lowest", "take_ports", "to_milli",
    ]
