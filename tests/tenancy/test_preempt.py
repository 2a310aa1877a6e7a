"""The preemption round in the state machine: a reclaiming owner or a higher priority job stops running
jobs gracefully (GracefulKill), only when its whole gang fits afterwards, never twice for the same claim;
the victims go back to the queue without counting as restarts, saying who preempted them and why."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.commands import GracefulKill, KillTask
from mesos_gpu.core.model import JobState
from mesos_gpu.core.preempt import Preemption, freed_offers, with_freed
from tests.scheduler.builders import offer, single_job
from tests.scheduler.test_state import of_type
from tests.tenancy.test_state import Tenanted


def preempting(document: dict[str, Any] | None, grace: float = 30.0) -> Tenanted:
    h = Tenanted(document)
    h.state.preemption = Preemption(grace_seconds=grace)
    h.subscribe()
    return h


def run(h: Tenanted, job_id: str, agent: str = "S1") -> None:
    for member in h.job(job_id).members.values():
        h.update(member.task_id, "TASK_STARTING", agent=agent)
        h.update(member.task_id, "TASK_RUNNING", agent=agent)


def task_of(h: Tenanted, job_id: str) -> str:
    return next(iter(h.job(job_id).members.values())).task_id


TWO = {"tenants": {"team-a": {"quota": 2}, "team-b": {"quota": 2}}}


def test_the_owner_reclaims_its_lent_gpus_gracefully_and_the_borrower_is_requeued_not_failed() -> None:
    h = preempting(TWO, grace=7.0)
    h.submit("b1", single_job("b1", gpus=4, tenant="team-b"))
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["b1"]     # borrows team-a's idle 2
    run(h, "b1")
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    commands = h.offers(offer("S1", gpus=0))
    kills = of_type(commands, KillTask)
    assert kills == [GracefulKill(task_of(h, "b1"), "S1", 7.0)]
    b1 = h.job("b1")
    assert b1.state is JobState.RESTARTING and b1.restarts == 0
    assert b1.message.startswith("preempted by job a1 (team-b borrows GPUs beyond its quota; team-a reclaims")
    assert h.persisted["b1"]["message"] == b1.message          # persisted before the kill is carried out
    # the victim's end is not a failure: it waits in the queue, the owner is placed on the freed GPUs
    h.update(task_of(h, "b1"), "TASK_KILLED")
    assert h.job("b1").state is JobState.RESTARTING and h.job("b1").restarts == 0
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["a1"]
    assert h.job("b1").state is JobState.RESTARTING
    # room returns: the borrower is relaunched (its tenant's 2 of quota + 0 idle: it waits until a1 ends)
    run(h, "a1")
    h.update(task_of(h, "a1"), "TASK_FINISHED")
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["b1"]
    assert h.job("b1").restarts == 0


def test_nothing_is_killed_when_the_claim_would_still_not_fit_afterwards() -> None:
    # team-b borrows 1 GPU on each of two agents; team-a's 2-GPU single task needs both on ONE agent
    h = preempting({"tenants": {"team-a": {"quota": 8}, "team-b": {"quota": 0}}})
    for name, agent in (("a0", "S1"), ("b1", "S1"), ("a00", "S2"), ("b2", "S2")):
        tenant = "team-a" if name.startswith("a") else "team-b"
        h.submit(name, single_job(name, gpus=1, tenant=tenant))
        assert h.launched(h.offers(offer(agent, gpus=1))) == [name]
        run(h, name, agent)
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    commands = h.offers(offer("S1", gpus=0), offer("S2", gpus=0))
    assert of_type(commands, KillTask) == []
    assert h.job("b1").state is JobState.RUNNING and h.job("b2").state is JobState.RUNNING


def test_a_higher_priority_job_preempts_a_lower_one_without_tenants_and_equal_priority_never() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    h.submit("same", single_job("same", gpus=2, priority=0))
    assert of_type(h.offers(offer("S1", gpus=0)), KillTask) == []
    h.submit("high", single_job("high", gpus=2, priority=10))
    kills = of_type(h.offers(offer("S1", gpus=0)), KillTask)
    assert [k.task_id for k in kills] == [task_of(h, "low")]
    assert "priority 10 > 0" in h.job("low").message


def test_no_preemption_loop_a_victim_is_not_preempted_twice_for_the_same_claim() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    h.submit("high", single_job("high", gpus=2, priority=10, mem=4096))
    assert len(of_type(h.offers(offer("S1", gpus=0)), KillTask)) == 1
    assert of_type(h.offers(offer("S1", gpus=0)), KillTask) == []    # kill under way: not again
    h.update(task_of(h, "low"), "TASK_KILLED")
    # "low" is relaunched where "high" does not fit (too little memory offered on S2) ...
    assert h.launched(h.offers(offer("S2", gpus=2, mem=2048))) == ["low"]
    run(h, "low", "S2")
    # ... and "high" could take its place there, but "low" was preempted for it once: never again
    assert of_type(h.offers(offer("S2", gpus=0, mem=8192)), KillTask) == []
    assert h.job("low").state is JobState.RUNNING
    assert h.state.preemption is not None and h.state.preemption.spared["high"] == {"low"}
    # another waiting job of higher priority may still preempt it
    h.submit("higher", single_job("higher", gpus=2, priority=20))
    kills = of_type(h.offers(offer("S2", gpus=0, mem=8192)), KillTask)
    assert [k.task_id for k in kills] == [task_of(h, "low")] and "job higher" in h.job("low").message


def test_without_preemption_configured_nothing_is_ever_killed() -> None:
    h = Tenanted(TWO)
    h.subscribe()
    h.submit("b1", single_job("b1", gpus=4, tenant="team-b"))
    h.offers(offer("S1", gpus=4))
    run(h, "b1")
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    assert of_type(h.offers(offer("S1", gpus=0)), KillTask) == []


def test_freed_capacity_is_merged_into_the_agents_own_offer() -> None:
    h = preempting(None)
    h.submit("j", single_job("j", gpus=2))
    h.offers(offer("S1", gpus=2))
    run(h, "j")
    freed = freed_offers([h.job("j")], {})
    merged = with_freed([offer("S1", gpus=1), offer("S2", gpus=3)], freed)
    gpus = {o["agent_id"]["value"]: sum(r["scalar"]["value"] for r in o["resources"] if r["name"] == "gpus")
            for o in merged}
    assert gpus == {"S1": 3.0, "S2": 3.0}


@settings(max_examples=40, deadline=None)
@given(quota=st.integers(1, 4), borrowed=st.integers(1, 4), waiting=st.integers(1, 4))
def test_an_owner_below_its_guarantee_is_back_to_it_after_one_round(quota: int, borrowed: int,
                                                                    waiting: int) -> None:
    """Invariant: a tenant below its guarantee with waiting work does not stay below it longer than one
    preemption round while borrowers hold its GPUs (one-GPU agents: the GPUs are all alike)."""
    agents = [f"S{i}" for i in range(quota + borrowed)]
    h = preempting({"tenants": {"own": {"quota": quota}, "other": {"quota": borrowed}}})
    jobs = []
    for i, agent in enumerate(agents):    # "other" holds every GPU: its own and all of "own"'s quota
        name = f"o{i}"
        h.submit(name, single_job(name, gpus=1, tenant="other"))
        assert h.launched(h.offers(offer(agent, gpus=1))) == [name]
        run(h, name, agent)
        jobs.append(name)
    for i in range(waiting):
        h.submit(f"w{i}", single_job(f"w{i}", gpus=1, tenant="own"))
    kills = of_type(h.offers(*(offer(agent, gpus=0) for agent in agents)), KillTask)
    assert len(kills) == min(quota, waiting)        # one round: exactly what the guarantee needs
    freed = []
    for kill in kills:
        h.update(kill.task_id, "TASK_KILLED", agent=kill.agent_id)
        freed.append(kill.agent_id)
    launched = h.launched(h.offers(*(offer(agent, gpus=1) for agent in freed)))
    assert len(launched) == min(quota, waiting) and all(name.startswith("w") for name in launched)
    assert h.state.tenant_usage().get("own", 0) == 1000 * min(quota, waiting)


def test_a_victim_that_finishes_during_its_grace_succeeded_and_is_not_run_again() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    h.submit("high", single_job("high", gpus=2, priority=10))
    assert len(of_type(h.offers(offer("S1", gpus=0)), KillTask)) == 1
    h.update(task_of(h, "low"), "TASK_FINISHED")
    assert h.job("low").state is JobState.SUCCEEDED
    assert h.launched(h.offers(offer("S1", gpus=2))) == ["high"]


def test_the_preemption_settings_are_read_from_the_environment() -> None:
    from mesos_gpu.core.config import SchedulerSettings

    assert SchedulerSettings.from_env({}).preemption is False
    assert SchedulerSettings.from_env({}).preemption_grace_seconds == 30.0
    read = SchedulerSettings.from_env({"MESOS_GPU_PREEMPTION": "true",
                                       "MESOS_GPU_PREEMPTION_GRACE_SECONDS": "5"})
    assert read.preemption is True and read.preemption_grace_seconds == 5.0


def test_while_its_victims_are_being_killed_a_claim_preempts_nobody_else() -> None:
    h = preempting(TWO)
    for name, agent in (("b1", "S1"), ("b2", "S2")):
        h.submit(name, single_job(name, gpus=2, tenant="team-b"))
        assert h.launched(h.offers(offer(agent, gpus=2))) == [name]
        run(h, name, agent)
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    first = of_type(h.offers(offer("S1", gpus=0), offer("S2", gpus=0)), KillTask)
    assert len(first) == 1
    # the victim's task is still in its grace (its GPUs still count as team-b's): nobody else is stopped
    assert of_type(h.offers(offer("S1", gpus=0), offer("S2", gpus=0)), KillTask) == []
    assert h.job("b1").state is JobState.RUNNING or h.job("b2").state is JobState.RUNNING
