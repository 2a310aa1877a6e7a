"""A failing command task's cause is in its terminal status message (issue 19 item 11a): the last lines
of its stderr follow "Command exited with status N", which still parses as the exit code."""

from __future__ import annotations

from pathlib import Path

from mesos_gpu.core.policy import exit_code_from_message
from mesos_gpu.local.agent.command_executor import CommandTask, CommandTaskConfig, stderr_tail
from mesos_gpu.local.agent.runners import LaunchSpec


class _Process:
    pid = 1
    exited = False

    def signal(self, signum: int) -> None:
        pass


class _Runner:
    def __init__(self) -> None:
        self.exited = None

    def start(self, spec, exited):
        self.exited = exited
        return _Process()


class _Timers:
    def call_later(self, delay, callback, *args):
        return object()

    def remove_timeout(self, timeout) -> None:
        pass


def _run(tmp_path: Path, stderr: str, wait_status: int) -> list[tuple[str, str | None]]:
    (tmp_path / "stderr").write_text(stderr)
    (tmp_path / "stdout").write_text("")
    spec = LaunchSpec(["/bin/sh", "-c", "x"], {}, tmp_path, tmp_path / "stdout", tmp_path / "stderr")
    runner, sent = _Runner(), []
    task = CommandTask(
        {"task_id": {"value": "t"}},
        spec,
        runner,  # type: ignore[arg-type]
        _Timers(),
        emit=lambda state, message=None, reason=None, source=None: sent.append((state, message)),
        on_terminated=lambda *_: None,
        config=CommandTaskConfig(),
    )
    task.start()
    runner.exited(wait_status)
    return sent


def test_a_failed_task_says_the_last_lines_of_its_stderr(tmp_path):
    noise = "".join(f"line {i}\n" for i in range(50))
    state, message = _run(tmp_path, noise + "/bin/sh: 1: python3: not found\n", 127 << 8)[-1]
    assert state == "TASK_FAILED"
    assert message is not None and message.startswith("Command exited with status 127")
    assert "python3: not found" in message and "line 0\n" not in message
    assert exit_code_from_message(message) == 127


def test_a_finished_task_or_an_empty_stderr_adds_nothing(tmp_path):
    assert _run(tmp_path, "warning\n", 0)[-1] == ("TASK_FINISHED", "Command exited with status 0")
    assert _run(tmp_path, "", 1 << 8)[-1] == ("TASK_FAILED", "Command exited with status 1")


def test_the_tail_is_bounded_and_missing_files_give_nothing(tmp_path):
    (tmp_path / "stderr").write_text("x" * 100_000 + "\nlast\n")
    tail = stderr_tail(tmp_path / "stderr")
    assert tail.endswith("last") and len(tail) <= 1024
    assert stderr_tail(tmp_path / "missing") == ""
