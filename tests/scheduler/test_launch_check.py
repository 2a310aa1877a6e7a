"""A launch Mesos says nothing of is asked of the master (`core.launchcheck`): an ACCEPT whose call failed
with the subscription still up leaves its tasks unknown to Mesos, and the job would stay STAGING for ever.
Before, nothing asked: no Reconcile came after the launch, whatever the time."""

from __future__ import annotations

from mesos_gpu.core.model import JobState
from mesos_gpu.core.state import Accept, Disconnected, Reconcile, Tick
from tests.scheduler.builders import offer, single_job, tf_job
from tests.scheduler.test_state import Harness, of_type

UNKNOWN = "Reconciliation: Task is unknown"


def launched(h: Harness, job_id: str = "job", spec: object = None) -> float:
    """Submit and launch `job_id` on S1; the time of the launch."""
    h.submit(job_id, spec or single_job())
    (accept,) = of_type(h.offers(offer("S1", gpus=4)), Accept)
    assert accept.task_infos
    return h.now


def asked(h: Harness, at: float) -> list[tuple[str, str | None]]:
    return [task for command in of_type(h(Tick(at)), Reconcile) for task in command.tasks]


def test_a_launch_never_heard_of_is_asked_of_the_master_and_placed_again_when_unknown() -> None:
    h = Harness()
    h.subscribe()
    start = launched(h)
    assert asked(h, start + 59.9) == []
    assert asked(h, start + 60) == [("job.task-0.0", "S1")]
    h.now = start + 60
    h.update("job.task-0.0", "TASK_LOST", reason="REASON_RECONCILIATION", message=UNKNOWN, with_uuid=False)
    job = h.job("job")
    assert job.state is JobState.PENDING and job.restarts == 0
    (accept,) = of_type(h.offers(offer("S1")), Accept)
    assert accept.task_infos[0]["task_id"] == {"value": "job.task-0.1"}


def test_a_task_mesos_reported_is_not_asked_about() -> None:
    h = Harness()
    h.subscribe()
    start = launched(h)
    h.update("job.task-0.0", "TASK_STARTING")
    assert asked(h, start + 61) == []
    h.update("job.task-0.0", "TASK_RUNNING")
    assert asked(h, start + 500) == []


def test_a_slow_launch_is_asked_about_again_each_period_while_it_stages() -> None:
    h = Harness()
    h.subscribe()
    start = launched(h)
    assert asked(h, start + 60) == [("job.task-0.0", "S1")]
    h.now = start + 60
    h.update("job.task-0.0", "TASK_STAGING", reason="REASON_RECONCILIATION",
             message="Reconciliation: Latest task state", with_uuid=False)
    assert h.job("job").state is JobState.STAGING
    assert asked(h, start + 119) == []
    assert asked(h, start + 120) == [("job.task-0.0", "S1")]
    h.update("job.task-0.0", "TASK_RUNNING")
    assert asked(h, start + 400) == []


def test_every_member_of_a_gang_is_asked_in_one_reconciliation() -> None:
    h = Harness()
    h.subscribe()
    start = launched(h, "dist", tf_job(workers=1, ps=1, chief=0))
    h.update("dist.ps-0.0", "TASK_RUNNING")
    assert asked(h, start + 60) == [("dist.worker-0.0", "S1")]
    h.now = start + 60
    h.update("dist.worker-0.0", "TASK_LOST", reason="REASON_RECONCILIATION", message=UNKNOWN, with_uuid=False)
    assert h.job("dist").state is JobState.PENDING    # the gang is placed again, its ps killed


def test_no_reconciliation_while_disconnected_and_none_when_turned_off() -> None:
    h = Harness()
    h.subscribe()
    start = launched(h)
    h(Disconnected(start + 1))
    assert asked(h, start + 60) == []       # the next subscription reconciles every task
    h.subscribe()
    h.update("job.task-0.0", "TASK_STAGING", reason="REASON_RECONCILIATION",
             message="Reconciliation: Latest task state", with_uuid=False)   # the subscription's answered
    h.state.launch_check_seconds = None
    assert asked(h, start + 1000) == []


def test_a_staging_answer_leaves_the_members_reason_so_a_later_end_is_not_a_dropped_launch() -> None:
    """The check's TASK_STAGING answer (REASON_RECONCILIATION) used to become the member's reason: a later
    end without a reason was then read as a dropped launch and placed again without a restart counted."""
    h = Harness()
    h.subscribe()
    start = launched(h)
    h.now = start + 60
    h.update("job.task-0.0", "TASK_STAGING", reason="REASON_RECONCILIATION",
             message="Reconciliation: Latest task state", with_uuid=False)
    member = h.job("job").members[next(iter(h.job("job").members))]
    assert member.reason is None and member.message != "Reconciliation: Latest task state"
    h.update("job.task-0.0", "TASK_FAILED", message="the image could not be pulled")
    assert h.job("job").state is not JobState.PENDING
