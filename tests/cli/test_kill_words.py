"""Issue 19 item 7: `mesos-gpu kill` says what it did: a waiting job it killed is not one that "has already
ended", and a job that had ended before the kill is."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from mesos_gpu.commands import jobs


class FakeApi:
    """The job before the kill, and what DELETE answers."""

    def __init__(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        self.before, self.after, self.killed = before, after, False

    def job(self, job_id: str) -> dict[str, Any]:
        return self.after if self.killed else self.before

    def kill(self, job_id: str) -> dict[str, Any]:
        self.killed = True
        return self.after


def job(state: str, message: str = "", terminal: bool = False) -> dict[str, Any]:
    return {"id": "j-1", "state": state, "message": message, "terminal": terminal}


def kill(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], api: FakeApi) -> str:
    monkeypatch.setattr(jobs, "client_from", lambda args: api)
    assert jobs.kill_job(argparse.Namespace(job_id="j-1", json=False)) == 0
    assert api.killed
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ("PENDING", "killed before it ran"),
        ("RESTARTING", "killed while waiting to restart, after 2 attempts"),
    ],
)
def test_killing_a_waiting_job_says_it_was_killed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], before: str, message: str
) -> None:
    out = kill(monkeypatch, capsys, FakeApi(job(before), job("KILLED", message, terminal=True)))
    assert "already ended" not in out
    assert out == f"Killed job j-1 (it was {before}): {message}.\n"


def test_killing_an_ended_job_says_it_had_already_ended(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = job("SUCCEEDED", "succeeded", terminal=True)
    assert kill(monkeypatch, capsys, FakeApi(ended, ended)) == "Job j-1 has already ended: SUCCEEDED.\n"


def test_killing_a_running_job_says_it_is_being_killed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    killing = job("RUNNING", "killing: the job was asked to stop")
    out = kill(monkeypatch, capsys, FakeApi(job("RUNNING"), killing))
    assert out.startswith("Killing job j-1 (RUNNING)")
