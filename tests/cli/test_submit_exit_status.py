"""`submit --follow` exits with the task's exit code for a single-task job (issue 19 item 11b), as
`mesos-gpu run` does; a job of several tasks exits 0 (SUCCEEDED) or 1."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from mesos_gpu.cli import build_parser
from mesos_gpu.commands import submit as submit_command


def _job(state: str, codes: list[int | None]) -> dict:
    tasks = [
        {
            "name": f"task-{i}",
            "task_id": f"j.task-{i}.0",
            "state": "TASK_FAILED",
            "agent_id": None,
            "exit_code": code,
            "message": None,
            "gpus": 0,
        }
        for i, code in enumerate(codes)
    ]
    return {"id": "j-1", "state": state, "terminal": True, "tasks": tasks, "message": None}


class _Api:
    def __init__(self, job: dict) -> None:
        self._job = job

    def submit(self, doc, key=None):
        return self._job, True

    def job(self, job_id):
        return self._job


def _follow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job: dict) -> tuple[int, str]:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"name": "j", "command": "exit 3"}))
    monkeypatch.setattr(submit_command, "client_from", lambda args: _Api(job))
    args = build_parser().parse_args(["submit", str(path), "--follow", "--interval", "0"])
    out = io.StringIO()
    with redirect_stdout(out):
        status = args.func(args)
    return status, out.getvalue()


def test_a_single_task_job_exits_with_its_task_exit_code(tmp_path, monkeypatch):
    status, out = _follow(tmp_path, monkeypatch, _job("FAILED", [3]))
    assert status == 3
    assert out.rstrip().endswith("exit status 3.")


def test_several_tasks_or_no_exit_code_exit_1(tmp_path, monkeypatch):
    assert _follow(tmp_path, monkeypatch, _job("FAILED", [3, 0]))[0] == 1
    assert _follow(tmp_path, monkeypatch, _job("FAILED", [None]))[0] == 1
    assert _follow(tmp_path, monkeypatch, _job("SUCCEEDED", [0]))[0] == 0
