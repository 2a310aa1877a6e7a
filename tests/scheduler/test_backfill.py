"""Strict FIFO (`PlacementPolicy.backfill=False`) against backfill in `core.scheduling.make_planner`."""

from __future__ import annotations

import pytest

from mesos_gpu.core.placement import NeverFits, Plan, WaitReason
from mesos_gpu.core.placement.offers import catalog_from_master_state
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import GangRequest, make_planner
from mesos_gpu.core.state import JobSubmitted, OffersReceived, SchedulerState, Subscribed
from mesos_gpu.core.taskinfo import LaunchSettings
from tests.scheduler.builders import offer, record, single_job

FIFO = PlacementPolicy(backfill=False)
BACKFILL = PlacementPolicy(backfill=True)


def _requests(*jobs: tuple[str, int], priority: dict[str, int] | None = None,
              reserve: bool = False) -> list[GangRequest]:
    specs = [single_job(name, gpus=gpus, priority=(priority or {}).get(name, 0)) for name, gpus in jobs]
    return [GangRequest(spec.name, spec, spec.tasks(spec.name), reserve=reserve) for spec in specs]


def _kinds(outcomes: dict[str, object]) -> dict[str, str]:
    return {job: "plan" if isinstance(o, Plan) else "wait" if isinstance(o, WaitReason) else "never"
            for job, o in outcomes.items()}


@pytest.mark.parametrize(("policy", "expected"), [
    (BACKFILL, {"big": "wait", "small": "plan", "other": "plan"}),
    (FIFO, {"big": "wait", "small": "wait", "other": "wait"}),
])
def test_a_job_that_fits_behind_one_that_waits_is_placed_only_with_backfill(
        policy: PlacementPolicy, expected: dict[str, str]) -> None:
    requests = _requests(("big", 4), ("small", 1), ("other", 1))
    plan = make_planner(policy)(requests, (offer("S1", gpus=2),))
    assert _kinds(plan.outcomes) == expected


def test_jobs_behind_the_waiting_one_say_so() -> None:
    requests = _requests(("first", 1), ("big", 4), ("small", 1))
    plan = make_planner(FIFO)(requests, (offer("S1", gpus=2), offer("S2", gpus=1)))
    assert isinstance(plan.outcomes["first"], Plan)
    assert plan.outcomes["big"].summary == "0/2 agents fit: 2 insufficient gpus"
    assert plan.outcomes["small"].summary == "0/2 agents fit: 2 behind waiting job big (no backfill)"
    assert len(plan.accepts) == 1 and len(plan.declines) == 1    # "small" is not placed on the rest


@pytest.mark.parametrize(("order", "placed"), [
    # the requests come in priority order: the one first is the head of the FIFO
    (("small", "big"), {"small"}),
    (("big", "small"), set()),
])
def test_the_priority_order_given_decides_who_blocks(order: tuple[str, ...], placed: set[str]) -> None:
    sizes = {"small": 1, "big": 4}
    requests = _requests(*((name, sizes[name]) for name in order))
    plan = make_planner(FIFO)(requests, (offer("S1", gpus=2),))
    assert {job for job, o in plan.outcomes.items() if isinstance(o, Plan)} == placed


def test_the_state_machine_orders_by_priority_then_submission() -> None:
    state = SchedulerState(planner=make_planner(FIFO), settings=LaunchSettings(zk_url="zk://h:1/x"))
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record("old-big", single_job("old-big", gpus=4), 1.0), 1.0))
    state.handle(JobSubmitted(record("urgent", single_job("urgent", gpus=1, priority=5), 2.0), 2.0))
    state.handle(JobSubmitted(record("late", single_job("late", gpus=1), 3.0), 3.0))
    state.handle(OffersReceived((offer("S1", gpus=2),), 4.0))
    assert state.jobs["urgent"].state.value == "STAGING"     # first by priority: placed
    assert state.jobs["old-big"].wait_reason == "0/1 agents fit: 1 insufficient gpus"
    assert state.jobs["late"].wait_reason == "0/1 agents fit: 1 behind waiting job old-big (no backfill)"


def test_a_job_that_can_never_fit_blocks_nothing() -> None:
    agents = catalog_from_master_state({"slaves": [
        {"id": "S1", "hostname": "h1", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}},
    ]})
    requests = _requests(("huge", 8), ("small", 1))
    plan = make_planner(FIFO, catalog=lambda: agents)(requests, (offer("S1", gpus=2),))
    assert isinstance(plan.outcomes["huge"], NeverFits) and isinstance(plan.outcomes["small"], Plan)


@pytest.mark.parametrize("policy", [FIFO, BACKFILL])
def test_the_reserve_still_holds_agents_for_the_head_job(policy: PlacementPolicy) -> None:
    agents = catalog_from_master_state({"slaves": [
        {"id": f"S{i}", "hostname": f"h{i}", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}}
        for i in range(2)
    ]})
    requests = _requests(("big", 2), ("small", 1), reserve=True)
    plan = make_planner(policy, catalog=lambda: agents)(requests, (offer("S0", gpus=1), offer("S1", gpus=1)))
    big, small = plan.outcomes["big"], plan.outcomes["small"]
    assert isinstance(big, WaitReason) and big.held == ("S0",)
    # backfill places the small job, but not on the agent held for the big one; FIFO not at all
    assert [a.agent_id for a in plan.accepts] == (["S1"] if policy.backfill else [])
    assert isinstance(small, Plan) == policy.backfill


def test_a_starving_job_keeps_the_agents_held_for_it_across_cycles() -> None:
    agents = catalog_from_master_state({"slaves": [
        {"id": f"S{i}", "hostname": f"h{i}", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}}
        for i in range(2)
    ]})
    planner = make_planner(BACKFILL, catalog=lambda: agents)
    big = _requests(("big", 2), reserve=True)[0]
    first = planner([big], (offer("S1", gpus=1),)).outcomes["big"]
    assert isinstance(first, WaitReason) and first.held == ("S1",)
    # Both agents now have one GPU free: S1 stays held for "big" (chosen afresh, the hold would move to
    # S0, the first of two alike, and "small" would take S1's freed GPU from the job waiting for it).
    plan = planner([big, *_requests(("small", 1))], (offer("S0", gpus=1), offer("S1", gpus=1)))
    assert plan.outcomes["big"].held == ("S1",)
    assert [a.agent_id for a in plan.accepts] == ["S0"]
    # once "big" no longer waits, its agents are free again
    assert planner(_requests(("small", 1)), (offer("S1", gpus=1),)).accepts[0].agent_id == "S1"
