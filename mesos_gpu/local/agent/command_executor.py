"""Emulation of Mesos' built-in command executor (src/launcher/executor.cpp) for one command task.

TASK_STARTING, TASK_RUNNING, then TASK_FINISHED / TASK_FAILED ("Command exited with status N",
"Command terminated with signal <strsignal>") or, after a kill, TASK_KILLED; a kill sends TASK_KILLING
(to TASK_KILLING_STATE frameworks), SIGTERM to the process group, then SIGKILL after the grace period.
A kill before the process started (its URIs still being fetched) ends the task TASK_KILLED at once, as
Mesos' agent does for a task whose executor has not registered (slave.cpp killTask), and it never starts.
A TASK_FAILED message carries the last lines of the task's stderr (`stderr_tail`), where its cause
(e.g. `python3: not found`) usually is; the exit status stays first, as `core.policy` parses it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesos_gpu.core.wire import kill_grace_seconds
from mesos_gpu.local.agent.runners import LaunchSpec, Runner, RunningProcess
from mesos_gpu.local.agent.status_updates import Timers

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE_PERIOD = 3.0  # src/launcher/executor.cpp
STDERR_TAIL_LINES = 5
STDERR_TAIL_CHARS = 1000

Emit = Callable[..., None]  # emit(state, message=None, reason=None, source="SOURCE_EXECUTOR")


def describe_wait_status(status: int) -> str:
    """stout's WSTRINGIFY: 'exited with status N' or 'terminated with signal <strsignal>'."""
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return f"terminated with signal {signal.strsignal(signum) or f'Unknown signal {signum}'}"
    return f"wait status {status}"


def stderr_tail(path: Path, lines: int = STDERR_TAIL_LINES, limit: int = STDERR_TAIL_CHARS) -> str:
    """The last `lines` non-blank lines of the file at `path`, at most `limit` characters (the end
    kept); "" when it is missing, unreadable or blank."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4 * limit))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    tail = "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
    return tail[-limit:]


def with_stderr_tail(message: str, path: Path) -> str:
    """`message`, followed by the tail of the stderr file at `path` when it has one."""
    tail = stderr_tail(path)
    return f"{message}; last lines of stderr:\n{tail}" if tail else message


def command_argv(command: dict[str, Any]) -> tuple[list[str], str | None]:
    """(argv, executable) of a CommandInfo: `/bin/sh -c value` when shell (default true), else
    execvp(value, arguments)."""
    value = str(command.get("value", ""))
    if command.get("shell", True):
        return ["/bin/sh", "-c", value], None
    arguments = [str(a) for a in command.get("arguments", [])]
    return (arguments or [value]), value


def command_environment(command: dict[str, Any]) -> dict[str, str]:
    """CommandInfo.environment VALUE variables (SECRET ones are resolved just before the process starts:
    `local.agent.mounts.secret_environment`)."""
    env: dict[str, str] = {}
    for variable in command.get("environment", {}).get("variables", []):
        if variable.get("type", "VALUE") != "VALUE":
            continue
        env[str(variable["name"])] = str(variable.get("value", ""))
    return env


@dataclass
class CommandTaskConfig:
    kill_grace_period: float = DEFAULT_KILL_GRACE_PERIOD
    task_killing_state: bool = False  # the framework has the TASK_KILLING_STATE capability
    warnings: Sequence[str] = ()  # prepended to STARTING/RUNNING messages (e.g. image not used)
    # (source, message) of the TASK_KILLED that ends a task killed before its process started
    killed_before_start: tuple[str, str] = ("SOURCE_EXECUTOR", "Killed before its container was launched")


class CommandTask:
    """One command task's life: launch through a runner, report states, kill with a grace period."""

    def __init__(
        self,
        task: dict[str, Any],
        spec: LaunchSpec,
        runner: Runner,
        timers: Timers,
        *,
        emit: Emit,
        on_terminated: Callable[[CommandTask, int | None], None],
        config: CommandTaskConfig,
    ) -> None:
        self.task = task
        self.task_id: str = task["task_id"]["value"]
        self.spec = spec
        self._runner = runner
        self._timers = timers
        self._emit = emit
        self._on_terminated = on_terminated
        self.config = config
        self.state = "TASK_STAGING"
        self.process: RunningProcess | None = None
        self.started = False
        self.killed = False
        self._grace = config.kill_grace_period
        self._escalation: object | None = None

    @property
    def terminal(self) -> bool:
        return self.state in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_GONE")

    @property
    def launchable(self) -> bool:
        """Not started, killed or ended yet: what a completed URI fetch may still start."""
        return not (self.started or self.killed or self.terminal)

    def start(self) -> None:
        """Start the process (once; never after a kill)."""
        if not self.launchable:
            return
        self.started = True
        warning = "; ".join(self.config.warnings) or None
        self._report("TASK_STARTING", warning)
        try:
            self.process = self._runner.start(self.spec, self._exited)
        except Exception as exc:
            log.warning("task %s failed to launch: %s", self.task_id, exc)
            self._report(
                "TASK_FAILED", f"Failed to launch container: {exc}", "REASON_CONTAINER_LAUNCH_FAILED"
            )
            self._on_terminated(self, None)
            return
        if self.killed:  # killed while TASK_STARTING went out
            self._terminate()
            return
        self._report("TASK_RUNNING", warning)

    def kill(self, kill_policy: dict[str, Any] | None = None) -> None:
        """KILL: TASK_KILLING (if capable), SIGTERM now, SIGKILL after the grace period; before the
        process started, TASK_KILLED now (and it never starts)."""
        if self.terminal or self.killed:
            return
        self.killed = True
        if not self.started:
            source, message = self.config.killed_before_start
            self._report("TASK_KILLED", message, "REASON_TASK_KILLED_DURING_LAUNCH", source)
            self._on_terminated(self, None)
            return
        self._grace = kill_grace_seconds(
            kill_policy or self.task.get("kill_policy"), self.config.kill_grace_period
        )
        if self.config.task_killing_state:
            self._report("TASK_KILLING")
        self._terminate()

    def _terminate(self) -> None:
        """SIGTERM to the process group, SIGKILL after the grace period (nothing while it is still
        being started, or when its launch failed)."""
        if self.process is None:
            return
        self.process.signal(signal.SIGTERM)
        self._escalation = self._timers.call_later(self._grace, self._escalate)

    def destroy(self) -> None:
        """SIGKILL the process group now; one not started yet never starts (agent shutdown)."""
        self.killed = True
        if self.process is not None and not self.process.exited:
            self.process.signal(signal.SIGKILL)

    def _escalate(self) -> None:
        self._escalation = None
        if self.process is not None and not self.process.exited:
            log.info("task %s did not stop within its grace period: SIGKILL", self.task_id)
            self.process.signal(signal.SIGKILL)

    def _exited(self, status: int) -> None:
        if self._escalation is not None:
            self._timers.remove_timeout(self._escalation)
            self._escalation = None
        if self.terminal:
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            state = "TASK_FINISHED"
        elif self.killed:
            state = "TASK_KILLED"
        else:
            state = "TASK_FAILED"
        message = f"Command {describe_wait_status(status)}"
        if state == "TASK_FAILED":
            message = with_stderr_tail(message, self.spec.stderr)
        self._report(state, message)
        self._on_terminated(self, status)

    def _report(
        self,
        state: str,
        message: str | None = None,
        reason: str | None = None,
        source: str = "SOURCE_EXECUTOR",
    ) -> None:
        self.state = state
        self._emit(state, message=message, reason=reason, source=source)
