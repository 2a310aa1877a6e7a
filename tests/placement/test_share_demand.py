"""The scheduler's side of share placement: a TaskSpec's share as a ShareNeed, and the planner's third
argument (the share hosts)."""

from __future__ import annotations

import pytest

from mesos_gpu.core.model import Containerizer, Isolation, ResourceRequest, Role, TaskSpec
from mesos_gpu.core.placement import Plan
from mesos_gpu.core.scheduling import make_planner, task_demand
from mesos_gpu.core.sharing import ShareHostView, ShareNeed
from tests.placement.builders import agent


def spec(resources: ResourceRequest, isolation: Isolation = Isolation.CAPPED) -> TaskSpec:
    return TaskSpec("j", Role.TASK, 0, resources, "true", None, {}, Containerizer.MESOS, isolation, ())


# (name, request, isolation, expected share, expected whole gpus)
CASES = [
    ("fixed share", ResourceRequest(gpus=0.25), Isolation.CAPPED, ShareNeed(Isolation.CAPPED, 250, 250, 0),
     0),
    ("elastic share with memory", ResourceRequest(gpus=1.0, gpus_min=0.4, gpu_memory=8192), Isolation.MPS,
     ShareNeed(Isolation.MPS, 1000, 400, 8192), 0),
    ("whole gpus", ResourceRequest(gpus=2), Isolation.EXCLUSIVE, None, 2000),
    ("cpu task", ResourceRequest(gpus=0), Isolation.EXCLUSIVE, None, 0),
]


@pytest.mark.parametrize(("name", "request_", "isolation", "share", "gpus"), CASES, ids=[c[0] for c in CASES])
def test_task_demand_of_a_share(name, request_, isolation, share, gpus):
    demand = task_demand(spec(request_, isolation))
    assert demand.share == share
    assert demand.resources.scalar_milli("gpus") == gpus
    assert demand.needs.problem is None


def test_the_planner_takes_share_hosts_as_its_third_argument():
    from mesos_gpu.core.scheduling import GangRequest

    planner = make_planner()
    request = GangRequest("j", None, (spec(ResourceRequest(gpus=0.5)),))  # type: ignore[arg-type]
    offers = [agent("a").gpus(1).offer_json()]
    host = ShareHostView("sharehost.x", "a", Isolation.CAPPED, 0, 500, 0)
    plan = planner([request], offers, [host])
    outcome = plan.outcomes["j"]
    assert isinstance(outcome, Plan)
    assert outcome.placements[0].share.host_id == "sharehost.x"
    fresh = make_planner()([request], offers)          # old callers: no share hosts, a new one opened
    assert fresh.outcomes["j"].placements[0].share.host_id == "new:a:1"
