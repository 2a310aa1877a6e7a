"""Decline filters in step while jobs wait (`core.declinegrid`): offers declined in different rounds come
back in one round, so a gang whose free GPUs lie on two agents is offered both (issue 17: the long soak
saw 2 x 1-GPU gangs wait out the drain while each agent's offer came alone)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core.declinegrid import aligned_refuse
from mesos_gpu.core.model import JobState
from mesos_gpu.core.state import Accept, Decline, OffersReceived
from tests.scheduler.builders import offer, tf_job
from tests.scheduler.test_state import Harness, of_type


@given(now=st.floats(0, 1e7, allow_nan=False), refuse=st.floats(0.01, 600, allow_nan=False))
def test_a_filter_ends_on_the_grid_and_lasts_about_as_long(now: float, refuse: float) -> None:
    seconds = aligned_refuse(now, refuse)
    slack = 0.0005 + 1e-6 * max(1.0, now)   # whole milliseconds, and the float error of `now`
    assert refuse / 2 - slack <= seconds <= 1.5 * refuse + slack
    assert seconds == round(seconds, 3)
    ends = now + seconds
    assert abs(ends - round(ends / refuse) * refuse) <= slack


def test_filters_set_in_different_rounds_end_together() -> None:
    table = [(10.3, 12.0), (10.9, 12.0), (11.0, 12.0), (11.2, 14.0), (0.0, 2.0), (3.0, 4.0)]
    for now, end in table:
        assert math.isclose(now + aligned_refuse(now, 2.0), end), (now, end)


def test_no_grid_for_a_filter_of_no_length() -> None:
    assert aligned_refuse(5.0, 0.0) == 0.0
    assert aligned_refuse(5.0, -1.0) == -1.0
    assert math.isinf(aligned_refuse(5.0, math.inf))


def test_a_gang_declined_agent_by_agent_gets_both_agents_back_in_one_round() -> None:
    h = Harness()
    h.subscribe()
    h.submit("dist", tf_job(workers=2, ps=0, chief=0, gpus=1))   # 2 x 1 GPU; each agent has one free
    # S1 is offered alone (its filter ended), then S2 alone 0.7 s later: neither fits the gang alone.
    first = h(OffersReceived((offer("S1", gpus=1),), 20.2))
    second = h(OffersReceived((offer("S2", gpus=1),), 20.9))
    (d1,) = of_type(first, Decline)
    (d2,) = of_type(second, Decline)
    assert h.job("dist").state is JobState.PENDING
    assert math.isclose(20.2 + d1.refuse_seconds, 20.9 + d2.refuse_seconds)   # both come back at 22.0
    # The master's next batch after that instant offers both agents in one OFFERS event: the gang runs.
    both = h(OffersReceived((offer("S1", gpus=1), offer("S2", gpus=1)), 22.0))
    assert sorted(accept.agent_id for accept in of_type(both, Accept)) == ["S1", "S2"]
    assert h.job("dist").state is JobState.STAGING


def test_the_idle_filter_is_not_aligned() -> None:
    h = Harness()
    h.subscribe()
    (decline,) = of_type(h(OffersReceived((offer("S1"),), 7.3)), Decline)
    assert decline.refuse_seconds == h.state.refuse_seconds_idle
