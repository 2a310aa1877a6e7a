"""GPUs a profile keeps for share hosts (`core.placement.sharekeep`): whole-GPU work does not take them (any
strategy, gangs included), its wait reason says so, shares open hosts with them, a roll-back keeps them
again; a profile keeping 0 frees them. And the published strategies honour the profile's sizes on
existing hosts (tables, and Hypothesis properties over random clusters)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import GangPlanner, JobDemand, PlacementPolicy, Plan, WaitReason
from mesos_gpu.core.placement.offers import catalog_from_master_state
from mesos_gpu.core.placement.sharekeep import kept_reason
from mesos_gpu.core.placement.strategies import HEURISTICS
from mesos_gpu.core.profiles import AgentGroup, Profile
from mesos_gpu.core.scheduling import GangRequest, make_planner
from mesos_gpu.core.sharing import ShareHostView, ShareHostViews
from tests.placement.builders import agent, task, view
from tests.scheduler.builders import offer, single_job

STRATEGIES = ["default", "fgd", *sorted(HEURISTICS)]
DAY = Profile("day", (AgentGroup({"pool": "interactive"}, 1),))
DAY2 = Profile("day", (AgentGroup({}, 2),))
NIGHT = Profile("night", (AgentGroup({}, 0),))


def host(host_id: str, agent_id: str = "a", isolation: str = "capped", used: int = 250) -> ShareHostView:
    return ShareHostView(host_id, agent_id, Isolation(isolation), 0, used, 0)


def whole(job_id: str, gpus: int = 1):
    return task(job_id, job_id).gpus(gpus)


def share(job_id: str, gpus: float = 0.5, isolation: str = "capped"):
    return task(job_id, job_id).share(gpus, isolation)


def interactive(agent_id: str, gpus: int = 2):
    return agent(agent_id).gpus(gpus).attr("pool", "interactive")


def cycle(agents, hosts=(), profile=None, strategy: str = "default"):
    planner = GangPlanner(PlacementPolicy(strategy=strategy))
    return planner.start(view(*agents), ShareHostViews(hosts, profile))


def place(*jobs, agents, hosts=(), profile=None, strategy: str = "default"):
    planned = cycle(agents, hosts, profile, strategy)
    return [planned.place(JobDemand(b.build().job_id, (b.build(),))) for b in jobs]


def whole_on(outcome) -> dict[str, int]:
    """Whole GPUs (count) a plan takes per agent."""
    assert isinstance(outcome, Plan), outcome
    out: dict[str, int] = {}
    for placement in outcome.placements:
        if placement.share is None:
            gpus = placement.resources.scalar_milli("gpus") // 1000
            out[placement.agent_id] = out.get(placement.agent_id, 0) + gpus
    return out


# (name, agents, hosts, profile, jobs, expected: per job the agent (whole) / host id (share), None: waits)
TABLE = [
    ("no profile: every GPU for whole work", [interactive("a")], [], None,
     [whole("w1"), whole("w2")], ["a", "a"]),
    ("day keeps 1 of 2: the second whole job waits", [interactive("a")], [], DAY,
     [whole("w1"), whole("w2")], ["a", None]),
    ("day keeps 1 of 2: a 2-GPU job waits", [interactive("a")], [], DAY, [whole("w", 2)], [None]),
    ("a share host already holds the kept GPU: both free GPUs for whole work", [interactive("a")],
     [host("h1")], DAY, [whole("w", 2)], ["a"]),
    ("a draining host counts too (it holds its GPU)", [interactive("a")],
     [host("h1", isolation="shared")], Profile("day", (AgentGroup({}, 1, frozenset({Isolation.CAPPED})),)),
     [whole("w", 2)], ["a"]),
    ("night keeps 0: free again", [interactive("a")], [], NIGHT, [whole("w1"), whole("w2")], ["a", "a"]),
    ("an agent in no group keeps nothing", [agent("b").gpus(2)], [], DAY, [whole("w", 2)], ["b"]),
    ("a share opens its host on the kept GPU, the other stays whole", [interactive("a")], [], DAY,
     [share("s"), whole("w1"), whole("w2")], ["new:a:1", "a", None]),
    ("a share goes to the agent with a kept GPU, not to a whole one",
     [agent("b").gpus(1), interactive("a", 1)], [], DAY, [share("s")], ["new:a:1"]),
    ("keeps 2, one free: the only free GPU is kept", [agent("a").gpus(1)], [], DAY2, [whole("w")], [None]),
    ("keeps 2, one host opened: one more kept", [agent("a").gpus(3)], [], DAY2,
     [share("s"), whole("w1"), whole("w2")], ["new:a:1", "a", None]),
]


def where(outcome) -> str | None:
    if isinstance(outcome, WaitReason):
        return None
    assert isinstance(outcome, Plan), outcome
    placement = outcome.placements[0]
    return placement.share.host_id if placement.share is not None else placement.agent_id


CASES = [pytest.param(case, strategy, id=f"{case[0]}-{strategy}")
         for case in TABLE for strategy in STRATEGIES]


@pytest.mark.parametrize(("case", "strategy"), CASES)
def test_kept_gpus(case, strategy):
    _, agents, hosts, profile, jobs, expected = case
    outcomes = place(*jobs, agents=agents, hosts=hosts, profile=profile, strategy=strategy)
    assert [where(o) for o in outcomes] == expected


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_wait_reason_names_the_kept_gpus(strategy):
    agents = [interactive("a"), interactive("b"), agent("c").gpus(0).cpus(8)]
    outcomes = place(whole("w1"), whole("w2"), whole("w3"), agents=agents, profile=DAY, strategy=strategy)
    assert [where(o) for o in outcomes[:2]] == ["a", "b"] or sorted(map(where, outcomes[:2])) == ["a", "b"]
    waiting = outcomes[2]
    assert isinstance(waiting, WaitReason)
    # Two agents (one GPU kept on each) where it would fit but for the kept GPUs; one without GPUs.
    assert waiting.summary == \
        f"0/3 agents fit: 2 {kept_reason(2, 'day')}, 1 insufficient gpus", waiting.summary
    assert "2 insufficient gpus (2 gpus kept for gpu shares by profile 'day')" in waiting.summary


def test_a_job_that_would_not_fit_anyway_is_not_told_about_kept_gpus():
    (waiting,) = place(whole("w", 3), agents=[interactive("a")], profile=DAY)
    assert isinstance(waiting, WaitReason)
    assert "kept" not in waiting.summary
    assert "insufficient gpus" in waiting.summary


def test_a_gang_rolled_back_keeps_the_gpu_again():
    planned = cycle([interactive("a")], profile=DAY)
    # A share (opens a host with the kept GPU) and a member that can never fit: all rolled back.
    gang = JobDemand("g", (share("g").build(), task("g.x", "g").cpus(1000).build()))
    assert isinstance(planned.place(gang), WaitReason)
    assert isinstance(planned.place(JobDemand("w", (whole("w", 2).build(),))), WaitReason)
    assert where(planned.place(JobDemand("w1", (whole("w1").build(),)))) == "a"
    assert isinstance(planned.place(JobDemand("w2", (whole("w2").build(),))), WaitReason)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_whole_gpu_gang_does_not_take_kept_gpus(strategy):
    gang = JobDemand("g", tuple(task(f"g.{n}", "g").gpus(1).build() for n in range(3)))
    planned = cycle([interactive("a"), interactive("b")], profile=DAY, strategy=strategy)
    assert isinstance(planned.place(gang), WaitReason)
    gang2 = JobDemand("h", tuple(task(f"h.{n}", "h").gpus(1).build() for n in range(2)))
    assert whole_on(planned.place(gang2)) == {"a": 1, "b": 1}


# ------------------------------------------------------------------------------ sizes on existing hosts
SIZES = Profile("day", (AgentGroup({}, 2, frozenset({Isolation.CAPPED}), frozenset({500})),))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_size_not_offered_does_not_join_an_existing_host(strategy):
    # The host has room for 0.25 (0.5 used), but the profile offers 0.5 only: the share waits.
    (outcome,) = place(share("s", 0.25), agents=[agent("a").gpus(0)], hosts=[host("h1", used=500)],
                       profile=SIZES, strategy=strategy)
    assert isinstance(outcome, WaitReason), outcome
    (outcome,) = place(share("s", 0.5), agents=[agent("a").gpus(0)], hosts=[host("h1", used=500)],
                       profile=SIZES, strategy=strategy)
    assert where(outcome) == "h1"


# ------------------------------------------------------------------------------------------ Hypothesis
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STRATEGIES),
       st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.booleans()), min_size=1, max_size=4),
       st.integers(0, 3),
       st.lists(st.one_of(st.integers(1, 3), st.sampled_from([0.25, 0.5, 0.75])), max_size=10))
def test_no_whole_gpu_placement_takes_a_kept_gpu(strategy, agents, keep, jobs):
    profile = Profile("day", (AgentGroup({"pool": "interactive"}, keep),))
    builders, hosts, kept = [], [], {}
    for index, (free, count, grouped) in enumerate(agents):
        agent_id = f"a{index}"
        builder = agent(agent_id).gpus(free).cpus(64)
        builders.append(builder.attr("pool", "interactive") if grouped else builder)
        hosts += [host(f"{agent_id}-h{n}", agent_id, used=1000) for n in range(count)]
        kept[agent_id] = min(max(keep - count, 0), free) if grouped else 0
    planned = cycle(builders, hosts, profile, strategy)
    taken: dict[str, int] = {}
    opened: dict[str, set[str]] = {}
    for n, size in enumerate(jobs):
        job = (whole(f"j{n}", size) if isinstance(size, int) else share(f"j{n}", size)).build()
        outcome = planned.place(JobDemand(job.job_id, (job,)))
        if not isinstance(outcome, Plan):
            continue
        for placement in outcome.placements:
            if placement.share is None:
                taken[placement.agent_id] = taken.get(placement.agent_id, 0) + \
                    placement.resources.scalar_milli("gpus") // 1000
            elif placement.share.new_host:
                opened.setdefault(placement.agent_id, set()).add(placement.share.host_id)
    for index, (free, _, _) in enumerate(agents):
        agent_id = f"a{index}"
        # Whole-GPU work never takes a kept GPU; hosts opened take kept GPUs first.
        assert taken.get(agent_id, 0) <= free - kept[agent_id]
        assert taken.get(agent_id, 0) + len(opened.get(agent_id, ())) <= free


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(STRATEGIES),
       st.lists(st.tuples(st.sampled_from([250, 500, 750]), st.booleans()), min_size=1, max_size=4),
       st.lists(st.sampled_from([0.25, 0.5, 0.75]), min_size=1, max_size=8))
def test_no_share_of_a_size_not_offered_lands_anywhere(strategy, hosts, sizes):
    profile = Profile("day", (AgentGroup({}, None, frozenset({Isolation.CAPPED}), frozenset({500})),))
    views = [host(f"h{n}", "a" if on_a else "b", used=used) for n, (used, on_a) in enumerate(hosts)]
    planned = cycle([agent("a").gpus(2), agent("b").gpus(1)], views, profile, strategy)
    for n, size in enumerate(sizes):
        outcome = planned.place(JobDemand(f"j{n}", (share(f"j{n}", size).build(),)))
        if isinstance(outcome, Plan):
            assert outcome.placements[0].share.gpus == 500, (size, outcome)


def test_agents_are_held_for_a_waiting_job_only_where_it_fits_beside_the_kept_gpus():
    # Past its patience, a job gets agents held where it would fit once they free up (Volcano's
    # reserve): not S0, whose 2 GPUs hold only 1 beside the one kept for shares, but S1 (no profile group).
    agents = catalog_from_master_state({"slaves": [
        {"id": "S0", "hostname": "h0", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0},
         "attributes": {"pool": "interactive"}},
        {"id": "S1", "hostname": "h1", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}},
    ]})
    small, big = single_job("small", gpus=1), single_job("big", gpus=2)
    requests = [GangRequest("big", big, big.tasks("big"), reserve=True),
                GangRequest("small", small, small.tasks("small"))]
    offers = (offer("S0", gpus=2, attributes={"pool": "interactive"}), offer("S1", gpus=1))
    plan = make_planner(catalog=lambda: agents)(requests, offers, ShareHostViews((), DAY))
    waiting = plan.outcomes["big"]
    assert isinstance(waiting, WaitReason) and waiting.held == ("S1",), waiting.summary
    assert [launch.agent_id for launch in plan.accepts] == ["S0"]       # small beside the kept GPU
