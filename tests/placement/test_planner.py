"""The gang planner and the cycle: all or nothing, exact wait reasons, one ACCEPT per agent, ports."""

from __future__ import annotations

import pytest

from mesos_gpu.core.placement import (
    GangPlanner,
    InvalidDemand,
    JobDemand,
    NeverFits,
    OfferView,
    PlacementPolicy,
    Plan,
    RunningMember,
    WaitReason,
    plan_cycle,
)
from mesos_gpu.core.placement.stack import PlacementStack
from mesos_gpu.core.placement.state import CapacityLedger
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.wire import resources_to_mesos
from tests.placement.builders import agent, context, task, tf_job, view

PLANNER = GangPlanner()


def placed_agents(outcome: Plan) -> dict[str, str]:
    assert isinstance(outcome, Plan), getattr(outcome, "summary", outcome)
    return {p.task_id: p.agent_id for p in outcome.placements}


def test_wait_summary_counts_each_agent_by_its_first_failing_reason():
    agents = [agent("cpu1"), agent("cpu2"), agent("one").gpus(1), agent("g1").gpus(4), agent("g2").gpus(4)]
    job = JobDemand.of([task(f"w{i}").role("worker", i).gpus(2).constraint("hostname", "UNIQUE").build()
                        for i in range(3)])
    outcome = PLANNER.plan(job, view(*agents))
    assert isinstance(outcome, WaitReason)
    assert outcome.summary == ("2 of 3 members fit (on g1, g2); w2 does not fit: "
                               "0/5 agents fit: 3 insufficient gpus, 2 constraint UNIQUE hostname")
    assert outcome.task_id == "w2" and outcome.kind == "wait"


def test_gang_is_all_or_nothing_and_holds_nothing_when_it_waits():
    offers = view(agent("a").gpus(2), agent("b").gpus(1))
    cycle = PLANNER.start(offers)
    too_big = tf_job("big", workers=3, ps=0, chief=False, gpus=1)   # 3 GPUs wanted, 3 offered ...
    blocked = tf_job("blocked", workers=4, ps=0, chief=False, gpus=1)  # ... 4 cannot fit
    assert isinstance(cycle.place(blocked), WaitReason)
    assert cycle.remaining("a") == offers.slots[0].available      # nothing held after the failed gang
    assert isinstance(cycle.place(too_big), Plan)
    result = cycle.finish()
    assert {t.job_id for launch in result.accepts for t in launch.tasks} == {"big"}


def test_tf_job_spans_agents_with_one_launch_per_agent_and_distinct_ports():
    offers = view(agent("a").gpus(2).ports((31000, 31001)), agent("b").gpus(2).ports((31000, 31001)),
                  agent("c").ports((32000, 32000)))
    outcome = PLANNER.plan(tf_job("mnist", workers=2, ps=1), offers)
    agents = placed_agents(outcome)
    assert agents["mnist-ps-0"] == "c"                           # CPU-only ps stays off GPU agents
    assert {agents["mnist-chief-0"], agents["mnist-worker-0"], agents["mnist-worker-1"]} <= {"a", "b"}
    assert isinstance(outcome, Plan)
    assert len({launch.agent_id for launch in outcome.launches}) == len(outcome.launches)
    for launch in outcome.launches:
        ports = [port for t in launch.tasks for port in t.ports]
        assert len(ports) == len(set(ports)) == len(launch.tasks)
        for placed in launch.tasks:
            assert placed.resources.ports == tuple((p, p) for p in placed.ports)
    ps = next(p for p in outcome.placements if p.role == "ps")
    assert ps.ports == (32000,) and ps.resources == Resources.of(cpus=2, mem=2048, ports=[(32000, 32000)])


def test_gpu_best_fit_leaves_whole_agents_free():
    offers = view(agent("eight").gpus(8), agent("two").gpus(2), agent("one").gpus(1))
    assert placed_agents(PLANNER.plan([task().gpus(1).build()], offers)) == {"t": "one"}
    assert placed_agents(PLANNER.plan([task().gpus(2).build()], offers)) == {"t": "two"}
    assert placed_agents(PLANNER.plan([task().gpus(3).build()], offers)) == {"t": "eight"}


