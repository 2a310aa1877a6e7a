"""The scheduler's decision log (`driver.eventlog`): launches, kills, task statuses and job state changes
(restart decisions) each on one line with the job id and the known fields; never an env value."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from mesos_gpu.core.commands import Accept, KillTask, Persist
from mesos_gpu.core.logformat import JsonFormatter, formatter_for
from mesos_gpu.driver.eventlog import MESSAGE_LIMIT, JobStateLog, log_kill, log_launch, log_status
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.mesosdriver import carry_out
from tests.scheduler.builders import status

LOGGER = "mesos_gpu.scheduler.events"
SECRET = "s3cr3t-Value-42"


class Lines:
    """The records logged in the test's call phase (caplog's list is replaced between phases)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    def __iter__(self) -> Iterator[logging.LogRecord]:
        return iter(self._caplog.records)

    def __len__(self) -> int:
        return len(self._caplog.records)

    def __getitem__(self, index: int) -> logging.LogRecord:
        return self._caplog.records[index]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return Lines(caplog)


def task_info(task_id: str, gpus: float = 1.0) -> dict[str, Any]:
    return {
        "name": task_id, "task_id": {"value": task_id}, "agent_id": {"value": "S1"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
                      {"name": "gpus", "type": "SCALAR", "scalar": {"value": gpus}}],
        "command": {"value": f"echo {SECRET}",
                    "environment": {"variables": [{"name": "TOKEN", "value": SECRET}]}},
    }


def fields(record: logging.LogRecord) -> dict[str, Any]:
    out = json.loads(JsonFormatter().format(record))
    assert isinstance(out, dict)
    return out


def test_a_launch_is_one_info_line_per_task_with_job_task_agent_attempt_and_no_command(
        lines: Lines) -> None:
    infos = (task_info("train-1a.worker-0.2"), task_info("train-1a.ps-0.2", 0))
    log_launch(Accept("S1", ("O1",), infos, 5.0))
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    first = fields(lines[0])
    assert {k: first[k] for k in ("job_id", "task_id", "agent_id", "attempt", "gpus")} == {
        "job_id": "train-1a", "task_id": "train-1a.worker-0.2", "agent_id": "S1", "attempt": 2, "gpus": 1.0}
    assert lines[0].getMessage() == (
        "launching task train-1a.worker-0.2 of job train-1a on agent S1 (attempt 2, 1 GPUs)")
    assert all(SECRET not in formatter_for(f).format(r) for r in lines for f in ("text", "json"))


def test_a_kill_names_the_job_task_agent_and_attempt(lines: Lines) -> None:
    log_kill(KillTask("train-1a.chief-0.0", "S2"))
    [record] = lines
    assert record.levelno == logging.INFO
    assert {k: fields(record)[k] for k in ("job_id", "task_id", "agent_id", "attempt")} == {
        "job_id": "train-1a", "task_id": "train-1a.chief-0.0", "agent_id": "S2", "attempt": 0}
    assert record.getMessage().startswith("killing task train-1a.chief-0.0 of job train-1a on agent S2")


@pytest.mark.parametrize(("state", "reason", "level"), [
    ("TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", logging.WARNING),
    ("TASK_LOST", "REASON_AGENT_REMOVED", logging.WARNING),
    ("TASK_ERROR", "REASON_TASK_INVALID", logging.WARNING),
    ("TASK_GONE", None, logging.WARNING),
    ("TASK_UNREACHABLE", None, logging.WARNING),
    ("TASK_FINISHED", None, logging.INFO),
    ("TASK_KILLED", None, logging.INFO),
    ("TASK_RUNNING", None, logging.INFO),
    ("TASK_RUNNING", "REASON_RECONCILIATION", logging.DEBUG),
    ("TASK_STARTING", None, logging.DEBUG),
    ("TASK_KILLING", None, logging.DEBUG),
])
def test_statuses_are_logged_failures_as_warnings(
        lines: Lines, state: str, reason: str | None, level: int) -> None:
    log_status(status("train-1a.worker-1.3", state, agent="S9", reason=reason, message="exit 3\nTraceback"))
    [record] = lines
    assert record.levelno == level
    out = fields(record)
    assert {k: out[k] for k in ("job_id", "task_id", "agent_id", "attempt", "state", "reason")} == {
        "job_id": "train-1a", "task_id": "train-1a.worker-1.3", "agent_id": "S9", "attempt": 3,
        "state": state, "reason": reason}
    assert out["status_message"] == "exit 3 Traceback"
    assert "\n" not in record.getMessage()


