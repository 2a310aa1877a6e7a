"""The decision log through the real runtime (state machine, worker thread, driver layer) with a fake
driver: a job that fails, restarts and succeeds, and a job killed by request, each leave their launch,
status, restart and kill lines with the job id, and no line anywhere holds an env value."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from mesos_gpu.core.logformat import formatter_for
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import Tick
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Driver, Store
from tests.scheduler.builders import offer, status
from tests.waiting import wait_until

SECRET = "hunter2-Very-Secret"


class Scheduler:
    """A leading runtime with a hand-set clock; `callbacks` is what pymesos would call."""

    def __init__(self) -> None:
        self.now = 1_000.0
        made: list[FrameworkCallbacks] = []

        def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> Driver:
            made.append(callbacks)
            return Driver()

        self.runtime = SchedulerRuntime(
            store=Store(), planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
            launch=LaunchSettings(), identifier="a:1", clock=lambda: self.now, tick_seconds=3600,
            driver_factory=factory,  # type: ignore[arg-type]
        )
        self.runtime.start()
        wait_until(lambda: made, 5, "the driver")
        self.callbacks = made[0]
        self.callbacks.registered(None, {"value": "F"}, {})
        self.settle()

    def settle(self) -> None:
        """Every event before this one was applied and its done-callbacks ran (one FIFO worker)."""
        self.runtime.post_event(Tick(self.now)).result(5)

    def offers(self) -> None:
        self.callbacks.resourceOffers(None, [offer("S1", gpus=2)])
        self.settle()

    def update(self, task_id: str, state: str, **more: Any) -> None:
        self.callbacks.statusUpdate(None, status(task_id, state, **more))
        self.settle()


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    running = Scheduler()
    yield running
    running.runtime.stop()


def test_launches_failures_restarts_and_kills_are_logged_with_the_job_id(
        scheduler: Scheduler, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    flaky = validate_job({"name": "flaky", "command": "exit 3", "cpus": 1, "mem": 64, "gpus": 1,
                          "env": {"API_TOKEN": SECRET},
                          "restart": {"policy": "OnFailure", "backoff_limit": 2, "backoff_seconds": 5}})
    job = scheduler.runtime.submit(flaky)[0]["id"]
    scheduler.offers()
    scheduler.update(f"{job}.task-0.0", "TASK_RUNNING")
    scheduler.update(f"{job}.task-0.0", "TASK_FAILED", reason="REASON_COMMAND_EXECUTOR_FAILED",
                     message="Command exited with status 3")
    scheduler.now += 60    # past the backoff
    scheduler.offers()
    scheduler.update(f"{job}.task-0.1", "TASK_FINISHED")
    sleeper = validate_job({"name": "sleeper", "command": "sleep 600", "cpus": 1, "mem": 64, "gpus": 1,
                            "env": {"PASSWORD": SECRET}})
    other = scheduler.runtime.submit(sleeper)[0]["id"]
    scheduler.offers()
    scheduler.update(f"{other}.task-0.0", "TASK_RUNNING")
    scheduler.runtime.kill(other)
    scheduler.update(f"{other}.task-0.0", "TASK_KILLED")

    records = [r for r in caplog.records
               if r.name == "mesos_gpu.scheduler.events" and r.levelno >= logging.INFO]
    lines = [json.loads(formatter_for("json").format(r)) for r in records]
    seen = [(line["level"], line["message"].split(" (")[0]) for line in lines]
    assert seen == [
        ("INFO", f"launching task {job}.task-0.0 of job {job} on agent S1"),
        ("INFO", f"job {job} is STAGING"),
        ("INFO", f"task {job}.task-0.0 of job {job} on agent S1"),          # TASK_RUNNING
        ("INFO", f"job {job} is RUNNING"),
        ("WARNING", f"task {job}.task-0.0 of job {job} on agent S1"),       # TASK_FAILED
        ("INFO", f"job {job} restarting after attempt 0"),
        ("INFO", f"launching task {job}.task-0.1 of job {job} on agent S1"),
        ("INFO", f"job {job} is STAGING"),
        ("INFO", f"task {job}.task-0.1 of job {job} on agent S1"),          # TASK_FINISHED
        ("INFO", f"job {job} is SUCCEEDED"),
        ("INFO", f"launching task {other}.task-0.0 of job {other} on agent S1"),
        ("INFO", f"job {other} is STAGING"),
        ("INFO", f"task {other}.task-0.0 of job {other} on agent S1"),
        ("INFO", f"job {other} is RUNNING"),
        ("INFO", f"killing task {other}.task-0.0 of job {other} on agent S1"),
        ("INFO", f"task {other}.task-0.0 of job {other} on agent S1"),      # TASK_KILLED
        ("INFO", f"job {other} is KILLED"),
    ]
    assert all(line["job_id"] in (job, other) for line in lines)
    failed = lines[4]
    assert (failed["state"], failed["reason"], failed["attempt"]) == (
        "TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", 0)
    restart = lines[5]
    assert (restart["state"], restart["restarts"]) == ("RESTARTING", 1)
    backoff = datetime.fromisoformat(restart["next_attempt_at"]).timestamp() - 1_000.0
    assert 0 < backoff <= 5, restart               # 5 s of backoff, jittered, from the hand-set clock
    assert lines[6]["attempt"] == 1 and lines[14]["agent_id"] == "S1"
    for record in caplog.records:  # every logger, every level, both formats
        for log_format in ("text", "json"):
            assert SECRET not in formatter_for(log_format).format(record), record.getMessage()
