"""Defects the wave 7 review found in preemption and GPU-profile draining, each a test that failed before
its fix: a job killed during its grace ended KILLED (it stayed RESTARTING forever); one claim did not stop
a second victim before the first victim's GPUs were offered again; two claims of one round did not count
the same spare offer twice; a drained job whose task finished during its grace succeeded (it was run
again); a kill in flight at the drain deadline still ended KILLED."""

from __future__ import annotations

from mesos_gpu.core.commands import KillTask
from mesos_gpu.core.events import KillRequested
from mesos_gpu.core.model import JobState
from mesos_gpu.core.state import Tick
from tests.profiles.test_state import accepted, harness, utc
from tests.scheduler.builders import offer, share_job, single_job
from tests.scheduler.test_state import of_type
from tests.tenancy.test_preempt import TWO, preempting, run, task_of


def test_a_job_killed_during_its_grace_ends_killed() -> None:
    h = preempting(TWO, grace=7.0)
    h.submit("b1", single_job("b1", gpus=4, tenant="team-b"))
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["b1"]
    run(h, "b1")
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    h.offers(offer("S1", gpus=0))
    assert h.job("b1").state is JobState.RESTARTING
    h(KillRequested("b1", h.tick()))
    h.update(task_of(h, "b1"), "TASK_KILLED")
    assert h.job("b1").state is JobState.KILLED


def test_no_second_victim_before_the_first_ones_gpus_are_offered_again() -> None:
    h = preempting({"tenants": {"team-a": {"quota": 4}, "team-b": {"quota": 0}}})
    for name, agent in (("b1", "S1"), ("b2", "S2")):
        h.submit(name, single_job(name, gpus=2, tenant="team-b"))
        assert h.launched(h.offers(offer(agent, gpus=2))) == [name]
        run(h, name, agent)
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    assert len(of_type(h.offers(offer("S1", gpus=0)), KillTask)) == 1
    victim = "b1" if h.job("b1").state is JobState.RESTARTING else "b2"
    h.update(task_of(h, victim), "TASK_KILLED")
    # an offer of another agent arrives before the freed GPUs are offered again
    assert of_type(h.offers(offer("S3", gpus=0)), KillTask) == []


def test_two_claims_of_one_round_do_not_count_the_same_spare_offer() -> None:
    h = preempting(None)
    for name in ("v1", "v2"):
        h.submit(name, single_job(name, gpus=1, mem=1024, priority=0))
        assert h.launched(h.offers(offer("S1", gpus=1, mem=1024))) == [name]
        run(h, name, "S1")
    h.submit("a1", single_job("a1", gpus=1, mem=4096, priority=10))
    h.submit("a2", single_job("a2", gpus=1, mem=4096, priority=10))
    assert len(of_type(h.offers(offer("S1", gpus=0, mem=3072)), KillTask)) == 1


def _drained(h):  # type: ignore[no-untyped-def]
    h.submit("s1", share_job("s1"))
    (task,) = accepted(h.offers(offer("a", gpus=1)))
    h.run_all("s1")
    h.now = utc(2026, 12, 4, 20, 10, 1)
    h(Tick(h.now))
    assert h.job("s1").state is JobState.RESTARTING
    return task


def test_a_drained_job_whose_task_finished_during_its_grace_succeeded() -> None:
    h = harness(utc(2026, 12, 4, 12))
    task = _drained(h)
    h.update(task, "TASK_FINISHED", agent="a")
    assert h.job("s1").state is JobState.SUCCEEDED


def test_a_kill_in_flight_at_the_drain_deadline_ends_killed() -> None:
    h = harness(utc(2026, 12, 4, 12))
    h.submit("s1", share_job("s1"))
    (task,) = accepted(h.offers(offer("a", gpus=1)))
    h.run_all("s1")
    h.now = utc(2026, 12, 4, 20, 10, 0)
    h(KillRequested("s1", h.now))
    h.now += 1
    h(Tick(h.now))
    h.update(task, "TASK_KILLED", agent="a")
    assert h.job("s1").state is JobState.KILLED
