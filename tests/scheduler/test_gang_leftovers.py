"""A gang placed again after a dropped launch ("was not launched ... placing again"): its other members,
still alive, are killed, and stay killed across a reconnect, a failover and a reconciliation (issue 17:
the long soak saw a PENDING job whose first attempt's tasks still ran after the drain)."""

from __future__ import annotations

from mesos_gpu.core.model import JobState
from mesos_gpu.core.state import Disconnected, JobsRecovered, KillTask, SchedulerState, Subscribed
from tests.scheduler.builders import first_fit_planner, offer, tf_job
from tests.scheduler.test_state import SETTINGS, Harness, of_type


def _dropped_gang() -> Harness:
    """A 2-member gang launched; the worker's launch was dropped, the ps runs: placed again (PENDING)."""
    h = Harness()
    h.subscribe()
    h.submit("dist", tf_job(workers=1, ps=1, chief=0))
    h.offers(offer("S1", gpus=4))
    h.update("dist.ps-0.0", "TASK_STARTING", agent="S1")
    h.update("dist.ps-0.0", "TASK_RUNNING", agent="S1")
    commands = h.update("dist.worker-0.0", "TASK_LOST", reason="REASON_INVALID_OFFERS", with_uuid=False,
                        message="Task launched with invalid offers: Offer O1 is no longer valid")
    assert h.job("dist").state is JobState.PENDING
    assert [kill.task_id for kill in of_type(commands, KillTask)] == ["dist.ps-0.0"]
    return h


def test_the_left_over_member_is_killed_again_after_a_reconnect() -> None:
    h = _dropped_gang()
    h(Disconnected(h.tick()))       # the kill sent meanwhile may have been dropped by the driver
    commands = h.subscribe()
    assert [kill.task_id for kill in of_type(commands, KillTask)] == ["dist.ps-0.0"]


def test_the_left_over_member_is_killed_by_a_new_leader() -> None:
    h = _dropped_gang()
    stored = h.persisted["dist"]
    fresh = Harness()
    fresh.state = SchedulerState(planner=first_fit_planner, settings=SETTINGS)
    fresh(JobsRecovered((stored,), fresh.tick()))
    commands = fresh(Subscribed("F", fresh.tick()))
    assert [kill.task_id for kill in of_type(commands, KillTask)] == ["dist.ps-0.0"]


def test_a_left_over_member_still_reported_running_is_killed_again() -> None:
    h = _dropped_gang()
    commands = h.update("dist.ps-0.0", "TASK_RUNNING", agent="S1")    # e.g. answering a reconciliation
    assert [kill.task_id for kill in of_type(commands, KillTask)] == ["dist.ps-0.0"]
    assert h.job("dist").state is JobState.PENDING


def test_once_the_left_over_member_ends_the_gang_is_placed_again_whole() -> None:
    h = _dropped_gang()
    h.update("dist.ps-0.0", "TASK_KILLED", agent="S1")
    commands = h.offers(offer("S1", gpus=4))
    launched = sorted(info["task_id"]["value"] for accept in commands if hasattr(accept, "task_infos")
                      for info in accept.task_infos)
    assert launched == ["dist.ps-0.1", "dist.worker-0.1"]