def test_gpu_best_fit_among_equal_free_gpus_prefers_the_fuller_agent():
    offers = view(agent("fresh").gpus(2).total(gpus=2), agent("busy").gpus(2).total(gpus=8))
    assert placed_agents(PLANNER.plan([task().gpus(1).build()], offers)) == {"t": "busy"}


@pytest.mark.parametrize(
    ("policy", "agents", "expected"),
    [
        (PlacementPolicy(), [agent("gpu").gpus(4), agent("cpu")], "cpu"),
        (PlacementPolicy(cpu_tasks_on_gpu_agents=True), [agent("gpu").gpus(4), agent("cpu")], "cpu"),
        (PlacementPolicy(cpu_tasks_on_gpu_agents=True), [agent("gpu").gpus(4), agent("cpu").cpus(0.5)],
         "gpu"),
        (PlacementPolicy(cpu_tasks_on_gpu_agents=True),
         [agent("free").gpus(4), agent("full").gpus(0).total(gpus=4), agent("cpu").cpus(0)], "full"),
    ],
    ids=["cpu-agent", "cpu-agent-first-even-if-allowed", "gpu-agent-when-no-cpu-agent-fits",
         "gpu-agent-with-fewest-free-gpus"],
)
def test_cpu_tasks_and_gpu_agents(policy, agents, expected):
    outcome = GangPlanner(policy).plan([task().build()], view(*agents))
    assert placed_agents(outcome) == {"t": expected}


def test_cpu_task_waits_when_only_gpu_agents_have_room():
    outcome = PLANNER.plan([task().build()], view(agent("gpu").gpus(4), agent("cpu").cpus(0.5)))
    assert isinstance(outcome, WaitReason)
    assert outcome.summary == "0/2 agents fit: 1 gpu agent reserved for gpu work, 1 insufficient cpus"


def test_unhealthy_gpus_are_avoided():
    offers = view(agent("sick").gpus(8).unhealthy(), agent("ok").gpus(1))
    assert placed_agents(PLANNER.plan([task().gpus(1).build()], offers)) == {"t": "ok"}
    outcome = PLANNER.plan([task().gpus(2).build()], offers)
    assert isinstance(outcome, WaitReason)
    assert outcome.summary == "0/2 agents fit: 1 insufficient gpus, 1 unhealthy gpus"


def test_ps_are_spread_and_workers_kept_together():
    offers = view(*(agent(n).gpus(4).rack("r1" if n in "ab" else "r2") for n in "abcd"))
    job = tf_job("j", workers=3, ps=2, chief=False, gpus=1)
    outcome = GangPlanner(PlacementPolicy(cpu_tasks_on_gpu_agents=True)).plan(job, offers)
    agents = placed_agents(outcome)
    assert agents["j-ps-0"] != agents["j-ps-1"]
    assert len({agents[f"j-worker-{i}"] for i in range(3)}) == 1


def test_group_by_with_a_group_count_spreads_evenly():
    offers = view(*(agent(f"{rack}{i}").gpus(1).rack(rack) for rack in ("r1", "r2") for i in range(3)))
    job = JobDemand.of([task(f"w{i}").gpus(1).constraint("rack", "GROUP_BY", "2").build() for i in range(4)])
    agents = placed_agents(PLANNER.plan(job, offers))
    racks = [name[:2] for name in agents.values()]
    assert racks.count("r1") == racks.count("r2") == 2


def test_group_by_without_a_count_is_marathons_weak_spread():
    # Marathon: "if the number of groups is not specified, tasks may land in one group when offers from
    # other groups are not received": one known group keeps accepting (checkGroupBy).
    offers = view(*(agent(f"{rack}{i}").gpus(1).rack(rack) for rack in ("r1", "r2") for i in range(3)))
    job = JobDemand.of([task(f"w{i}").gpus(1).constraint("rack", "GROUP_BY").build() for i in range(4)])
    assert isinstance(PLANNER.plan(job, offers), Plan)


def test_max_per_and_cluster_constraints():
    offers = view(*(agent(f"{rack}{i}").gpus(1).rack(rack) for rack in ("r1", "r2") for i in range(2)))
    job = JobDemand.of([task(f"w{i}").gpus(1).constraint("rack", "MAX_PER", "1").build() for i in range(3)])
    outcome = PLANNER.plan(job, offers)
    assert isinstance(outcome, WaitReason)
    assert outcome.summary == ("2 of 3 members fit (on r10, r20); w2 does not fit: "
                               "0/4 agents fit: 2 constraint MAX_PER rack, 2 insufficient gpus")
    job = JobDemand.of([task(f"w{i}").gpus(1).constraint("rack", "CLUSTER").build() for i in range(2)])
    racks = {name[:2] for name in placed_agents(PLANNER.plan(job, offers)).values()}
    assert len(racks) == 1


