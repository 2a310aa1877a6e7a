"""Placement under the GPU profile in force (`ShareHostViews.profile`): the share-host cap per agent group,
the levels and sizes offered, draining hosts take no new share, and whole-GPU work gets a GPU only once
its share host has gone (tables, and a Hypothesis property over random clusters)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import GangPlanner, JobDemand, Plan, WaitReason
from mesos_gpu.core.profiles import AgentGroup, Profile
from mesos_gpu.core.sharing import ShareHostView, ShareHostViews
from tests.placement.builders import agent, task, view

DAY = Profile("day", (AgentGroup({"pool": "interactive"}, 1, frozenset({Isolation.CAPPED}),
                                 frozenset({250, 500})),))
NIGHT = Profile("night", (AgentGroup({}, 0),))


def host(host_id: str, agent_id: str = "a", isolation: str = "capped", used: int = 0) -> ShareHostView:
    return ShareHostView(host_id, agent_id, Isolation(isolation), 0, used, 0)


def share(task_id: str, gpus: float, isolation: str = "capped", **kwargs):
    return task(task_id, task_id).share(gpus, isolation, **kwargs)


def place(*jobs, agents, hosts=(), profile=None):
    cycle = GangPlanner().start(view(*agents), ShareHostViews(hosts, profile))
    return [cycle.place(JobDemand(b.build().job_id, (b.build(),))) for b in jobs]


def interactive(agent_id: str, gpus: int = 2):
    return agent(agent_id).gpus(gpus).attr("pool", "interactive")


def where(outcome) -> str:
    assert isinstance(outcome, Plan), outcome
    placement = outcome.placements[0]
    return placement.share.host_id if placement.share is not None else placement.agent_id


# (name, agents, hosts, profile, share, expected host id or None: waits)
TABLE = [
    ("no profile: as before", [interactive("a")], [host("h1", used=1000)], None, share("t", 0.5), "new:a:1"),
    ("cap 1 reached by a full host: waits", [interactive("a")], [host("h1", used=1000)], DAY,
     share("t", 0.5), None),
    ("cap 1, the host has room", [interactive("a")], [host("h1", used=500)], DAY, share("t", 0.5), "h1"),
    ("cap 1, no host yet: opens one", [interactive("a")], [], DAY, share("t", 0.25), "new:a:1"),
    ("a size not offered", [interactive("a")], [host("h1", used=0)], DAY, share("t", 0.3), None),
    ("a level not offered", [interactive("a")], [], DAY, share("t", 0.25, "shared"), None),
    ("an elastic share whose range holds an offered size", [interactive("a")], [], DAY,
     share("t", 0.6, gpus_min=0.4), "new:a:1"),
    ("an agent in no group: no limit", [agent("b").gpus(2)], [host("h1", "b", used=1000)], DAY,
     share("t", 0.3, "shared"), "new:b:1"),
    ("night: no new host", [agent("a").gpus(2)], [], NIGHT, share("t", 0.25), None),
    ("night: a draining host takes no new share", [agent("a").gpus(1)], [host("h1", used=250)], NIGHT,
     share("t", 0.25), None),
    ("the level's host drains, a new one within the cap opens", [interactive("a")],
     [host("h1", "a", "shared", used=0)], Profile("p", (AgentGroup({}, 2, frozenset({Isolation.CAPPED})),)),
     share("t", 0.25), "new:a:1"),
]


@pytest.mark.parametrize("case", TABLE, ids=[c[0] for c in TABLE])
def test_shares_under_a_profile(case):
    _, agents, hosts, profile, builder, expected = case
    (outcome,) = place(builder, agents=agents, hosts=hosts, profile=profile)
    if expected is None:
        assert isinstance(outcome, WaitReason), outcome
    else:
        assert where(outcome) == expected


def test_the_wait_reason_names_the_profile():
    (outcome,) = place(share("t", 0.25), agents=[agent("a").gpus(2), agent("b").gpus(1)], profile=NIGHT)
    assert isinstance(outcome, WaitReason)
    assert "gpu profile 'night': no new share host for a capped share of 0.25 gpu here" in outcome.summary


def test_the_cap_counts_hosts_opened_in_the_cycle():
    outcomes = place(share("t1", 0.5), share("t2", 0.5), share("t3", 0.5), agents=[interactive("a", 4)],
                     profile=DAY)
    assert [where(o) for o in outcomes[:2]] == ["new:a:1", "new:a:1"]
    assert isinstance(outcomes[2], WaitReason)      # a second host would pass the cap of 1


def test_whole_gpu_work_takes_a_gpu_only_once_its_share_host_is_gone():
    # Night: the share host on the agent's only GPU drains; the GPU is still held by it, so the
    # whole-GPU job waits; once the host has exited, the agent offers the GPU and the job is placed.
    held = agent("a").gpus(0).cpus(16)      # the share host holds the agent's one GPU: none offered
    (waiting,) = place(task("w", "w").gpus(1), agents=[held], hosts=[host("h1", used=250)], profile=NIGHT)
    assert isinstance(waiting, WaitReason)
    (placed,) = place(task("w", "w").gpus(1), agents=[agent("a").gpus(1)], hosts=[], profile=NIGHT)
    assert where(placed) == "a"


# ------------------------------------------------------------------------------------------ Hypothesis
@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=1, max_size=4),
       st.integers(0, 3), st.lists(st.sampled_from([0.25, 0.5, 0.75]), max_size=12))
def test_no_agent_passes_the_cap_and_draining_hosts_take_nothing(existing, cap, sizes):
    profile = Profile("p", (AgentGroup({}, cap),))
    agents, hosts = [], []
    for index, (count, gpus) in enumerate(existing):
        agent_id = f"a{index}"
        agents.append(agent(agent_id).gpus(gpus))
        hosts += [host(f"{agent_id}-h{n}", agent_id, used=250) for n in range(count)]
    cycle = GangPlanner().start(view(*agents), ShareHostViews(hosts, profile))
    for n, size in enumerate(sizes):
        cycle.place(JobDemand(f"j{n}", (share(f"j{n}", size).build(),)))
    kept = {h.host_id for h in hosts}
    drained = {h.host_id for agent_id in {h.agent_id for h in hosts}
               for h in sorted((h for h in hosts if h.agent_id == agent_id), key=lambda h: h.host_id)[cap:]}
    kept -= drained
    opened: dict[str, set[str]] = {}
    for outcome in cycle.outcomes.values():
        if isinstance(outcome, Plan):
            grant = outcome.placements[0].share
            assert grant.host_id not in drained
            if grant.new_host:
                opened.setdefault(outcome.placements[0].agent_id, set()).add(grant.host_id)
    for index, (count, _) in enumerate(existing):
        assert count + len(opened.get(f"a{index}", ())) <= max(cap, count)
        assert not opened.get(f"a{index}") or count < cap
