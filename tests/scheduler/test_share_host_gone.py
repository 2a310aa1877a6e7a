"""A share host the scheduler takes for running when its executor has ended (the long soak of
2026-12-05: 84 share jobs FAILED with TASK_ERROR "required by task and its executor is more than
available"). A new leader confirmed a recovered host by an agent's update retried long after it was sent
(the task had run and ended while no leader listened, and the host had exited at its linger); it then
placed shares there, the master counted the host's executor as new and refused them, and the jobs failed.
Now only an update its executor made after the subscription confirms a recovered host (the master's
reconciliation answer was taken as proof here first: it may be old too, `test_share_host_unsure.py`), and
a share refused so on a host it did not open marks the host gone and is placed again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesos_gpu.core.model import JobState, TaskKey, TaskState
from mesos_gpu.core.records import MemberRecord
from mesos_gpu.core.sharehosts import gone_hosts
from mesos_gpu.core.sharing import LABEL_SHARE_HOST
from mesos_gpu.core.state import JobsRecovered, StatusReceived
from tests.scheduler.builders import offer, share_job, status
from tests.scheduler.test_shares import HOST, labels, launched, open_host, run
from tests.scheduler.test_state import Harness

REFUSED = ("Total resources cpus(allocated: *):0.2; mem(allocated: *):96; gpus(allocated: *):1 required by "
           "task and its executor is more than available cpus(allocated: *):3.3; mem(allocated: *):7904")


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def recovered(h: Harness) -> Harness:
    fresh = Harness()
    fresh(JobsRecovered(tuple(h.persisted.values()), 100.0))
    fresh.now = 100.0
    fresh.subscribe()
    return fresh


def accepting(h: Harness) -> list[bool]:
    return [view.accepting for view in h.state.share_host_views(h.now)]


def test_a_retried_agent_update_does_not_confirm_a_recovered_host_the_masters_answer_does(h: Harness) -> None:
    open_host(h)
    fresh = recovered(h)
    assert accepting(fresh) == [False]
    fresh.update("a.task-0.0", "TASK_RUNNING")      # an agent's update (uuid), sent before the failover
    assert accepting(fresh) == [False]
    fresh.update("a.task-0.0", "TASK_FINISHED")     # ... and its end: the host lingered, maybe exited
    assert accepting(fresh) == [False]
    fresh.submit("b", share_job("b"))
    assert launched(fresh.offers(offer("S1", gpus=0, gpu_memory=16384))) == []   # not on the old host
    (info,) = launched(fresh.offers(offer("S1", gpus=1, gpu_memory=16384)))
    assert labels(info)[LABEL_SHARE_HOST] == "sharehost.b.task-0.0"
    confirmed = recovered(h)
    confirmed.update("a.task-0.0", "TASK_RUNNING", with_uuid=False, reason="REASON_RECONCILIATION")
    assert accepting(confirmed) == [False]   # the master's last word may be old too (see below)
    confirmed(StatusReceived({**status("a.task-0.0", "TASK_RUNNING"), "timestamp": confirmed.now},
                             confirmed.tick()))     # made by its executor since the subscription
    assert accepting(confirmed) == [True]


def test_a_share_refused_on_a_host_whose_executor_ended_is_placed_again_on_a_new_host(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.submit("b", share_job("b"))
    (info,) = launched(h.offers(offer("S1", gpus=0, gpu_memory=16384)))
    assert labels(info)[LABEL_SHARE_HOST] == HOST            # the host as the scheduler knows it
    h.update("b.task-0.0", "TASK_ERROR", reason="REASON_TASK_INVALID", message=REFUSED, with_uuid=False)
    job = h.job("b")
    assert job.state is JobState.PENDING and job.restarts == 0, job.message
    assert "placing again" in job.message
    assert not h.state.share_hosts[HOST].accepting(h.now)    # gone: its task "a" is told lost later
    (again,) = launched(h.offers(offer("S1", gpus=1, gpu_memory=16384)))
    assert labels(again)[LABEL_SHARE_HOST] == "sharehost.b.task-0.1"


def test_a_share_refused_on_the_host_it_opened_fails_as_before(h: Harness) -> None:
    open_host(h)
    h.update("a.task-0.0", "TASK_ERROR", reason="REASON_TASK_INVALID", message="bad", with_uuid=False)
    assert h.job("a").state is JobState.FAILED


def member(key: str, task_id: str, host: str, state: TaskState = TaskState.STAGING, *, attempt: int = 0,
           started: bool = False, agent: str = "S1") -> MemberRecord:
    record = MemberRecord(TaskKey.parse(key), attempt, task_id, state, agent, "h1")
    record.share = {"host": host}
    record.ever_started = started
    if state is TaskState.ERROR:
        record.reason = "REASON_TASK_INVALID"
    return record


A = "sharehost.old-job.task-0.0"      # a host opened by another job, earlier


@pytest.mark.parametrize(("members", "gone"), [
    # a lone share refused on a host another job opened: that host is gone
    ([member("task-0", "j.task-0.0", A, TaskState.ERROR)], [("S1", A)]),
    # ... on the host it opened: an ordinary refusal
    ([member("task-0", "j.task-0.0", "sharehost.j.task-0.0", TaskState.ERROR)], []),
    # a gang: worker-0 on an old host (the master launched that host anew on the free GPU), worker-1
    # on a host it opened, refused for want of that GPU (the long soak of 2026-12-05, job 1598)
    ([member("worker-0", "j.worker-0.0", A), member("worker-1", "j.worker-1.0", "sharehost.j.worker-1.0",
                                                     TaskState.ERROR)], [("S1", A)]),
    # a gang on a host its worker-0 opened in this attempt: an ordinary refusal
    ([member("worker-0", "j.worker-0.0", "sharehost.j.worker-0.0"),
      member("worker-1", "j.worker-1.0", "sharehost.j.worker-0.0", TaskState.ERROR)], []),
    # a member of another attempt is not looked at; a task that started, or failed otherwise, neither
    ([member("worker-0", "j.worker-0.1", A, attempt=1),
      member("worker-1", "j.worker-1.2", "sharehost.j.worker-1.2", TaskState.ERROR, attempt=2)], []),
    ([member("task-0", "j.task-0.0", A, TaskState.ERROR, started=True)], []),
    ([member("task-0", "j.task-0.0", A, TaskState.FAILED)], []),
])
def test_the_hosts_gone_when_a_share_launch_is_refused(members: list[MemberRecord],
                                                        gone: list[tuple[str, str]]) -> None:
    refused = members[-1]
    assert gone_hosts(refused, members) == gone