def test_running_members_count_for_unique_and_locality():
    offers = view(agent("a").gpus(1), agent("b").gpus(1))
    running = (RunningMember("w0", "worker", "a", "a.example"),)
    job = JobDemand.of([task("w1").gpus(1).constraint("hostname", "UNIQUE").build()], running)
    assert placed_agents(PLANNER.plan(job, offers)) == {"w1": "b"}


def test_allocation_info_of_the_offer_is_echoed_in_task_resources():
    offers = view(agent("a").gpus(1).allocation_role("tf"))
    [placed] = PLANNER.plan([task().gpus(1).ports(1).build()], offers).placements  # type: ignore[union-attr]
    assert placed.resources.allocation_role == "tf"
    assert all(entry["allocation_info"] == {"role": "tf"} for entry in placed.to_mesos())


def test_reservations_of_the_offer_are_echoed_in_task_resources():
    reserved = {"role": "tf", "reservation": {"principal": "ops"}}
    refined = {"reservations": [{"type": "STATIC", "role": "tf"}]}
    offered = resources_to_mesos(Resources.of(cpus=4, mem=4096, gpus=1, ports=[(31000, 31009)]))
    for labels in (reserved, refined):
        entries = [dict(entry, **labels) for entry in offered]
        if "reservations" in labels:
            entries = [{k: v for k, v in entry.items() if k != "role"} for entry in entries]
        offers = OfferView.from_mesos_offers([{"id": {"value": "O1"}, "agent_id": {"value": "a"},
                                               "hostname": "a.example", "resources": entries}])
        [placed] = PLANNER.plan([task().gpus(1).ports(2).build()], offers).placements  # type: ignore[union-attr]
        assert placed.resources.role == "tf"
        written = placed.to_mesos()
        assert [entry["name"] for entry in written] == ["cpus", "mem", "gpus", "ports"]
        assert all({k: v for k, v in entry.items() if k in ("role", *labels)} == labels for entry in written)


def test_a_wait_reason_names_the_agents_held_for_it():
    wait = WaitReason("j", "t", 2, (("insufficient gpus", 2),), held=("a", "b", "c", "d", "e"))
    assert wait.summary == "0/2 agents fit: 2 insufficient gpus; holding a, b, c and 2 more for it"


def test_cycle_merges_jobs_into_one_accept_per_agent_and_declines_the_rest():
    offers = view(agent("a").gpus(4).offers("a-O1", "a-O2"), agent("b").gpus(4), agent("idle"))
    jobs = [[task("x", "job-x").gpus(2).build()], [task("y", "job-y").gpus(2).build()]]
    result = plan_cycle(jobs, offers)
    assert [launch.agent_id for launch in result.accepts] == ["a"]
    [launch] = result.accepts
    assert launch.offer_ids == ("a-O1", "a-O2")
    assert {t.task_id for t in launch.tasks} == {"x", "y"}
    assert set(result.declines) == {"b-O1", "idle-O1"}
    assert [p.job_id for p in result.plans()] == ["job-x", "job-y"] and not result.waiting()


def test_cycle_never_gives_the_same_gpu_twice():
    offers = view(agent("a").gpus(2))
    result = plan_cycle([[task(f"t{i}", f"j{i}").gpus(1).build()] for i in range(3)], offers)
    assert [o.kind for o in result.outcomes.values()] == ["plan", "plan", "wait"]
    assert result.outcomes["j2"].summary == "0/1 agents fit: 1 insufficient gpus"


