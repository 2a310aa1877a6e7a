"""Cpu-aware GPU best fit (`PlacementStack._unstranded`): a lone GPU task does not strand GPUs behind cpus."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.placement import GangPlanner, PlacementPolicy, Plan
from mesos_gpu.core.placement import stack as stack_module
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, first_failure
from mesos_gpu.core.placement.fragmentation import FragmentationTable, TaskSizes
from mesos_gpu.core.placement.stack import UNSTRANDED_SCAN, PlacementStack
from mesos_gpu.core.placement.state import CapacityLedger
from tests.placement.builders import agent, context, task, view
from tests.placement.strategies import agent_builders


def stack_of(agents, policy: PlacementPolicy | None = None, free_on=None) -> PlacementStack:
    """A stack over `agents` measuring against tasks of one GPU per cpu (r = 1)."""
    policy = policy or PlacementPolicy()
    sizes = TaskSizes()
    sizes.add(1000, 1, 1000)
    ledger = CapacityLedger([a.build() for a in agents], policy)
    stack = PlacementStack(ledger, policy)
    stack.use_fragmentation(FragmentationTable(sizes), free_on or {})
    return stack


def chosen(stack: PlacementStack, demand) -> str | None:
    found, _ = stack.select(demand, context(demand))
    return None if found is None else found.agent_id


TIGHT_AND_ROOMY = [agent("tight").gpus(2).cpus(4), agent("roomy").gpus(4).cpus(16)]


def test_a_cpu_heavy_gpu_task_skips_the_best_fit_whose_last_gpu_it_would_strand():
    # On "tight" the task leaves 1 GPU and no cpu: that GPU is stranded; "roomy" keeps cpus for its GPUs.
    demand = task().gpus(1).cpus(4).build()
    assert chosen(stack_of(TIGHT_AND_ROOMY), demand) == "roomy"
    assert chosen(stack_of(TIGHT_AND_ROOMY, PlacementPolicy(cpu_aware_gpu_fit=False)), demand) == "tight"


def test_a_cpu_light_gpu_task_keeps_the_best_fit():
    assert chosen(stack_of(TIGHT_AND_ROOMY), task().gpus(1).cpus(1).build()) == "tight"


def test_a_perfect_fit_ends_the_search():
    agents = [agent("exact").gpus(1).cpus(1), agent("roomy").gpus(4).cpus(16)]
    assert chosen(stack_of(agents), task().gpus(1).cpus(1).build()) == "exact"


def test_when_every_agent_strands_the_least_stranding_one_is_taken():
    agents = [agent("worse").gpus(4).cpus(4), agent("better").gpus(2).cpus(4)]
    # worse: 3 GPUs free, 0 cpus left (3000 stranded, was 0); better: 1 GPU free, 0 cpus (1000, was 0).
    assert chosen(stack_of(agents), task().gpus(1).cpus(4).build()) == "better"


def test_share_host_fractions_count_as_free_gpu_of_their_agent():
    # After the task "tight" has 0.5 cpu left: enough for no GPU free, not for 0.9 GPU on its share hosts.
    agents = [agent("tight").gpus(1).cpus(2.5), agent("roomy").gpus(2).cpus(16)]
    demand = task().gpus(1).cpus(2).build()
    assert chosen(stack_of(agents), demand) == "tight"
    assert chosen(stack_of(agents, free_on={0: 900}), demand) == "roomy"


def test_reasons_count_each_agent_once_when_nothing_fits():
    stack = stack_of([agent("a").gpus(1).cpus(1), agent("b").gpus(2).cpus(2)])
    demand = task().gpus(1).cpus(8).build()
    found, counts = stack.select(demand, context(demand))
    assert found is None and dict(counts) == {"insufficient cpus": 2}
    assert stack.explain(demand.needs, context(demand)) == {"insufficient cpus": 2}


def test_the_planner_places_cpu_aware_once_it_has_seen_tasks():
    # t0 (1 GPU, 1 cpu) fits "exact"; then r = 2 GPUs per 5 cpus, and t1 on "tight" would leave 1 GPU
    # with no cpu (stranded 1 GPU, 0.4 before).
    cycle = GangPlanner().start(view(agent("exact").gpus(1).cpus(1), agent("tight").gpus(2).cpus(4),
                                     agent("roomy").gpus(4).cpus(16)))
    placed = []
    for name, cpus in (("t0", 1), ("t1", 4)):
        outcome = cycle.place([task(name, name).gpus(1).cpus(cpus).build()])
        assert isinstance(outcome, Plan)
        placed.append(outcome.placements[0].agent_id)
    assert placed == ["exact", "roomy"]


def reference_unstranded(stack: PlacementStack, needs, ctx, counts, missed, *, r: float, free_on,
                         scan: int) -> list:
    """`_unstranded` as its docstring says, agent by agent through every filter (no shortcut)."""
    policy, limit = stack.policy, stack.policy.candidate_limit
    found, best, best_growth, visited, budget = [], None, 0.0, 0, 4 * stack.policy.candidate_limit
    whole = needs.gpu_slots
    for candidate in [a for bucket in stack.ledger.gpu_buckets[whole:] for a in bucket.values()]:
        reason = first_failure(candidate, needs, ctx, policy, AFTER_GPU_FILTERS)
        if reason is None:
            free = candidate.gpus + free_on.get(candidate.index, 0)
            after = free - needs.gpus - (candidate.cpus - needs.cpus) * r
            growth = after - max(free - candidate.cpus * r, 0.0) if after > 0 else 0.0
            if growth <= 0:
                if candidate.gpus == needs.gpus:
                    return [candidate]
                found.append(candidate)
                if len(found) >= limit:
                    return found
                continue
            if best is None or growth < best_growth:
                best, best_growth = candidate, growth
            visited += 1
            if visited >= scan and not found:
                return [best]
        if found:
            budget -= 1
            if not budget:
                return found
        elif best is None and reason is not None:
            counts[reason] = counts.get(reason, 0) + 1
            if not candidate.unhealthy:
                missed.append(candidate)
    return found or ([best] if best is not None else [])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_unstranded_scan_chooses_and_counts_as_every_filter_would(data: st.DataObject) -> None:
    # The scan's simple-demand shortcut (no filter call for an agent that fits) and its nested loops
    # decide, count and pass over agents as running the filters on every agent in best-fit order does;
    # on a few agents or many (its budget and its `UNSTRANDED_SCAN` cut-off reached: that one made small).
    many = data.draw(st.booleans())
    builders = data.draw(agent_builders(max_agents=40 if many else 10))
    for builder in builders:
        builder.disk(data.draw(st.sampled_from([10_000, 100_000])))
    limit = data.draw(st.sampled_from([1, 2, 4]))
    gpus = data.draw(st.sampled_from([1, 2, 4]))
    builder = task().gpus(gpus).cpus(data.draw(st.sampled_from([0.5, 1, 4, 12])))
    builder.mem(data.draw(st.sampled_from([512, 4096, 100_000])))
    builder.disk(data.draw(st.sampled_from([0, 50_000])))
    builder.ports(data.draw(st.sampled_from([0, 1, 300])))
    constrained = data.draw(st.booleans())
    if constrained:
        builder = builder.constraint("gpu_model", "UNLIKE", "T4")
    demand = builder.build()
    assert demand.needs.is_simple is not constrained
    scan = data.draw(st.sampled_from([2, 3, UNSTRANDED_SCAN])) if many else UNSTRANDED_SCAN
    stack = stack_of(builders, PlacementPolicy(candidate_limit=limit), free_on={0: 500})
    stack._table.refresh()
    r = stack._table.gpu_per_cpu
    assert r == 1.0
    ctx = context(demand)
    counts: dict[str, int] = {}
    expected_counts: dict[str, int] = {}
    expected_missed: list = []
    whole = demand.needs.gpu_slots
    kept = stack_module.UNSTRANDED_SCAN
    stack_module.UNSTRANDED_SCAN = scan
    try:
        got = stack._unstranded(stack.ledger.gpu_buckets[whole:], demand.needs, ctx, counts)
    finally:
        stack_module.UNSTRANDED_SCAN = kept
    expected = reference_unstranded(stack, demand.needs, ctx, expected_counts, expected_missed, r=r,
                                    free_on={0: 500}, scan=scan)
    assert [a.agent_id for a in got] == [a.agent_id for a in expected]
    assert counts == expected_counts
    assert [a.agent_id for a in stack._missed] == [a.agent_id for a in expected_missed]


def unstranded_ids(stack: PlacementStack, demand) -> list[str]:
    stack._table.refresh()
    buckets = stack.ledger.gpu_buckets[demand.needs.gpu_slots:]
    found = stack._unstranded(buckets, demand.needs, context(demand), {})
    return [a.agent_id for a in found]


def test_the_unstranded_scan_stops_at_its_budget_once_one_agent_is_found() -> None:
    # limit 2: once u1 is found, 8 (4 x limit) more agents are visited: the 8 that would strand, not u2.
    stranding = [agent(f"s{i}").gpus(2).cpus(2) for i in range(8)]
    roomy = [agent("u1").gpus(2).cpus(16), *stranding, agent("u2").gpus(2).cpus(16)]
    demand = task().gpus(1).cpus(2).build()
    assert unstranded_ids(stack_of(roomy, PlacementPolicy(candidate_limit=2)), demand) == ["u1"]
    fewer = [agent("u1").gpus(2).cpus(16), *stranding[:7], agent("u2").gpus(2).cpus(16)]
    assert unstranded_ids(stack_of(fewer, PlacementPolicy(candidate_limit=2)), demand) == ["u1", "u2"]


def test_when_every_agent_strands_the_least_stranding_of_the_first_scanned_is_taken(monkeypatch) -> None:
    # Each agent strands less than the one before it (growth 1000, 500, 200, 100): with 3 scanned, s3.
    agents = [agent(f"s{i}").gpus(2).cpus(cpus) for i, cpus in enumerate((2, 2.5, 2.8, 2.9), start=1)]
    demand = task().gpus(1).cpus(2).build()
    assert unstranded_ids(stack_of(agents), demand) == ["s4"]
    monkeypatch.setattr(stack_module, "UNSTRANDED_SCAN", 3)
    assert unstranded_ids(stack_of(agents), demand) == ["s3"]
