"""A whole-GPU task that waits on agents whose GPUs an empty (lingering) share host holds is told so:
"1/1 agents fit: 1 insufficient gpus (1 gpu held by an empty share host, returned to mesos when its linger
ends)"; a busy host, a share task's reasons and an agent that is not short of GPUs add nothing."""

from __future__ import annotations

import pytest

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import GangPlanner, JobDemand, Plan, WaitReason
from mesos_gpu.core.placement.reasons import insufficient_gpus_held
from mesos_gpu.core.sharing import ShareHostView
from tests.placement.builders import agent, task, view

ONE = "insufficient gpus (1 gpu held by an empty share host, returned to mesos when its linger ends)"
TWO = "insufficient gpus (2 gpus held by empty share hosts, returned to mesos when their linger ends)"


def host(host_id: str, agent_id: str, used: int = 0, *, accepting: bool = True) -> ShareHostView:
    return ShareHostView(host_id, agent_id, Isolation.CAPPED, 0, used, 0, accepting)


def place(*builders, agents, hosts=()):
    cycle = GangPlanner().start(view(*agents), hosts)
    outcomes = []
    for builder in builders:
        member = builder.build()
        outcomes.append(cycle.place(JobDemand(member.job_id, (member,))))
    return outcomes


# (name, agents, hosts, expected summary of a 2-GPU task)
CASES = [
    ("an empty host on the short agent", [agent("a").gpus(1)], [host("h1", "a")], f"0/1 agents fit: 1 {ONE}"),
    ("an empty host no longer accepting still holds its gpu", [agent("a").gpus(1)],
     [host("h1", "a", accepting=False)], f"0/1 agents fit: 1 {ONE}"),
    ("a busy host: plain reason", [agent("a").gpus(1)], [host("h1", "a", 500)],
     "0/1 agents fit: 1 insufficient gpus"),
    ("no host", [agent("a").gpus(1)], [], "0/1 agents fit: 1 insufficient gpus"),
    ("two agents, an empty host on each", [agent("a").gpus(1), agent("b").gpus(0).cpus(4)],
     [host("h1", "a"), host("h2", "b")], f"0/2 agents fit: 2 {TWO}"),
    ("an empty host on an agent that is not offered", [agent("a").gpus(1)], [host("h1", "z")],
     "0/1 agents fit: 1 insufficient gpus"),
]


@pytest.mark.parametrize(("name", "agents", "hosts", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_whole_gpu_task_is_told_of_empty_share_hosts(name, agents, hosts, expected):
    (outcome,) = place(task("t", "j").gpus(2), agents=agents, hosts=hosts)
    assert isinstance(outcome, WaitReason), outcome
    assert outcome.summary == expected


def test_a_share_placed_on_the_empty_host_in_the_cycle_ends_the_note():
    share, whole = task("s", "js").share(0.5, "capped"), task("t", "j").gpus(2)
    first, second = place(share, whole, agents=[agent("a").gpus(1)], hosts=[host("h1", "a")])
    assert isinstance(first, Plan) and first.placements[0].share.host_id == "h1"
    assert isinstance(second, WaitReason) and second.summary == "0/1 agents fit: 1 insufficient gpus"


def test_a_gang_rolled_back_gives_the_host_back_empty():
    # The share member (placed first) takes the empty host, the CPU member fails: the roll-back empties
    # the host again, so a later whole-GPU task is told of it.
    gang = [task("j.s", "j").share(0.5, "capped").role("worker", 0), task("j.p", "j").cpus(1000).role("ps")]
    cycle = GangPlanner().start(view(agent("a").gpus(1)), [host("h1", "a")])
    members = tuple(builder.build() for builder in gang)
    assert isinstance(cycle.place(JobDemand("j", members)), WaitReason)
    later = task("t", "k").gpus(2).build()
    outcome = cycle.place(JobDemand("k", (later,)))
    assert isinstance(outcome, WaitReason) and outcome.summary == f"0/1 agents fit: 1 {ONE}"


def test_an_agent_with_enough_gpus_places_the_task_despite_an_empty_host():
    (outcome,) = place(task("t", "j").gpus(2), agents=[agent("a").gpus(2)], hosts=[host("h1", "a")])
    assert isinstance(outcome, Plan)


def test_a_share_that_waits_keeps_its_own_reason():
    (outcome,) = place(task("s", "j").share(0.5, "mps"), agents=[agent("a").gpus(0).cpus(4)],
                       hosts=[host("h1", "a")])
    assert isinstance(outcome, WaitReason)
    assert "empty share host" not in outcome.summary


def test_the_reason_text_counts_gpus():
    assert insufficient_gpus_held(1) == ONE
    assert insufficient_gpus_held(2) == TWO
