"""Review 9, finding 3: the agents held for a long-waiting job are held again in the next cycle
(`scheduling._hold_again`) only while the job still fits on them without the GPUs the profile in force
keeps for shares. Before (bde103e), an agent held at night stayed held by day although the day profile
keeps one of its GPUs and the job could never fit there by day (it kept shares off the agent for
nothing)."""

from __future__ import annotations

from mesos_gpu.core.placement import WaitReason
from mesos_gpu.core.placement.offers import catalog_from_master_state
from mesos_gpu.core.profiles import AgentGroup, Profile
from mesos_gpu.core.scheduling import GangRequest, make_planner
from mesos_gpu.core.sharing import ShareHostViews
from tests.scheduler.builders import offer, single_job

DAY = Profile("day", (AgentGroup({"pool": "interactive"}, 1),))
NIGHT = Profile("night", (AgentGroup({}, 0),))
POOL = {"pool": "interactive"}


def agents(*gpus: int, pool: dict[str, str] | None = None) -> tuple:
    return catalog_from_master_state({"slaves": [
        {"id": f"S{i}", "hostname": f"h{i}", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": float(n)},
         "attributes": dict(pool or POOL)} for i, n in enumerate(gpus)]})


def held(outcome: object) -> tuple[str, ...]:
    assert isinstance(outcome, WaitReason)
    return outcome.held


def waiting(job_id: str, gpus: int) -> list[GangRequest]:
    spec = single_job(job_id, gpus=gpus)
    return [GangRequest(job_id, spec, spec.tasks(job_id), reserve=True)]


def test_an_agent_held_at_night_is_not_held_again_by_day_when_the_job_fits_there_only_on_kept_gpus() -> None:
    catalog = agents(2)
    plan = make_planner(catalog=lambda: catalog)
    requests = waiting("big", 2)
    offers = (offer("S0", gpus=1, attributes=POOL),)       # one of S0's 2 GPUs busy
    assert held(plan(requests, offers, ShareHostViews((), NIGHT)).outcomes["big"]) == ("S0",)
    # by day S0 keeps 1 GPU for shares: big (2 GPUs) can never fit there by day: nothing to hold
    assert held(plan(requests, offers, ShareHostViews((), DAY)).outcomes["big"]) == ()


def test_by_day_the_job_is_held_on_another_agent_where_it_fits_without_the_kept_gpus() -> None:
    catalog = agents(2, 4)
    plan = make_planner(catalog=lambda: catalog)
    requests = waiting("big", 2)
    offers = (offer("S0", gpus=1, attributes=POOL), offer("S1", gpus=0, attributes=POOL))
    assert held(plan(requests, offers, ShareHostViews((), NIGHT)).outcomes["big"]) == ("S0",)
    assert held(plan(requests, offers, ShareHostViews((), DAY)).outcomes["big"]) == ("S1",)


def test_an_agent_that_still_fits_the_job_by_day_stays_held() -> None:
    catalog = agents(4, 4)
    plan = make_planner(catalog=lambda: catalog)
    requests = waiting("big", 3)
    # night: S1 has the most GPUs free, so it is held; by day S0 has more free, but S1 (4 GPUs, 1 kept)
    # still fits 3: it stays held (the hold does not follow the offers of the moment)
    night = (offer("S0", gpus=0, attributes=POOL), offer("S1", gpus=2, attributes=POOL))
    assert held(plan(requests, night, ShareHostViews((), NIGHT)).outcomes["big"]) == ("S1",)
    day = (offer("S0", gpus=2, attributes=POOL), offer("S1", gpus=1, attributes=POOL))
    assert held(plan(requests, day, ShareHostViews((), DAY)).outcomes["big"]) == ("S1",)
    fresh = make_planner(catalog=lambda: catalog)
    assert held(fresh(requests, day, ShareHostViews((), DAY)).outcomes["big"]) == ("S0",)   # afresh: S0