def test_never_fits_is_told_apart_from_waiting():
    catalog = [agent("a").gpus(4), agent("b").gpus(8)]
    busy = view(agent("a").gpus(0).total(gpus=4), agent("b").gpus(1).total(gpus=8), catalog=catalog)
    never = PLANNER.plan([task().gpus(16).build()], busy)
    assert isinstance(never, NeverFits) and never.kind == "never"
    assert never.summary == "can never fit: 0/2 agents fit: 2 insufficient gpus"
    later = PLANNER.plan([task().gpus(8).build()], busy)
    assert isinstance(later, WaitReason)
    assert isinstance(PLANNER.plan([task().gpus(16).build()], view(agent("a").gpus(4))), WaitReason)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([task("t").build(), task("t").build()], "appears twice"),
        ([task("t", "j1").build(), task("u", "j2").build()], "belongs to job j2"),
        ([task().gpus(0.5).build()], "gpus must be a whole number"),
    ],
    ids=["duplicate-task-id", "mixed-jobs", "fractional-gpus"],
)
def test_invalid_demands_are_errors_not_waits(members, message):
    outcome = PLANNER.plan(members, view(agent("a").gpus(1)))
    assert isinstance(outcome, InvalidDemand) and message in outcome.summary and outcome.kind == "error"


def test_a_job_is_planned_once_per_cycle():
    cycle = PLANNER.start(view(agent("a").gpus(2)))
    assert isinstance(cycle.place([task().gpus(1).build()]), Plan)
    assert isinstance(cycle.place([task().gpus(1).build()]), InvalidDemand)


def test_from_mesos_offers_groups_offers_by_agent():
    a = agent("a").gpus(2).attr("gpu_model", "A100")
    offers = [a.offer_json("O1"), a.offer_json("O2"), agent("b").offer_json("O3")]
    snapshot = OfferView.from_mesos_offers(offers)
    slots = snapshot.by_agent()
    assert slots["a"].offer_ids == ("O1", "O2") and slots["a"].available.gpus == 4
    assert slots["a"].gpu_model() == "A100" and slots["a"].has_gpus() and not slots["b"].has_gpus()
    outcome = PLANNER.plan([task().gpus(3).build()], snapshot)
    assert isinstance(outcome, Plan) and outcome.launches[0].offer_ids == ("O1", "O2")


def test_offer_view_rejects_duplicate_agents():
    with pytest.raises(ValueError, match="twice"):
        OfferView((agent("a").build(), agent("a").build()))


def test_bulk_reason_counts_agree_with_agent_by_agent_reference():
    agents = [agent("c1"), agent("c2").cpus(0.5), agent("g1").gpus(1), agent("g2").gpus(2).mem(10),
              agent("g4").gpus(4), agent("sick").gpus(8).unhealthy()]
    ledger = CapacityLedger([a.build() for a in agents], PlacementPolicy())
    stack = PlacementStack(ledger, PlacementPolicy())
    for demand in (task().gpus(2).mem(100).build(), task().cpus(1).build(), task().gpus(8).build()):
        ctx = context(demand)
        agent_found, counts = stack.select(demand, ctx)
        reference = stack.explain(demand.needs, ctx)
        if agent_found is None:
            assert dict(counts) == reference
        else:
            assert reference.get("fits", 0) >= 1


def test_never_fits_check_is_reused_across_cycles_over_the_same_catalog():
    catalog = (agent("a").gpus(4).build(),)
    planner = GangPlanner()
    for _ in range(2):
        busy = OfferView((agent("a").gpus(1).build(),), catalog)
        assert isinstance(planner.plan([task().gpus(8).build()], busy), NeverFits)
        assert isinstance(planner.plan([task().gpus(2).build()], busy), WaitReason)
        assert isinstance(planner.plan([task().gpus(1).build()], busy), Plan)


def test_mesos_attributes_become_the_strings_constraints_match():
    from mesos_gpu.core.placement import attributes_from_mesos

    assert attributes_from_mesos([
        {"name": "gpu_model", "type": "TEXT", "text": {"value": "H100"}},
        {"name": "rack", "type": "SCALAR", "scalar": {"value": 3}},
        {"name": "weight", "type": "SCALAR", "scalar": {"value": 2.5}},
        {"name": "slots", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 2}]}},
        {"name": "zones", "type": "SET", "set": {"item": ["a", "b"]}},
    ]) == {"gpu_model": "H100", "rack": "3", "weight": "2.5", "slots": "[1-2]", "zones": "{a,b}"}


