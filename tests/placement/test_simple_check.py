"""`simple_failure` (`SIMPLE_CHECK`, the one-call filter the scans use for simple demands) answers, for
every agent, the reason the filters it stands for give, first failing first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core.placement import PlacementPolicy
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, SIMPLE_CHECK, SIMPLE_FILTERS, first_failure
from mesos_gpu.core.placement.state import CapacityLedger
from tests.placement.builders import context, task
from tests.placement.strategies import agent_builders


@given(agent_builders(max_agents=8), st.sampled_from([0.01, 0.5, 1, 4, 32]), st.sampled_from([1, 512, 65536]),
       st.sampled_from([0, 10, 10**6]), st.sampled_from([0, 1, 300]))
def test_the_simple_check_answers_as_the_filters_it_stands_for(builders, cpus, mem, disk, ports):
    policy = PlacementPolicy()
    ledger = CapacityLedger([b.build() for b in builders], policy)
    demand = task().cpus(cpus).mem(mem).disk(disk).ports(ports).build()
    assert demand.needs.is_simple
    ctx = context(demand)
    for candidate in ledger.agents:
        expected = first_failure(candidate, demand.needs, ctx, policy, AFTER_GPU_FILTERS)
        assert first_failure(candidate, demand.needs, ctx, policy, SIMPLE_CHECK) == expected
        assert first_failure(candidate, demand.needs, ctx, policy, SIMPLE_FILTERS) == expected
