"""The executor's task status updates: one TaskStatus JSON per update, sent through the executor
driver and retried while the agent is unreachable, in order per task, and none after a task's
terminal one (Mesos' terminal task states, `mesos_gpu.core.wire`).

    updates = StatusUpdates(retry_seconds=30)
    updates.send(driver, "task-1", "TASK_RUNNING", "Container 0123abcd on GPUs 0")
    updates.send(driver, "task-1", "TASK_FAILED", "Command exited with status 2",
                 reason="REASON_COMMAND_EXECUTOR_FAILED", labels={"exit_code": "2"})
    updates.send(driver, "task-1", "TASK_KILLING")   # False: the task has ended, nothing is sent
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from mesos_gpu.core.wire import is_terminal_state

log = logging.getLogger("isolator.executor")


def task_status(
    task_id: str,
    state: str,
    message: str | None = None,
    reason: str | None = None,
    labels: Mapping[str, str] | None = None,
    *,
    data: str | None = None,
) -> dict[str, Any]:
    """A TaskStatus JSON (the driver adds the uuid, source and timestamp); `data` is base64 already."""
    status: dict[str, Any] = {"task_id": {"value": task_id}, "state": state}
    if data:
        status["data"] = data
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    if labels:
        status["labels"] = {"labels": [{"key": k, "value": v} for k, v in labels.items()]}
    return status


class StatusUpdates:
    """Sends status updates; never raises. Updates of one task go out one at a time, in call order; once
    a terminal state was sent (or given up on) for a task, later updates of it are dropped until
    `restart(task_id)` (a new launch with the same id)."""

    def __init__(self, retry_seconds: float) -> None:
        self.retry_seconds = retry_seconds
        self._last: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _task_lock(self, task_id: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(task_id, threading.Lock())

    def last_state(self, task_id: str) -> str | None:
        """The last state sent (or being sent) for the task; None before the first."""
        with self._lock:
            return self._last.get(task_id)

    def restart(self, task_id: str) -> None:
        """Forget the task's updates: a task launched again under the same id starts afresh."""
        with self._task_lock(task_id), self._lock:
            self._last.pop(task_id, None)

    def send(
        self,
        driver: Any,
        task_id: str,
        state: str,
        message: str | None = None,
        *,
        reason: str | None = None,
        labels: Mapping[str, str] | None = None,
        data: str | None = None,
    ) -> bool:
        """Send one update, retrying for `retry_seconds` while the driver refuses it; False when it was
        not sent (the task had ended, or the agent stayed unreachable)."""
        with self._task_lock(task_id):
            last = self.last_state(task_id)
            if last is not None and is_terminal_state(last):
                log.info("task %s: %s not sent, the task already ended with %s", task_id, state, last)
                return False
            with self._lock:
                self._last[task_id] = state
            return self._deliver(driver, task_status(task_id, state, message, reason, labels, data=data))

    def send_async(
        self, driver: Any, task_id: str, state: str, message: str | None = None, reason: str | None = None
    ) -> None:
        """`send` on its own thread (pymesos callbacks must not block the driver's I/O thread)."""
        threading.Thread(
            target=self.send, args=(driver, task_id, state, message), kwargs={"reason": reason}, daemon=True
        ).start()

    def _deliver(self, driver: Any, status: Mapping[str, Any]) -> bool:
        task_id, state, message = status["task_id"]["value"], status["state"], status.get("message")
        deadline = time.monotonic() + self.retry_seconds
        while True:
            try:
                driver.sendStatusUpdate(dict(status))
                log.info("task %s: %s%s", task_id, state, f" ({message})" if message else "")
                return True
            except Exception as exc:
                if time.monotonic() >= deadline or getattr(driver, "aborted", False):
                    log.error("could not send %s for task %s: %s", state, task_id, exc)
                    return False
                time.sleep(0.5)
