"""The scheduler's decision log: one line per launch, kill, task status that matters, and job state
change (a restart decision is a change to RESTARTING), each with the job id and, where known, the task
id, agent, attempt and reason as `extra=` fields (`core.logformat.JsonFormatter` writes them as JSON).

Never logged: a TaskInfo's command or environment, a job's spec, a status's `data`; messages (which may
quote a task's stderr) are cut to one line of at most `MESSAGE_LIMIT` characters. Failures are WARNING,
the rest INFO; non-terminal statuses and reconciliation answers are DEBUG.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from mesos_gpu.core.commands import Accept, KillTask, Persist
from mesos_gpu.core.logformat import iso_utc
from mesos_gpu.core.model import parse_task_id

__all__ = ["MESSAGE_LIMIT", "JobStateLog", "log_kill", "log_launch", "log_status"]

log = logging.getLogger("mesos_gpu.scheduler.events")

MESSAGE_LIMIT = 300
_FAILED = frozenset({"TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE",
                     "TASK_GONE_BY_OPERATOR", "TASK_UNREACHABLE", "TASK_UNKNOWN"})
_ENDED = frozenset({"TASK_FINISHED", "TASK_KILLED"})
_SEEN = frozenset({"TASK_RUNNING"})  # a launch confirmed: INFO unless it answers a reconciliation
_TERMINAL_JOB = frozenset({"SUCCEEDED", "FAILED", "KILLED"})


def one_line(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    """`text` on one line (runs of whitespace made one space), cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def task_fields(task_id: str) -> dict[str, Any]:
    """job_id, task_id and attempt of one of our task ids (job_id None for a task id not of ours)."""
    try:
        job_id, _, attempt = parse_task_id(task_id)
    except ValueError:
        return {"job_id": None, "task_id": task_id, "attempt": None}
    return {"job_id": job_id, "task_id": task_id, "attempt": attempt}


def log_launch(command: Accept) -> None:
    """One INFO line per task an ACCEPT launches."""
    for info in command.task_infos:
        fields = task_fields(str(info["task_id"]["value"]))
        fields.update(agent_id=command.agent_id, gpus=_gpus(info.get("resources", ())))
        log.info("launching task %s of job %s on agent %s (attempt %s, %g GPUs)", fields["task_id"],
                 fields["job_id"], command.agent_id, fields["attempt"], fields["gpus"], extra=fields)


def log_kill(command: KillTask) -> None:
    """One INFO line per KILL the scheduler sends (its reason is the job's next state line)."""
    fields = task_fields(command.task_id)
    fields["agent_id"] = command.agent_id
    log.info("killing task %s of job %s on agent %s (attempt %s)", command.task_id, fields["job_id"],
             command.agent_id, fields["attempt"], extra=fields)


def log_status(status: Mapping[str, Any]) -> None:
    """One line per task status: failures WARNING, finished/killed/running INFO, the rest DEBUG."""
    state = str(status.get("state", ""))
    reason = status.get("reason")
    fields = task_fields(str(_value(status.get("task_id"))))
    fields.update(agent_id=_value(status.get("agent_id")), state=state, reason=reason,
                  source=status.get("source"))
    message = one_line(status.get("message") or "")
    if status.get("executor_id") is not None:
        fields["executor_id"] = _value(status.get("executor_id"))
    if state in _FAILED:
        level = logging.WARNING
    elif state in _ENDED or (state in _SEEN and reason != "REASON_RECONCILIATION"):
        level = logging.INFO
    else:
        level = logging.DEBUG
    log.log(level, "task %s of job %s on agent %s (attempt %s): %s%s%s", fields["task_id"],
            fields["job_id"], fields["agent_id"], fields["attempt"], state,
            f" ({reason})" if reason else "", f": {message}" if message else "",
            extra=dict(fields, status_message=message) if message else fields)


class JobStateLog:
    """Logs each job's state changes from the `Persist` commands it is shown (thread-safe): a restart
    decision (RESTARTING, with the restart count, when the next attempt may start and why), a job that
    failed (WARNING) or ended. The first state seen of a job after this process started is logged too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}

    def observe(self, commands: Iterable[Any]) -> None:
        for command in commands:
            if isinstance(command, Persist):
                self._persisted(command.job_id, command.record)

    def _persisted(self, job_id: str, record: Mapping[str, Any]) -> None:
        state = str(record.get("state", ""))
        with self._lock:
            if self._states.get(job_id) == state:
                return
            if state in _TERMINAL_JOB:
                self._states.pop(job_id, None)
            else:
                self._states[job_id] = state
        reason = one_line(record.get("message") or "")
        fields = {"job_id": job_id, "state": state, "attempt": record.get("attempt"),
                  "restarts": record.get("restarts"), "reason": reason}
        if state == "RESTARTING":
            at = record.get("next_attempt_at")
            when = iso_utc(float(at)) if isinstance(at, int | float) else "now"
            log.info("job %s restarting after attempt %s (restart %s, next attempt at %s): %s", job_id,
                     fields["attempt"], fields["restarts"], when, reason,
                     extra=dict(fields, next_attempt_at=when))
            return
        level = logging.WARNING if state == "FAILED" else logging.INFO
        log.log(level, "job %s is %s (attempt %s): %s", job_id, state, fields["attempt"], reason,
                extra=fields)


def _value(field: Any) -> Any:
    """`{"value": x}` -> x (None stays None)."""
    return field.get("value") if isinstance(field, Mapping) else field


def _gpus(resources: Iterable[Mapping[str, Any]]) -> float:
    return float(sum(r.get("scalar", {}).get("value", 0.0) for r in resources if r.get("name") == "gpus"))
