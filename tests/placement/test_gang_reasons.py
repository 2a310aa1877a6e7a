"""A gang's wait reason says how many members fit where, and what the failing one lacks (issue 19, item 8)."""

from __future__ import annotations

from mesos_gpu.core.placement import GangPlanner, JobDemand, NeverFits, WaitReason
from mesos_gpu.core.placement.reasons import gang_text
from tests.placement.builders import agent, task, view


def gang(job_id: str, *gpus: int) -> JobDemand:
    return JobDemand.of([task(f"{job_id}.worker-{i}", job_id).role("worker", i).gpus(n).build()
                         for i, n in enumerate(gpus)])


def test_one_agent_fits_one_member_of_two():
    outcome = GangPlanner().plan(gang("j", 1, 1), view(agent("S1").gpus(1), agent("S2").gpus(0)))
    assert isinstance(outcome, WaitReason)
    assert (outcome.members, outcome.placed, outcome.short) == (2, ("S1",), 1000)
    assert outcome.summary == ("1 of 2 members fit (on S1); j.worker-1 needs 1 more GPU than any agent has "
                               "free: 0/2 agents fit: 2 insufficient gpus")


def test_a_member_short_of_several_gpus_and_none_placed():
    outcome = GangPlanner().plan(gang("j", 4, 1), view(agent("S1").gpus(1), agent("S2").gpus(2)))
    assert isinstance(outcome, WaitReason)
    assert outcome.summary == ("0 of 2 members fit; j.worker-0 needs 2 more GPUs than any agent has "
                               "free: 0/2 agents fit: 2 insufficient gpus")


def test_a_single_task_job_keeps_its_summary():
    outcome = GangPlanner().plan(gang("j", 2), view(agent("S1").gpus(1)))
    assert isinstance(outcome, WaitReason) and outcome.members == 1
    assert outcome.summary == "0/1 agents fit: 1 insufficient gpus"


def test_never_fits_for_a_gang_says_how_far_it_got_on_the_empty_cluster():
    catalog = [agent("S1").gpus(2), agent("S2").gpus(2)]
    busy = view(agent("S1").gpus(0).total(gpus=2), agent("S2").gpus(0).total(gpus=2), catalog=catalog)
    planner = GangPlanner()
    expected = ("can never fit: 4 of 5 members fit (on S1, S2); {}.worker-4 needs 1 more GPU than any agent "
                "has free: 0/2 agents fit: 2 insufficient gpus")
    for job_id in ("huge", "again"):      # the second answer comes from the check's memo: its own task id
        never = planner.plan(gang(job_id, 1, 1, 1, 1, 1), busy)
        assert isinstance(never, NeverFits)
        assert never.summary == expected.format(job_id)
        assert never.placed == ("S1", "S1", "S2", "S2")


def test_gang_text_names_at_most_three_agents_and_says_why_without_a_gpu_shortfall():
    placed = ("a", "a", "b", "c", "d", "e")
    assert gang_text("t", 7, placed, 0) == "6 of 7 members fit (on a, b, c and 2 more); t does not fit"
    assert gang_text("t", 2, (), 500) == "0 of 2 members fit; t needs 0.5 more GPU than any agent has free"
