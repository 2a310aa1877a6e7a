"""FGD (Weng et al., ATC '23): the fragmentation measure on hand-computed tables and on the paper
simulator's own examples, the fast measure against the definition, and the strategy's choices."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.placement import GangPlanner, JobDemand, PlacementPolicy, Plan
from mesos_gpu.core.placement.fgd import (
    STACKS,
    FgdShareStack,
    FgdStack,
    Measure,
    TaskShape,
    cluster_fragmentation,
    node_fragmentation,
    task_fragmentation,
)
from mesos_gpu.core.placement.fragmentation import TaskSizes
from mesos_gpu.core.placement.strategies import stacks_for
from tests.placement.builders import agent, task, view
from tests.placement.test_shares import grant_of, host, share

FGD = PlacementPolicy(strategy="fgd", cpu_tasks_on_gpu_agents=True)

# (cpus free, per-GPU free, task shape) -> F_n(m), by hand.
TASK_CASES = [
    ((8000, (1000, 1000), TaskShape(1000, 1000, 1)), 0),        # a whole GPU fits: no GPU is partial
    ((8000, (1000, 500), TaskShape(1000, 1000, 1)), 500),       # the half-free GPU cannot hold it
    ((8000, (1000, 500), TaskShape(1000, 1000, 2)), 1500),      # two whole GPUs: cannot run at all
    ((500, (1000, 1000), TaskShape(1000, 1000, 1)), 2000),      # too few cpus: every free GPU
    ((8000, (200, 600, 350), TaskShape(1000, 300, 1)), 200),    # a 0.3 share: only the 0.2 is a fragment
    ((8000, (200, 250), TaskShape(1000, 300, 1)), 450),         # no GPU has 0.3 free
    ((8000, (700, 1000), TaskShape(0, 0, 0)), 1700),            # a CPU task uses no GPU (the simulator's XL)
    ((8000, (), TaskShape(1000, 1000, 1)), 0),                  # nothing free, nothing fragmented
    ((1000, (200, 1000, 1000, 500), TaskShape(100, 1000, 2)), 700),   # frag.go's GetGpuFragMilli cases
    ((1000, (200, 1000, 1000, 500), TaskShape(100, 200, 2)), 0),
]


@pytest.mark.parametrize(("node", "expected"), TASK_CASES)
def test_task_fragmentation_by_hand(node, expected):
    cpus, frees, shape = node
    assert task_fragmentation(cpus, frees, shape) == expected


# The paper simulator's workload of its test `TestNodeGpuShareFragAmountWithNonGpu` (utils/frag_test.go):
# (cpus, GPU per device, devices, % of pods), CPU pods included.
PAPER_WORKLOAD = [(TaskShape(c, g, d), pct / 100) for c, g, d, pct in (
    (15700, 1000, 1, 28.69), (11900, 1000, 1, 18.93), (11400, 1000, 1, 12.27), (1000, 0, 0, 7.36),
    (18710, 1000, 1, 4.85), (8200, 1000, 1, 3.79), (16400, 1000, 1, 3.31), (9810, 1000, 1, 1.97),
    (15200, 1000, 1, 1.87), (11200, 1000, 1, 1.81), (14200, 1000, 1, 1.76), (12000, 0, 0, 1.65),
    (14900, 1000, 1, 1.39), (60200, 1000, 4, 1.23), (64200, 1000, 8, 1.07), (32200, 1000, 4, 1.01),
    (17400, 1000, 2, 0.91), (30200, 1000, 2, 0.69), (16000, 1000, 1, 0.64), (15000, 1000, 1, 0.59),
    (64000, 1000, 8, 0.53), (15000, 0, 0, 0.53), (11910, 1000, 1, 0.53), (120200, 1000, 8, 0.48),
    (11300, 1000, 1, 0.37), (30000, 1000, 2, 0.32), (9800, 1000, 1, 0.32), (8000, 1000, 1, 0.32),
    (2000, 1000, 1, 0.27), (2000, 80, 1, 0.27), (1000, 1000, 1, 0.27))]


@pytest.mark.parametrize(("cpus", "frees", "expected"), [
    (64000, (1000,) * 8, 887.20),               # "8xP100_empty"
    (32000, (1000,) * 4 + (0,) * 4, 554.40),    # "8xP100_halved"
    (0, (1000,) * 4 + (0,) * 4, 4000.0),        # "8xP100_nocpu"
])
def test_the_paper_simulators_examples(cpus, frees, expected):
    assert node_fragmentation(cpus, frees, PAPER_WORKLOAD) == pytest.approx(expected, abs=0.01)
    assert Measure(PAPER_WORKLOAD).node(cpus, tuple(sorted(frees))) == pytest.approx(expected, abs=0.01)


def test_lack_of_cpus_counts_every_free_gpu():
    # frag_test.go "4x1080_used_lack_CPU": one pod shape, 6 cpus and 0.465 GPU, 9.33 % of the pods.
    workload = [(TaskShape(6000, 465, 1), 0.0933)]
    assert node_fragmentation(1000, (200, 1000, 1000, 500), workload) == pytest.approx(251.91, abs=0.01)


def test_cluster_fragmentation_sums_the_nodes():
    workload = [(TaskShape(1000, 1000, 1), 0.5), (TaskShape(1000, 500, 1), 0.5)]
    nodes = [(8000, (1000, 300)), (0, (1000,)), (8000, ())]
    # node 1: whole -> 300, share -> 300; node 2: no cpus -> 1000; node 3: nothing free.
    assert cluster_fragmentation(nodes, workload) == pytest.approx(300 + 1000)


shapes = st.one_of(
    st.builds(TaskShape, st.sampled_from([0, 1000, 4000, 16000]), st.just(0), st.just(0)),
    st.builds(TaskShape, st.sampled_from([0, 1000, 4000, 16000]), st.integers(1, 999), st.just(1)),
    st.builds(TaskShape, st.sampled_from([0, 1000, 4000, 16000]), st.just(1000),
              st.sampled_from([1, 2, 4, 8])),
    st.builds(TaskShape, st.sampled_from([1000, 4000]), st.integers(1, 999), st.integers(2, 3)),
)


@settings(max_examples=300, deadline=None)
@given(workload=st.lists(st.tuples(shapes, st.floats(0.01, 1.0)), max_size=8),
       cpus=st.integers(0, 20000), frees=st.lists(st.integers(0, 1000), max_size=9))
def test_the_fast_measure_is_the_definition(workload, cpus, frees):
    ordered = tuple(sorted(frees))
    assert Measure(workload).node(cpus, ordered) == pytest.approx(
        node_fragmentation(cpus, ordered, workload), rel=1e-9, abs=1e-6)


def test_task_sizes_keep_the_joint_shapes():
    sizes = TaskSizes()
    sizes.observe("j1", [(500, 1, 2000)])
    sizes.observe("j1", [(500, 1, 2000)])       # the same job: counted once
    sizes.observe("j2", [(1000, 2, 8000)])
    found = dict(sizes.shapes())
    assert set(found) == {(2000, 500, 1), (8000, 1000, 2)}
    assert sum(found.values()) == pytest.approx(1.0)
    assert found[(8000, 1000, 2)] > found[(2000, 500, 1)]     # the newer weighs a little more


def test_the_strategy_is_registered():
    assert (FgdStack, FgdShareStack) == STACKS
    assert stacks_for(FGD) == STACKS


def planner_with(*observed: tuple[int, int, int]) -> GangPlanner:
    planner = GangPlanner(FGD)
    for n, size in enumerate(observed):
        planner.sizes.observe(f"seen{n}", [size])
    return planner


def test_a_whole_gpu_goes_where_fragmentation_grows_least_not_to_the_best_fit():
    # Workload: half 2-GPU tasks with 8 cpus, half 1-GPU tasks with 1 cpu. A 1-GPU task on "a" (2 GPUs,
    # 8 cpus) leaves 1 GPU and 7 cpus: the 2-GPU tasks cannot use it, F grows by 0.5 * 1000; on "b"
    # (3 GPUs, 64 cpus) both shapes still fit: F stays 0. Best fit would take "a".
    planner = planner_with(*[(1000, 2, 8000), (1000, 1, 1000)] * 10)
    workload = [(TaskShape(8000, 1000, 2), 0.5), (TaskShape(1000, 1000, 1), 0.5)]
    before = node_fragmentation(8000, (1000,) * 2, workload)
    assert node_fragmentation(7000, (1000,), workload) - before == 500
    before = node_fragmentation(64000, (1000,) * 3, workload)
    assert node_fragmentation(63000, (1000,) * 2, workload) - before == 0
    cycle = planner.start(view(agent("a").gpus(2).cpus(8), agent("b").gpus(3).cpus(64)))
    outcome = cycle.place(JobDemand.of([task("t", "t").gpus(1).cpus(1).build()]))
    assert isinstance(outcome, Plan) and outcome.placements[0].agent_id == "b"


def test_a_share_goes_to_the_device_where_fragmentation_grows_least():
    # Workload: half 0.5 shares, half 1-GPU tasks (1 cpu each). Choices for a 0.5 share:
    #   "a"'s host with 0.7 free: node (0.7) F 350 -> (0.2) F 200: -150;
    #   "b"'s host with 0.5 free: node (0.5, 1.0) F 250 -> (0, 1.0) F 0: -250;
    #   a new host on "b"'s whole GPU: (0.5, 1.0) -> (0.5, 0.5): F 500: +250.
    planner = planner_with(*[(500, 1, 1000), (1000, 1, 1000)] * 10)
    cycle = planner.start(view(agent("a").gpu_agent(True), agent("b").gpus(1)),
                          [host("ha", "a", used=300), host("hb", "b", used=500)])
    outcome = cycle.place(JobDemand.of([share("t", 0.5).build()]))
    assert grant_of(outcome).host_id == "hb"


def test_when_nothing_fits_the_default_reasons_are_given():
    cycle = GangPlanner(FGD).start(view(agent("a").gpus(1).cpus(2)))
    outcome = cycle.place(JobDemand.of([task("t", "t").gpus(1).cpus(4).build()]))
    assert not isinstance(outcome, Plan)
    assert dict(outcome.counts) == {"insufficient cpus": 1}
    outcome = cycle.place(JobDemand.of([share("s", 0.5).cpus(4).build()]))
    assert not isinstance(outcome, Plan) and dict(outcome.counts) == {"insufficient cpus": 1}


def test_a_cpu_task_falling_back_takes_a_healthy_gpu_agent_before_an_unhealthy_one():
    # Workload: 2-GPU tasks with 8 cpus. A 1-cpu task on healthy "h" (2 GPUs, 8 cpus) leaves 7 cpus: F
    # grows by 2000; on unhealthy "u" (64 cpus) F stays. The default's order still holds: healthy GPU
    # agents first, an unhealthy one only when none of them fits.
    planner = planner_with(*[(1000, 2, 8000)] * 10)
    nodes = (agent("c").cpus(0.5), agent("h").gpus(2).cpus(8), agent("u").gpus(2).cpus(64).unhealthy())
    small = planner.start(view(*nodes)).place(JobDemand.of([task("t", "t").cpus(1).build()]))
    assert isinstance(small, Plan) and small.placements[0].agent_id == "h"
    large = planner.start(view(*nodes)).place(JobDemand.of([task("l", "l").cpus(16).build()]))
    assert isinstance(large, Plan) and large.placements[0].agent_id == "u"
