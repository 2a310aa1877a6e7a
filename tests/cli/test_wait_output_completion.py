"""`mesos-gpu wait` (its exit statuses, on a fake clock), `-o json|wide|name` on jobs and status, and
`mesos-gpu completion bash` (the script run by bash itself)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from mesos_gpu.cli import build_parser, main
from mesos_gpu.client import ApiError, ApiUnreachable
from mesos_gpu.commands import jobs as jobs_command
from mesos_gpu.commands import wait as wait_command
from mesos_gpu.commands.common import iso_time


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SeqApi:
    """Answers `job` with each item of `answers` in turn (an exception is raised), the last one forever."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    def job(self, job_id: str) -> dict[str, Any]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return {"id": job_id, "state": answer, "message": ""}


def run_wait(api: SeqApi, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    clock = FakeClock()
    monkeypatch.setattr(wait_command, "client_from", lambda args: api)
    monkeypatch.setattr(wait_command.time, "monotonic", clock)
    monkeypatch.setattr(wait_command.time, "sleep", clock.sleep)
    return main(["wait", "job-1", "--interval", "1", *argv])


@pytest.mark.parametrize(
    ("answers", "argv", "status"),
    [
        (("PENDING", "RUNNING", "SUCCEEDED"), (), 0),
        (("RUNNING", "FAILED"), (), 1),
        (("KILLED",), (), 1),
        (("RUNNING",), ("--timeout", "5"), 2),
        ((ApiError(404, "not_found", "no job job-1"),), (), 2),
        ((ApiError(503, "no_leader", "no leader"), "SUCCEEDED"), (), 0),
        ((ApiUnreachable("gone"), ApiUnreachable("gone"), "SUCCEEDED"), (), 0),
        ((ApiUnreachable("gone"),), (), 2),  # unreachable for over a minute
    ],
)
def test_wait_exit_status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                          answers: tuple[Any, ...], argv: tuple[str, ...], status: int) -> None:
    api = SeqApi(*answers)
    assert run_wait(api, monkeypatch, *argv) == status
    out, err = capsys.readouterr()
    assert (out if status < 2 else err)


def test_wait_timeout_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    api = SeqApi("RUNNING")
    assert run_wait(api, monkeypatch, "--timeout", "5") == 2
    assert api.calls == 6  # at 0, 1, ..., 5 seconds


def test_wait_keeps_the_per_call_timeout_apart() -> None:
    args = build_parser().parse_args(["wait", "j", "--timeout", "30", "--request-timeout", "4"])
    assert (args.wait_timeout, args.timeout) == (30.0, 4.0)


JOBS = [
    {"id": "j1", "name": "a", "tenant": "t", "state": "RUNNING", "message": "", "wait_reason": "",
     "tasks_running": 1, "task_count": 2, "gpus": 1, "gpus_text": "1", "restarts": 0,
     "submitted_at": 0.0, "started_at": 1.5, "finished_at": None},
    {"id": "j2", "name": "b", "tenant": "t", "state": "PENDING", "message": "", "wait_reason": "no GPUs",
     "tasks_running": 0, "task_count": 1, "gpus": 2, "gpus_text": "2", "restarts": 3,
     "submitted_at": 86400.0, "started_at": None, "finished_at": None},
]


class JobsApi:
    def jobs(self, state: Any, tenant: Any) -> list[dict[str, Any]]:
        return JOBS


def run_jobs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    monkeypatch.setattr(jobs_command, "client_from", lambda args: JobsApi())
    assert main(["jobs", *argv]) == 0
    return capsys.readouterr().out


def test_jobs_output_formats(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_jobs(monkeypatch, capsys, "-o", "name") == "j1\nj2\n"
    assert json.loads(run_jobs(monkeypatch, capsys, "-o", "json")) == JOBS
    assert json.loads(run_jobs(monkeypatch, capsys, "--json")) == JOBS
    wide = run_jobs(monkeypatch, capsys, "-o", "wide").splitlines()
    assert wide[0].split()[:3] == ["ID", "NAME", "TENANT"] and "SUBMITTED" in wide[0]
    assert "1970-01-02T00:00:00Z" in wide[2] and "no GPUs" in wide[2]
    default = run_jobs(monkeypatch, capsys).splitlines()
    assert "NAME" not in default[0] and "SUBMITTED" not in default[0]


def test_status_output_formats() -> None:
    job = {**JOBS[0], "kill_requested": False, "tf_cluster": None, "tasks": [
        {"name": "chief-0", "task_id": "j1.chief-0.2", "attempt": 2, "state": "TASK_RUNNING",
         "hostname": None, "gpus": 0, "exit_code": None, "message": None}]}
    wide = jobs_command.describe(job, wide=True)
    assert "TASK ID" in wide and "j1.chief-0.2" in wide and "started 1970-01-01T00:00:01Z" in wide
    assert "TASK ID" not in jobs_command.describe(job)


def test_iso_time() -> None:
    assert iso_time(0.0) == "-" and iso_time(None) == "-"
    assert iso_time(1764851793.9) == "2025-12-04T12:36:33Z"


BASH = shutil.which("bash")


@pytest.mark.skipif(BASH is None, reason="no bash")
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["mesos-gpu", "wa"], {"wait"}),
        (["mesos-gpu", "logs", "j", "--st"], {"--stream"}),
        (["mesos-gpu", "logs", "j", "--stream", ""], {"stdout", "stderr"}),
        (["mesos-gpu", "--api", "http://x", "jobs", "-o", ""], {"json", "wide", "name"}),
        (["mesos-gpu", "jobs", "--state", "x", "--o"], {"--output"}),
        (["mesos-gpu", "completion", ""], {"bash"}),
        (["mesos-gpu", "wait", "j", "--t"], {"--timeout", "--token"}),
    ],
)
def test_bash_completion(capsys: pytest.CaptureFixture[str], words: list[str], expected: set[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    call = (
        "COMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + f"); COMP_CWORD={len(words) - 1}; "
        "_mesos_gpu; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    done = subprocess.run([str(BASH), "-c", script + "\n" + call], capture_output=True, text=True,
                          check=True, timeout=30)
    assert set(done.stdout.split()) == expected