def test_a_long_message_is_cut_and_a_foreign_task_id_has_no_job(lines: Lines) -> None:
    log_status(status("not-ours", "TASK_FAILED", message="x" * 5000))
    out = fields(lines[0])
    assert out["job_id"] is None and out["task_id"] == "not-ours"
    assert len(out["status_message"]) == MESSAGE_LIMIT and out["status_message"].endswith("...")


def persist(job_id: str, state: str, **more: Any) -> Persist:
    record = {"id": job_id, "state": state, "attempt": 0, "restarts": 0, "message": "",
              "spec": {"env": {"TOKEN": SECRET}}, **more}
    return Persist(job_id, record)


def test_job_state_changes_are_logged_once_each_with_restart_decisions(lines: Lines) -> None:
    states = JobStateLog()
    states.observe([persist("j", "STAGING")])
    states.observe([persist("j", "STAGING"), persist("j", "RUNNING")])   # the repeat is not a change
    states.observe([persist("j", "RESTARTING", restarts=1, next_attempt_at=1_796_388_007.5,
                            message="member task-0 failed (exit 3)")])
    states.observe([KillTask("j.task-0.0", "S1"), persist("j", "FAILED", attempt=1, message="gave up")])
    states.observe([persist("j", "FAILED", attempt=1)])                   # forgotten once terminal: again
    assert [(r.levelno, fields(r)["state"]) for r in lines] == [
        (logging.INFO, "STAGING"), (logging.INFO, "RUNNING"), (logging.INFO, "RESTARTING"),
        (logging.WARNING, "FAILED"), (logging.WARNING, "FAILED")]
    restart = fields(lines[2])
    assert (restart["job_id"], restart["restarts"]) == ("j", 1)
    assert restart["reason"] == "member task-0 failed (exit 3)"
    assert restart["next_attempt_at"] == "2026-12-04T12:40:07.500Z"
    assert lines[2].getMessage() == ("job j restarting after attempt 0 (restart 1, next attempt at "
                                     "2026-12-04T12:40:07.500Z): member task-0 failed (exit 3)")
    assert all(SECRET not in JsonFormatter().format(r) for r in lines)


class Calls:
    def __init__(self) -> None:
        self.made: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.made.append((name, args))


def test_carry_out_logs_launches_and_kills_before_its_driver_calls(lines: Lines) -> None:
    driver = Calls()
    carry_out(driver, Accept("S1", ("O1",), (task_info("j.task-0.0"),), 5.0))  # type: ignore[arg-type]
    carry_out(driver, KillTask("j.task-0.0", "S1"))  # type: ignore[arg-type]
    assert [name for name, _ in driver.made] == ["acceptOffers", "killTask"]
    assert [r.getMessage().split()[0] for r in lines] == ["launching", "killing"]


def test_the_callbacks_log_each_status_and_the_decisions_the_sinks_future_completes_with(
        lines: Lines) -> None:
    futures: list[Future[Any]] = []

    def sink(event: Any) -> Future[Any]:
        futures.append(Future())
        return futures[-1]

    callbacks = FrameworkCallbacks(sink)
    callbacks.statusUpdate(None, status("j.task-0.0", "TASK_FAILED", reason="REASON_COMMAND_EXECUTOR_FAILED"))
    assert [r.levelno for r in lines] == [logging.WARNING]        # the status, before any decision
    futures[0].set_result([persist("j", "RESTARTING", restarts=1, next_attempt_at=None)])
    assert fields(lines[-1])["state"] == "RESTARTING"
    callbacks.statusUpdate(None, status("j.task-0.1", "TASK_FAILED"))
    futures[1].set_exception(RuntimeError("the worker failed"))   # nothing decided: nothing more logged
    callbacks.statusUpdate(None, status("j.task-0.1", "TASK_FINISHED"))
    futures[2].cancel()
    assert len(lines) == 4


def test_a_sink_that_returns_no_future_is_fine(lines: Lines) -> None:
    FrameworkCallbacks(lambda event: None).statusUpdate(None, status("j.task-0.0", "TASK_FINISHED"))
    assert [fields(r)["state"] for r in lines] == ["TASK_FINISHED"]
