"""Every scorer, as named table cases: values in [0, 1], None when not applicable."""

from __future__ import annotations

import pytest

from mesos_gpu.core.placement import PlacementPolicy
from mesos_gpu.core.placement.scorers import SCORERS, combined_score, gpu_binpack, job_locality, ps_spread
from tests.placement.builders import agent, agent_state, context, task

HOME = agent_state(agent("home").rack("r1"))
NEIGHBOUR = agent_state(agent("neighbour").rack("r1"))
FAR = agent_state(agent("far").rack("r2"))

# (name, scorer, agent state, task, placed (agent, role) pairs, expected score)
CASES = [
    ("binpack: last gpu taken is a perfect fit", gpu_binpack, agent_state(agent("a").gpus(1)),
     task().gpus(1), (), 1.0),
    ("binpack: 1 of 8 free gpus", gpu_binpack, agent_state(agent("a").gpus(8)), task().gpus(1), (), 1 / 8),
    ("binpack: share of the agent's total", gpu_binpack, agent_state(agent("a").gpus(2).total(gpus=8)),
     task().gpus(1), (), 1 - 1 / 8),
    ("binpack: cpu task prefers gpu agent with gpus taken", gpu_binpack,
     agent_state(agent("a").gpus(0).total(gpus=4)), task(), (), 1.0),
    ("binpack: cpu task on gpu agent with free gpus", gpu_binpack,
     agent_state(agent("a").gpus(4)), task(), (), 0.0),
    ("binpack: not applicable without gpus", gpu_binpack, agent_state(agent("a")), task(), (), None),
    ("spread: ps on an agent without ps", ps_spread, HOME, task().role("ps"), ((FAR, "ps"),), 1.0),
    ("spread: ps next to one ps", ps_spread, HOME, task().role("ps"), ((HOME, "ps"),), 0.5),
    ("spread: ps next to two ps", ps_spread, HOME, task().role("ps"), ((HOME, "ps"), (HOME, "ps")), 1 / 3),
    ("spread: workers are not spread", ps_spread, HOME, task().role("worker"), ((HOME, "worker"),), None),
    ("locality: same agent", job_locality, HOME, task(), ((HOME, "chief"),), 1.0),
    ("locality: same rack", job_locality, NEIGHBOUR, task(), ((HOME, "chief"),), 0.5),
    ("locality: other rack", job_locality, FAR, task(), ((HOME, "chief"),), 0.0),
    ("locality: nothing placed yet", job_locality, FAR, task(), (), None),
    ("locality: ps are spread instead", job_locality, HOME, task().role("ps"), ((HOME, "chief"),), None),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_scorer(case):
    _, scorer, state, task_b, placed, expected = case
    demand = task_b.build()
    score = scorer(state, demand, context(demand, placed_on=placed))
    if expected is None:
        assert score is None
    else:
        assert score == pytest.approx(expected)
        assert 0.0 <= score <= 1.0


def test_every_scorer_has_a_table_case():
    assert {case[1] for case in CASES} == set(SCORERS.values())


def test_combined_score_is_the_weighted_mean_of_applicable_scorers():
    demand = task().role("ps").gpus(0).build()
    ctx = context(demand, placed_on=((HOME, "ps"),))
    weights = PlacementPolicy().weights
    # binpack: not applicable (no gpus); spread 0.5; locality: not for ps
    assert combined_score(HOME, demand, ctx, weights) == pytest.approx(0.5)
    worker = task().role("worker").gpus(1).build()
    gpu_home = agent_state(agent("g").gpus(2))              # binpack 0.5, locality 0 (nothing there)
    ctx = context(worker, placed_on=((HOME, "chief"),))
    assert combined_score(gpu_home, worker, ctx, {"gpu_binpack": 3.0, "job_locality": 1.0}) == \
        pytest.approx(0.375)
    assert combined_score(HOME, task().build(), context(), weights) == 0.0
