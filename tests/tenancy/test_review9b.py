"""Review 9b's findings 3 and 4 on a7406c3, each with a test that failed on that code:

3. a failover after the victim's share ended but within its host's linger: the host (closed, lingering,
   holding its GPU) is unknown to the new leader (rebuilt from active members only), so no linger was
   added to the claim's settle wait and a second victim was stopped; the linger now comes from the
   victim's member record;
4. an agent held for a job but not offered in this cycle (busy) had no profile group (resolved from the
   offers only): held again by day without the kept-GPU check, and a fresh hold could choose it where the
   job fits only on the GPUs the day profile keeps; its group now comes from the catalog's attributes.
"""

from __future__ import annotations

from mesos_gpu.core.commands import KillTask
from mesos_gpu.core.events import Subscribed
from mesos_gpu.core.model import JobState
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.sharing import ShareHostViews
from tests.scheduler.builders import offer
from tests.scheduler.test_state import of_type
from tests.tenancy.test_hold_review9 import DAY, NIGHT, POOL, agents, held, waiting
from tests.tenancy.test_preempt import task_of
from tests.tenancy.test_preempt_gaps import recovered
from tests.tenancy.test_preempt_review9 import share_preempted_for_big


def test_a_failover_after_the_victim_ended_within_the_linger_stops_no_second_victim() -> None:
    h = share_preempted_for_big()
    h.update(task_of(h, "s1"), "TASK_KILLED")       # s1 ended: its host lingers 30 s, holding the GPU
    h.now += 1
    h = recovered(h, None)                             # failover now: the host is unknown to the new leader
    h(Subscribed("F", h.tick()))
    assert not h.state.share_hosts
    out: list[KillTask] = []
    for _ in range(5):                                 # ~25 s: within the linger
        h.now += 5
        out += of_type(h.offers(offer("S1", gpus=0, gpu_memory=16000), offer("S2", gpus=0)), KillTask)
    assert out == [] and h.job("w").state is JobState.RUNNING
    for _ in range(6):                                 # past linger + settle: the claim may preempt again
        h.now += 5
        out += of_type(h.offers(offer("S1", gpus=0, gpu_memory=16000), offer("S2", gpus=0)), KillTask)
    assert [k.task_id for k in out] == [task_of(h, "w")]


def test_a_held_agent_not_offered_by_day_is_not_held_again_where_the_job_fits_only_on_kept_gpus() -> None:
    catalog = agents(2, 4)
    plan = make_planner(catalog=lambda: catalog)
    requests = waiting("big", 2)
    night = (offer("S0", gpus=1, attributes=POOL), offer("S1", gpus=0, attributes=POOL))
    assert held(plan(requests, night, ShareHostViews((), NIGHT)).outcomes["big"]) == ("S0",)
    day = (offer("S1", gpus=0, attributes=POOL),)     # S0 (2 GPUs, 1 kept by day) busy: not offered
    assert held(plan(requests, day, ShareHostViews((), DAY)).outcomes["big"]) == ("S1",)


def test_a_held_agent_not_offered_that_still_fits_by_day_stays_held() -> None:
    catalog = agents(4, 4)
    plan = make_planner(catalog=lambda: catalog)
    requests = waiting("big", 3)
    night = (offer("S0", gpus=0, attributes=POOL), offer("S1", gpus=2, attributes=POOL))
    assert held(plan(requests, night, ShareHostViews((), NIGHT)).outcomes["big"]) == ("S1",)
    day = (offer("S0", gpus=2, attributes=POOL),)     # S1 busy: 4 GPUs, 1 kept, still fits 3
    assert held(plan(requests, day, ShareHostViews((), DAY)).outcomes["big"]) == ("S1",)


def test_a_fresh_hold_by_day_never_chooses_an_unoffered_agent_where_the_job_fits_only_on_kept_gpus() -> None:
    catalog = agents(2, 2)
    plan = make_planner(catalog=lambda: catalog)
    requests = waiting("big", 2)
    day = (offer("S1", gpus=0, attributes=POOL),)       # S0 fully busy: not offered
    assert held(plan(requests, day, ShareHostViews((), DAY)).outcomes["big"]) == ()
    assert held(plan(requests, day, ShareHostViews((), NIGHT)).outcomes["big"]) != ()   # by night it may
