"""Issue 19 item 7: the message a kill leaves on a job says truly what it stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesos_gpu.core.model import JobState
from mesos_gpu.core.state import KillRequested
from tests.scheduler.builders import offer, single_job
from tests.scheduler.test_state import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def test_a_job_killed_before_its_first_launch_was_killed_before_it_ran(h: Harness) -> None:
    h.submit("job", single_job(gpus=8))
    h(KillRequested("job", h.tick()))
    assert h.job("job").state is JobState.KILLED
    assert h.job("job").message == "killed before it ran"


def test_a_job_killed_while_waiting_to_restart_says_how_many_attempts_ran(h: Harness) -> None:
    h.submit("flaky", single_job(restart={"policy": "OnFailure", "backoff_limit": 5, "backoff_seconds": 60}))
    for attempt in range(2):
        h.offers(offer("S1"))
        h.run_all("flaky")
        h.update(f"flaky.task-0.{attempt}", "TASK_FAILED", message="Command exited with status 1")
        assert h.job("flaky").state is JobState.RESTARTING
        h.now += 120  # past the backoff
    h.now -= 120  # still in the second backoff
    h(KillRequested("flaky", h.tick()))
    job = h.job("flaky")
    assert job.state is JobState.KILLED
    assert "before it ran" not in job.message
    assert job.message == "killed while waiting to restart, after 2 attempts"


def test_a_job_killed_while_placed_again_after_a_dropped_launch_says_so(h: Harness) -> None:
    h.submit("job", single_job())
    h.offers(offer("S1"))
    h.update("job.task-0.0", "TASK_LOST", reason="REASON_INVALID_OFFERS", with_uuid=False,
             message="Task launched with invalid offers: Offer O1 is no longer valid")
    assert h.job("job").state is JobState.PENDING
    h(KillRequested("job", h.tick()))
    assert h.job("job").message == "killed while waiting to be placed again, after 1 launch attempt"
