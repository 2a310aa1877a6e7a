"""The replay's report details: the delay sample without repeats, the allocation curves over one span,
a node list without GPUs refused as the fill refuses it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.sim.fill import run_seed
from mesos_gpu.sim.policies import BY_NAME, FIFO_FIRST_FIT
from mesos_gpu.sim.replay import replay, spread_sample
from mesos_gpu.sim.replay_report import common_span
from mesos_gpu.sim.trace import NO_GPU
from tests.sim.test_replay import node, task

DEFAULT = BY_NAME["default"]


def test_every_delay_once_when_there_are_few() -> None:
    nodes = [node("N1", 2), node("N2", 1)]
    tasks = [task("a", 0, 100, gpus=2), task("b", 10, 50, gpus=2), task("c", 20, 30)]
    result = replay(nodes, tasks, [DEFAULT, FIFO_FIRST_FIT], dense_window=False, workers=1)
    for case in result.cases:
        assert len(case.delays) == case.placed == 3          # not the largest twice
        assert case.delays == sorted(case.delays)
    assert result.case(FIFO_FIRST_FIT.name).delays == [0.0, 80.0, 90.0]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0, 1e6), max_size=60), points=st.integers(1, 20))
def test_the_sample_spreads_from_first_to_last_without_repeating_a_position(values: list[float],
                                                                            points: int) -> None:
    ordered = sorted(values)
    positions = list(range(len(ordered)))
    sample = spread_sample(positions, points)
    assert sample == sorted(set(sample))                     # each position once, in order
    assert len(sample) == min(points, len(ordered))
    if ordered and points > 1:
        assert (sample[0], sample[-1]) == (0, len(ordered) - 1)
    assert spread_sample(ordered, points) == [ordered[i] for i in sample]


def test_the_allocation_curves_share_one_span() -> None:
    nodes = [node("N1", 2), node("N2", 1)]
    tasks = [task("a", 0, 100, gpus=2), task("b", 10, 50, gpus=2), task("c", 20, 30), task("e", 25, 500)]
    result = replay(nodes, tasks, [DEFAULT, FIFO_FIRST_FIT], dense_window=False, workers=1)
    ends = [case.allocation[-1][0] for case in result.cases]
    assert len(set(ends)) == 2                               # the runs end apart (FIFO later)
    curves = common_span(result)
    assert {curve[-1][0] for curve in curves} == {max(ends)}
    for case, curve in zip(result.cases, curves, strict=True):
        assert curve[:len(case.allocation)] == case.allocation
        assert curve[-1][1] == case.allocation[-1][1]        # padded with its own last level


def test_a_node_list_without_gpus_is_refused_by_the_replay_as_by_the_fill() -> None:
    nodes = [node("C1", 0), node("C2", 0)]
    tasks = [task("a", 0, 100), task("c", 20, 30, gpus=0)]
    with pytest.raises(ValueError) as replayed:
        replay(nodes, tasks, [DEFAULT], dense_window=False, workers=1)
    with pytest.raises(ValueError) as filled:
        run_seed(nodes, tasks, DEFAULT, 0)
    assert str(replayed.value) == str(filled.value) == NO_GPU
