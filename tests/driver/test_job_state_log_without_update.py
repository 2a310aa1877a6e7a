"""A job state change decided without a Mesos update (a pending job killed through the API, a deadline
passed on a Tick) leaves its "job <id> is <STATE>" line, as a never-fits failure (decided in an OFFERS
callback) does: the runtime observes the commands of its own Tick and kill events with the same
`JobStateLog` its driver callbacks use (found by stream F in wave 7: both tests failed before)."""

from __future__ import annotations

import logging

from mesos_gpu.core.state import Tick
from mesos_gpu.core.validation import validate_job
from tests.driver.test_decision_log_runtime import Scheduler, scheduler  # noqa: F401 - fixture


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mesos_gpu.scheduler.events"]


def test_a_pending_job_killed_through_the_api_is_logged(scheduler: Scheduler, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, "mesos_gpu.scheduler.events")
    scheduler.runtime.submit(validate_job({"name": "p", "command": "true", "gpus": 1}))
    scheduler.settle()
    job_id = scheduler.runtime.jobs()[0]["id"]
    scheduler.runtime.kill(job_id)
    scheduler.settle()
    assert any(f"job {job_id} is KILLED" in line for line in _lines(caplog)), _lines(caplog)


def test_a_deadline_failure_is_logged_as_a_warning(scheduler: Scheduler, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, "mesos_gpu.scheduler.events")
    spec = {"name": "dl", "command": "sleep 100", "gpus": 1, "deadline_seconds": 10}
    scheduler.runtime.submit(validate_job(spec))
    scheduler.settle()
    scheduler.offers()
    job_id = scheduler.runtime.jobs()[0]["id"]
    scheduler.now += 60
    scheduler.runtime.post_event(Tick(scheduler.now)).result(5)
    scheduler.settle()
    failed = [r for r in caplog.records if f"job {job_id} is FAILED" in r.getMessage()]
    assert failed and failed[0].levelno == logging.WARNING, _lines(caplog)
    assert "deadline of 10 s exceeded" in failed[0].getMessage()
