"""The placement stack: its choice is the general scoring's, its filters for simple demands are FILTERS'."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core.placement import PlacementPolicy
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, SIMPLE_FILTERS, first_failure
from mesos_gpu.core.placement.scorers import best_agent, combined_score
from mesos_gpu.core.placement.stack import PlacementStack
from mesos_gpu.core.placement.state import CapacityLedger
from tests.placement.builders import agent, context, task
from tests.placement.strategies import agent_builders

NO_PACKING = PlacementPolicy(
    weights=MappingProxyType({"gpu_binpack": 0.0, "ps_spread": 2.0, "job_locality": 1.0})
)


def reference_best(agents, demand, ctx, weights):
    """The first agent with the highest weighted mean of the applicable scorers (the general path)."""
    best, best_score = agents[0], -1.0
    for candidate in agents:
        score = combined_score(candidate, demand, ctx, weights)
        if score > best_score:
            best, best_score = candidate, score
    return best


@given(agent_builders(max_agents=8), st.sampled_from([0, 1, 2, 4]), st.booleans())
def test_the_stack_scores_with_the_general_weighted_mean(builders, gpus, packing):
    policy = PlacementPolicy() if packing else NO_PACKING
    ledger = CapacityLedger([b.build() for b in builders], policy)
    demand = task().gpus(gpus).build()
    ctx = context(demand)
    chosen = best_agent(ledger.agents, demand, ctx, policy.weights)
    assert chosen is reference_best(ledger.agents, demand, ctx, policy.weights)


@given(agent_builders(max_agents=8), st.sampled_from([0.5, 1, 4, 32]), st.sampled_from([0, 1, 300]))
def test_simple_filters_answer_as_the_filters_they_stand_for(builders, cpus, ports):
    policy = PlacementPolicy()
    ledger = CapacityLedger([b.build() for b in builders], policy)
    demand = task().cpus(cpus).ports(ports).build()
    assert demand.needs.is_simple
    ctx = context(demand)
    for candidate in ledger.agents:
        assert first_failure(candidate, demand.needs, ctx, policy, SIMPLE_FILTERS) == \
            first_failure(candidate, demand.needs, ctx, policy, AFTER_GPU_FILTERS)


def test_lone_cpu_task_takes_the_first_cpu_agent_that_fits():
    agents = [agent("small").cpus(0.5), agent("c1"), agent("c2"), agent("g").gpus(2)]
    ledger = CapacityLedger([a.build() for a in agents], PlacementPolicy())
    stack = PlacementStack(ledger, PlacementPolicy())
    demand = task().cpus(1).build()
    chosen, counts = stack.select(demand, context(demand))
    assert chosen is not None and chosen.agent_id == "c1" and counts == ()


def test_agents_passed_over_move_to_the_back_even_when_nothing_fits():
    agents = [agent("tiny").cpus(0.5).gpus(1), agent("big").cpus(16).gpus(1)]
    ledger = CapacityLedger([a.build() for a in agents], PlacementPolicy())
    stack = PlacementStack(ledger, PlacementPolicy())
    too_big = task().cpus(64).gpus(1).build()
    found, counts = stack.select(too_big, context(too_big))
    assert found is None and dict(counts) == {"insufficient cpus": 2}
    assert [a.agent_id for a in ledger.gpu_buckets[1].values()] == ["tiny", "big"]   # both moved, in order
    fits = task().cpus(0.5).gpus(1).build()
    found, _ = stack.select(fits, context(fits))
    assert found is not None and found.agent_id == "tiny"
    heavy = task().cpus(8).gpus(1).build()
    found, _ = stack.select(heavy, context(heavy))
    assert found is not None and found.agent_id == "big"
    assert [a.agent_id for a in ledger.gpu_buckets[1].values()] == ["big", "tiny"]
