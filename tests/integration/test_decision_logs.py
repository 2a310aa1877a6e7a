"""The decision log on the real local cluster with a real scheduler: a job that fails, restarts and fails
for good, and a job killed by request leave launch, failure, restart, kill and end lines with their job
id; no line of any logger holds a job's env value."""

from __future__ import annotations

import json
import logging

import pytest

from mesos_gpu.core.logformat import formatter_for
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.scheduler_main import SECRET_DEBUG_LOGGERS
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]

SECRET = "correct-Horse-battery-9"


def job_lines(caplog: pytest.LogCaptureFixture, job_id: str) -> list[dict]:
    records = [r for r in caplog.records
               if r.name == "mesos_gpu.scheduler.events" and r.levelno >= logging.INFO]
    lines = [json.loads(formatter_for("json").format(r)) for r in records]
    return [line for line in lines if line.get("job_id") == job_id]


def ended(runtime: SchedulerRuntime, job_id: str) -> dict:
    return wait_for(
        lambda: (view := runtime.job(job_id))["state"] in ("SUCCEEDED", "FAILED", "KILLED") and view,
        30, f"job {job_id} did not end")


def test_launches_failures_restarts_and_kills_are_logged_and_no_env_value(
        runtime: SchedulerRuntime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    failing = validate_job({"name": "failing", "command": "exit 3", "cpus": 0.2, "mem": 32, "gpus": 1,
                            "env": {"API_TOKEN": SECRET},
                            "restart": {"policy": "OnFailure", "backoff_limit": 1, "backoff_seconds": 0.2}})
    job = runtime.submit(failing)[0]["id"]
    assert ended(runtime, job)["state"] == "FAILED"
    sleeper = validate_job({"name": "sleeper", "command": "sleep 60", "cpus": 0.2, "mem": 32, "gpus": 1,
                            "env": {"PASSWORD": SECRET}})
    other = runtime.submit(sleeper)[0]["id"]
    wait_for(lambda: runtime.job(other)["state"] == "RUNNING", 30, "the sleeper never ran")
    runtime.kill(other)
    assert ended(runtime, other)["state"] == "KILLED"
    wait_for(lambda: any(line.get("state") == "KILLED" for line in job_lines(caplog, other)), 10,
             "no line for the killed job's end")

    lines = job_lines(caplog, job)
    launches = [line for line in lines if line["message"].startswith("launching task")]
    assert [(line["attempt"], line["task_id"]) for line in launches] == [(0, f"{job}.task-0.0"),
                                                                         (1, f"{job}.task-0.1")]
    assert all(line["agent_id"] for line in launches)
    failures = [line for line in lines if line.get("state") == "TASK_FAILED"]
    assert [(line["level"], line["attempt"]) for line in failures] == [("WARNING", 0), ("WARNING", 1)]
    assert [line["restarts"] for line in lines if line.get("state") == "RESTARTING"] == [1]
    [gave_up] = [line for line in lines if line.get("state") == "FAILED"]
    assert gave_up["level"] == "WARNING" and gave_up["reason"]

    others = job_lines(caplog, other)
    assert [line["task_id"] for line in others if line["message"].startswith("killing task")] == [
        f"{other}.task-0.0"]
    assert [line["level"] for line in others if line.get("state") == "TASK_KILLED"] == ["INFO"]

    # Every logger at every level, in both formats: only kazoo's DEBUG lines (every znode written) would
    # show the env, and `configure_logging` keeps them out (tests/config/test_log_format_setting.py).
    leaks = {(r.name, r.levelname) for r in caplog.records for f in ("text", "json")
             if SECRET in formatter_for(f).format(r)}
    kept_out = {name.split(".")[0] for name, level in leaks if level == "DEBUG"}
    assert kept_out <= set(SECRET_DEBUG_LOGGERS) and all(level == "DEBUG" for _, level in leaks), leaks
