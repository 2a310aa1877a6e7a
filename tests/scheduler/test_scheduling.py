"""The state machine with the real gang planner (mesos_gpu.core.scheduling over mesos_gpu.core.placement)."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.model import JobState
from mesos_gpu.core.placement import NeverFits, Plan, WaitReason
from mesos_gpu.core.placement.offers import attributes_from_mesos, catalog_from_master_state
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import (
    Accept,
    GangRequest,
    JobsRecovered,
    JobSubmitted,
    OffersReceived,
    SchedulerState,
    StatusReceived,
    Subscribed,
    check_invariants,
)
from mesos_gpu.core.taskinfo import LaunchSettings
from tests.scheduler.builders import offer, record, share_job, single_job, status, tf_job

FALLBACK = PlacementPolicy(cpu_tasks_on_gpu_agents=True)


def _machine(policy: PlacementPolicy | None = None) -> SchedulerState:
    settings = LaunchSettings(zk_url="zk://127.0.0.1:2181/mesos-gpu/test")
    state = SchedulerState(planner=make_planner(policy), settings=settings)
    state.handle(Subscribed("F", 0.0))
    return state


def test_a_gang_spans_two_agents_in_one_cycle() -> None:
    state = _machine(FALLBACK)
    spec = tf_job(workers=2, ps=1, chief=1, gpus=1)
    state.handle(JobSubmitted(record("dist", spec), 1.0))
    commands = state.handle(OffersReceived((offer("S1", gpus=2), offer("S2", gpus=2)), 2.0))
    accepts = [c for c in commands if isinstance(c, Accept)]
    assert sorted(a.agent_id for a in accepts) == ["S1", "S2"]
    assert sum(len(a.task_infos) for a in accepts) == 4
    for accept in accepts:
        ports = [r for info in accept.task_infos for r in info["resources"] if r["name"] == "ports"]
        ranges = [rng for r in ports for rng in r["ranges"]["range"]]
        taken = [p for rng in ranges for p in range(rng["begin"], rng["end"] + 1)]
        assert len(taken) == len(set(taken)), "a port was given twice on one agent"


def test_a_job_that_cannot_fit_says_why() -> None:
    state = _machine()
    state.handle(JobSubmitted(record("big", single_job(gpus=4)), 1.0))
    state.handle(OffersReceived((offer("S1", gpus=2), offer("S2", gpus=1)), 2.0))
    assert state.jobs["big"].wait_reason == "0/2 agents fit: 2 insufficient gpus"


def test_cpu_only_members_stay_off_gpu_agents_by_default() -> None:
    state = _machine()
    state.handle(JobSubmitted(record("dist", tf_job(workers=1, chief=0, ps=1)), 1.0))
    state.handle(OffersReceived((offer("S1", gpus=2),), 2.0))
    assert "gpu agent reserved for gpu work" in state.jobs["dist"].wait_reason


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=6),
    st.lists(st.integers(0, 4), min_size=1, max_size=4),
)
def test_no_gpu_is_given_twice_in_a_cycle(job_gpus: list[int], agent_gpus: list[int]) -> None:
    state = _machine(FALLBACK)
    for i, gpus in enumerate(job_gpus):
        state.handle(JobSubmitted(record(f"j{i}", single_job(f"j{i}", gpus=gpus)), 1.0 + i))
    offers = tuple(offer(f"S{i}", gpus=g) for i, g in enumerate(agent_gpus))
    commands = state.handle(OffersReceived(offers, 10.0))
    for accept in (c for c in commands if isinstance(c, Accept)):
        used = sum(r["scalar"]["value"] for info in accept.task_infos for r in info["resources"]
                   if r["name"] == "gpus")
        assert used <= agent_gpus[int(accept.agent_id[1:])]


def test_a_waiting_job_keeps_its_demand_until_its_spec_changes() -> None:
    planner = make_planner()
    small, large = single_job(gpus=1), single_job(gpus=4)
    tasks = small.tasks("j1")
    few = (offer("S1", gpus=2),)
    busy = planner([GangRequest("j1", small, tasks)], ())
    assert isinstance(busy.outcomes["j1"], WaitReason)
    placed = planner([GangRequest("j1", small, tasks)], few)
    assert isinstance(placed.outcomes["j1"], Plan)
    # The same job id with another spec (a recovered record, say) is planned from the new spec.
    waiting = planner([GangRequest("j1", large, large.tasks("j1"))], few).outcomes["j1"]
    assert isinstance(waiting, WaitReason) and "insufficient gpus" in waiting.summary


def test_job_record_expands_its_members_once_per_spec() -> None:
    state = _machine()
    state.handle(JobSubmitted(record("one", single_job(gpus=1)), 1.0))
    job = state.jobs["one"]
    assert job.tasks() == job.spec.tasks("one") and job.tasks() is job.tasks()
    job.spec = single_job(gpus=2)
    assert job.tasks()[0].resources.gpus == 2


def test_a_planner_with_a_catalog_says_a_job_can_never_fit():
    agents = catalog_from_master_state({"slaves": [
        {"id": "S1", "hostname": "h1", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}},
        {"id": "S2", "hostname": "h2", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}},
    ]})
    huge, small = single_job("huge", gpus=4), single_job("small", gpus=2)
    requests = [GangRequest(job.name, job, job.tasks(job.name)) for job in (huge, small)]
    busy = (offer("S1", gpus=1),)
    without = make_planner()(requests, busy).outcomes
    assert [o.summary for o in without.values()] == ["0/1 agents fit: 1 insufficient gpus"] * 2
    outcomes = make_planner(catalog=lambda: agents)(requests, busy).outcomes
    assert isinstance(outcomes["huge"], NeverFits)
    assert outcomes["huge"].summary == "can never fit: 0/2 agents fit: 2 insufficient gpus"
    assert outcomes["small"] == WaitReason("small", "small.task-0", 1, (("insufficient gpus", 1),))
    assert make_planner(catalog=lambda: None)(requests, busy).outcomes["huge"] == without["huge"]


def test_a_gang_waiting_long_enough_gets_its_agents_held_from_later_jobs() -> None:
    agents = catalog_from_master_state({"slaves": [
        {"id": agent_id, "hostname": f"h-{agent_id}",
         "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0, "ports": "[31000-31099]"}}
        for agent_id in ("S1", "S2")
    ]})
    state = SchedulerState(
        planner=make_planner(catalog=lambda: agents), settings=LaunchSettings(zk_url="zk://127.0.0.1:2181/x"),
        reserve_after_seconds=10.0,
    )
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record("big", tf_job(workers=2, ps=0, chief=0, gpus=2)), 0.0))
    state.handle(JobSubmitted(record("small", single_job(gpus=1)), 1.0))
    half_free = (offer("S1", gpus=1), offer("S2", gpus=1))
    commands = state.handle(OffersReceived(half_free, 5.0))          # not waited long enough yet
    assert [c.agent_id for c in commands if isinstance(c, Accept)] == ["S1"]
    big_short = "0 of 2 members fit; big.worker-0 needs 1 more GPU than any agent has free"
    assert state.jobs["big"].wait_reason == f"{big_short}: 0/2 agents fit: 2 insufficient gpus"
    state.handle(JobSubmitted(record("later", single_job(gpus=1)), 6.0))
    commands = state.handle(OffersReceived((offer("S2", gpus=1),), 20.0))
    assert [c for c in commands if isinstance(c, Accept)] == []     # S2 is held for "big"
    held_reason = "0/1 agents fit: 1 insufficient gpus; holding S1, S2 for it"
    assert state.jobs["big"].wait_reason == f"{big_short}: {held_reason}"
    assert state.jobs["later"].wait_reason == "0/1 agents fit: 1 held for a waiting job"
    no_patience = SchedulerState(planner=make_planner(catalog=lambda: agents), reserve_after_seconds=None)
    no_patience.handle(Subscribed("F", 0.0))
    no_patience.handle(JobSubmitted(record("big", tf_job(workers=2, ps=0, chief=0, gpus=2)), 0.0))
    no_patience.handle(JobSubmitted(record("later", single_job(gpus=1)), 6.0))
    commands = no_patience.handle(OffersReceived((offer("S2", gpus=1),), 1000.0))
    assert [c.agent_id for c in commands if isinstance(c, Accept)] == ["S2"]


def test_one_waiting_job_at_a_time_gets_agents_held() -> None:
    agents = catalog_from_master_state({"slaves": [
        {"id": f"S{i}", "hostname": f"h{i}", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}}
        for i in range(4)
    ]})
    first, second = single_job("first", gpus=2), single_job("second", gpus=2)
    requests = [GangRequest(job.name, job, job.tasks(job.name), reserve=True) for job in (first, second)]
    plan = make_planner(catalog=lambda: agents)(requests, (offer("S0", gpus=1), offer("S1", gpus=1)))
    first_outcome, second_outcome = plan.outcomes["first"], plan.outcomes["second"]
    assert isinstance(first_outcome, WaitReason) and first_outcome.held == ("S0",)
    assert first_outcome.summary == "0/2 agents fit: 2 insufficient gpus; holding S0 for it"
    assert second_outcome.summary == "0/2 agents fit: 1 held for a waiting job, 1 insufficient gpus"
    assert plan.accepts == () and len(plan.declines) == 2      # nothing placed: both offers declined


def test_the_catalog_reads_mesos_flat_range_and_set_attributes_as_offers_give_them() -> None:
    # Mesos' JSON writer for Attributes (/master/slaves) writes "[1-2, 5-6]" and "{a, b}"; offers carry
    # the protobuf form, which `attribute_value` renders without spaces: constraints must see one string.
    agents = catalog_from_master_state({"slaves": [
        {"id": "S1", "hostname": "h1", "resources": {"cpus": 1.0},
         "attributes": {"racks": "[1-2, 5-6]", "zones": "{a, b}", "rack": "r1", "cores": 2.5}},
    ]})
    assert agents[0].attributes == {"racks": "[1-2,5-6]", "zones": "{a,b}", "rack": "r1", "cores": "2.5"}
    ranges = [{"begin": 1, "end": 2}, {"begin": 5, "end": 6}]
    offered = attributes_from_mesos([
        {"name": "racks", "type": "RANGES", "ranges": {"range": ranges}},
        {"name": "zones", "type": "SET", "set": {"item": ["a", "b"]}},
    ])
    assert offered == {"racks": agents[0].attributes["racks"], "zones": agents[0].attributes["zones"]}


def test_four_quarter_shares_pack_one_gpu_and_a_fifth_waits_for_room() -> None:
    state = _machine()
    for i in range(5):
        state.handle(JobSubmitted(record(f"s{i}", share_job(f"s{i}", gpus=0.25)), 1.0))
    commands = state.handle(OffersReceived((offer("S1", gpus=1, gpu_memory=16384),), 2.0))
    (accept,) = [c for c in commands if isinstance(c, Accept)]
    hosts = {info["executor"]["executor_id"]["value"] for info in accept.task_infos}
    assert hosts == {"sharehost.s0.task-0.0"} and len(accept.task_infos) == 4
    assert state.jobs["s4"].state is JobState.PENDING and state.jobs["s4"].wait_reason
    assert [(v.used, v.used_memory) for v in state.share_host_views(2.0)] == [(1000, 16384)]
    state.handle(StatusReceived(status("s0.task-0.0", "TASK_FINISHED"), 3.0))
    commands = state.handle(OffersReceived((offer("S1", gpus=0, gpu_memory=16384),), 4.0))
    (accept,) = [c for c in commands if isinstance(c, Accept)]
    (info,) = accept.task_infos
    assert info["name"] == "s4.task-0" and info["executor"]["executor_id"]["value"] == "sharehost.s0.task-0.0"
    assert check_invariants(state, 4.0) == []


def test_mig_shares_take_distinct_instances_and_a_recovered_ledger_is_the_same() -> None:
    state = _machine()
    for i in range(3):
        state.handle(JobSubmitted(record(f"m{i}", share_job(f"m{i}", gpus=0.14, isolation="mig")), 1.0))
    layout = {"gpu_mig": "3g.40gb/2g.20gb/1g.10gb"}
    state.handle(OffersReceived((offer("S1", gpus=1, gpu_memory=81920, attributes=layout),), 2.0))
    (view,) = state.share_host_views(2.0)
    assert sorted(g.mig_index for g in state.share_hosts[view.host_id].tasks.values()) == [0, 1, 2]
    assert view.mig_free == () and check_invariants(state, 2.0) == []
    records = tuple(job.to_dict() for job in state.jobs.values())
    fresh = _machine()
    fresh.handle(JobsRecovered(records, 3.0))
    (again,) = fresh.share_host_views(3.0)
    assert dataclasses.replace(again, accepting=True) == view and not again.accepting  # until a status
    assert fresh.share_hosts[view.host_id].tasks == state.share_hosts[view.host_id].tasks