def test_catalog_from_master_state_reads_flat_resources_and_attributes():
    from mesos_gpu.core.placement.offers import catalog_from_master_state

    state = {"slaves": [
        {"id": "S1", "hostname": "h1", "active": True,
         "resources": {"cpus": 8.0, "mem": 32768.0, "disk": 0.0, "gpus": 2.0,
                       "ports": "[31000-31099, 32000-32000]", "zones": "{a, b}"},
         "attributes": {"rack": "r1", "gpu_model": "A100", "slots": 2.5}},
        {"id": "S2", "hostname": "h2", "resources": {"cpus": 4, "mem": 1024},
         "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r2"}}]},
        {"id": "gone", "hostname": "h3", "active": False, "resources": {"cpus": 4.0}},
        {"id": "odd", "hostname": "h4", "resources": {"cpus": "lots"}},
        {"hostname": "no-id", "resources": {"cpus": 1.0}},
    ]}
    catalog = catalog_from_master_state(state)
    assert [slot.agent_id for slot in catalog] == ["S1", "S2"]
    s1, s2 = catalog
    assert s1.available == s1.total == Resources.parse(
        "cpus:8;mem:32768;gpus:2;ports:[31000-31099,32000-32000];zones:{a,b}"
    )
    assert dict(s1.attributes) == {"rack": "r1", "gpu_model": "A100", "slots": "2.5"}
    assert s1.gpu_agent is True and s2.gpu_agent is False
    assert dict(s2.attributes) == {"rack": "r2"} and s2.total == Resources.of(cpus=4, mem=1024)
    assert catalog_from_master_state({}) == ()


def test_reserve_holds_the_agents_a_waiting_gang_needs_most_free_first():
    catalog = [agent(name).gpus(4) for name in ("a", "b", "c")]
    busy = view(agent("a").gpus(2), agent("b").gpus(3), catalog=catalog)   # c: nothing offered
    gang = JobDemand.of([task(f"w{i}", "big").role("worker", i).gpus(4).build() for i in range(2)])
    cycle = PLANNER.start(busy)
    assert isinstance(cycle.place(gang), WaitReason)
    assert cycle.reserve(gang) == ("a", "b")          # the two with the most GPUs free now
    small = cycle.place(JobDemand.of([task("s", "small").gpus(1).build()]))
    assert isinstance(small, WaitReason)
    assert small.summary == "0/2 agents fit: 2 held for a waiting job"
    result = cycle.finish()
    assert result.accepts == () and sorted(result.declines) == ["a-O1", "b-O1"]
    # A second waiting job gets other agents, or none when they are all held.
    other = JobDemand.of([task("o", "other").gpus(4).build()])
    assert cycle.reserve(other) == ("c",)
    assert cycle.reserve(JobDemand.of([task("p", "p").gpus(4).build()])) == ()


def test_reserve_needs_a_catalog_and_a_job_that_can_fit_somewhere():
    gang = JobDemand.of([task("w", "big").gpus(8).build()])
    assert PLANNER.start(view(agent("a").gpus(2))).reserve(gang) == ()
    assert PLANNER.start(view(agent("a").gpus(2), catalog=[agent("a").gpus(4)])).reserve(gang) == ()


def test_held_agents_are_counted_alike_in_bulk_and_agent_by_agent():
    agents = [agent("c1"), agent("g1").gpus(1), agent("g2").gpus(2), agent("g4").gpus(4)]
    ledger = CapacityLedger([a.build() for a in agents], PlacementPolicy())
    ledger.hold("g4")
    ledger.hold("c1")
    stack = PlacementStack(ledger, PlacementPolicy())
    for demand in (task().gpus(4).build(), task().cpus(64).build(), task().gpus(2).mem(10**9).build()):
        ctx = context(demand)
        found, counts = stack.select(demand, ctx)
        assert found is None
        assert dict(counts) == stack.explain(demand.needs, ctx)
        assert dict(counts)["held for a waiting job"] == 2


def test_a_remembered_never_fits_names_the_member_of_this_job():
    catalog = [agent("a").gpus(4)]
    busy = view(agent("a").gpus(1), catalog=catalog)
    cycle = PLANNER.start(busy)

    def gang(job: str) -> JobDemand:
        small, large = task(f"{job}.w-0", job).gpus(1).build(), task(f"{job}.w-1", job).gpus(8).build()
        return JobDemand.of([small, large])

    first, again = cycle.place(gang("j1")), cycle.place(gang("j2"))
    assert isinstance(first, NeverFits) and first.task_id == "j1.w-1"
    assert isinstance(again, NeverFits) and again.task_id == "j2.w-1" and again.counts == first.counts
