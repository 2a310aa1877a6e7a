"""Where new share hosts open: `PlacementPolicy.share_hosts` "pack" (the default) or "spread" (Tetris)."""

from __future__ import annotations

import pytest

from mesos_gpu.core.placement import GangPlanner, JobDemand, PlacementPolicy, Plan
from tests.placement.builders import agent, task, view


def opened_on(policy: PlacementPolicy, agents, *builders) -> list[str]:
    """The agent of each share's host, the shares placed one after the other in one cycle."""
    cycle = GangPlanner(policy).start(view(*agents))
    out = []
    for builder in builders:
        member = builder.build()
        outcome = cycle.place(JobDemand(member.job_id, (member,)))
        assert isinstance(outcome, Plan), outcome
        out.append(outcome.placements[0].agent_id)
    return out


def share(task_id: str, gpus: float, cpus: float = 1):
    return task(task_id, task_id).cpus(cpus).share(gpus, "capped")


AGENTS = [agent("two").gpus(2).cpus(64), agent("eight").gpus(8).cpus(64),
          agent("eight-poor").gpus(8).cpus(16)]


def test_pack_opens_the_host_on_the_agent_with_the_fewest_whole_gpus_free():
    assert opened_on(PlacementPolicy(), AGENTS, share("t", 0.5)) == ["two"]
    assert opened_on(PlacementPolicy(share_hosts="pack"), AGENTS, share("t", 0.5)) == ["two"]


def test_spread_opens_the_host_where_cpus_and_gpus_free_align_best():
    # Tetris: the dot product of (cpus, GPU) asked with (cpus, GPUs) free, both over the largest agent's.
    assert opened_on(PlacementPolicy(share_hosts="spread"), AGENTS, share("t", 0.5)) == ["eight"]


def test_spread_still_fills_existing_hosts_first():
    policy = PlacementPolicy(share_hosts="spread")
    assert opened_on(policy, AGENTS, share("t1", 0.5), share("t2", 0.5), share("t3", 0.5)) == \
        ["eight", "eight", "eight"]


def test_spread_skips_agents_that_cannot_take_the_task():
    agents = [agent("two").gpus(2).cpus(16), agent("eight").gpus(8).cpus(2)]
    assert opened_on(PlacementPolicy(share_hosts="spread"), agents, share("t", 0.5, cpus=4)) == ["two"]


def test_an_unknown_share_host_placement_is_refused():
    with pytest.raises(ValueError, match="share_hosts must be one of pack, spread"):
        PlacementPolicy(share_hosts="random")
