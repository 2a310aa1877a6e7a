"""`mesos-gpu logs` over every task of a job, against a fake API (no cluster): [role-index] prefixes on
whole lines, --task alone, --tail per task, --since decided from the job's times, --follow merging."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from mesos_gpu.api.logtail import last_lines
from mesos_gpu.cli import build_parser
from mesos_gpu.client import ApiError
from mesos_gpu.commands import logs

NAMES = ("chief-0", "worker-0", "worker-1")


class FakeApi:
    """Serves each task's output in `size`-byte chunks; a task missing from `outputs` is not launched
    (409). `growth`: text appended to a task's output at each read of it after the first (for --follow)."""

    def __init__(self, outputs: dict[str, str], *, size: int = 3, state: str = "SUCCEEDED",
                 times: dict[str, float | None] | None = None, server_tail: bool = False) -> None:
        self.server_tail = server_tail  # True: answers `tail=N` itself (False: an older scheduler)
        self.outputs = dict(outputs)
        self.size = size
        self.state = state
        self.times = times or {"submitted_at": 100.0, "started_at": 100.0, "finished_at": 200.0}
        self.reads: list[str] = []

    def job(self, job_id: str) -> dict[str, Any]:
        return {"id": job_id, "state": self.state, "tasks": [{"name": n} for n in NAMES], **self.times}

    def logs(self, job_id: str, task: str | None, stream: str, offset: int, length: int, *,
             attempt: int | None = None, tail: int | None = None) -> dict[str, Any]:
        self.reads.append(str(task))
        if task not in self.outputs:
            raise ApiError(409, "conflict", f"task {task} of job {job_id} has not been launched yet")
        base = {"task": task, "task_id": f"{task}.0", "job_state": self.state, "task_state": "TASK_FINISHED"}
        if tail is not None and self.server_tail:
            whole = self.outputs[task]
            data = last_lines(whole, tail)
            return {**base, "data": data, "offset": len(whole) - len(data), "next_offset": len(whole),
                    "tail": tail, "truncated": False}
        data = self.outputs[task].encode()[offset:offset + self.size].decode()
        return {**base, "data": data, "next_offset": offset + len(data)}


def run_logs(api: FakeApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(logs, "client_from", lambda args: api)
    args = build_parser().parse_args(["logs", "job-1", "--interval", "0", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


OUTPUTS = {"chief-0": "c1\nc2\n", "worker-0": "w0-a\nw0-b", "worker-1": ""}


def test_every_task_is_shown_with_a_prefix_on_each_whole_line(monkeypatch, capsys) -> None:
    code, out, _ = run_logs(FakeApi(OUTPUTS), monkeypatch, capsys)
    assert code == 0
    assert out == "[chief-0] c1\n[chief-0] c2\n[worker-0] w0-a\n[worker-0] w0-b\n"


def test_one_task_is_shown_raw_and_prefix_can_be_forced(monkeypatch, capsys) -> None:
    assert run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--task", "worker-0")[1] == "w0-a\nw0-b"
    forced = run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--task", "chief-0", "--prefix")[1]
    assert forced == "[chief-0] c1\n[chief-0] c2\n"
    bare = run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--no-prefix")[1]
    assert bare == "c1\nc2\nw0-a\nw0-b"


def test_tail_keeps_each_tasks_last_lines(monkeypatch, capsys) -> None:
    out = run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--tail", "1")[1]
    assert out == "[chief-0] c2\n[worker-0] w0-b\n"
    assert run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--tail", "0")[1] == ""


def test_a_task_not_launched_is_said_and_the_others_shown(monkeypatch, capsys) -> None:
    api = FakeApi({"chief-0": "c\n"})
    code, out, err = run_logs(api, monkeypatch, capsys)
    assert code == 0 and out == "[chief-0] c\n"
    assert "worker-0" in err and "not been launched" in err


def test_a_lone_task_not_launched_is_an_error(monkeypatch, capsys) -> None:
    code, out, err = run_logs(FakeApi({}), monkeypatch, capsys, "--task", "worker-0")
    assert code == 1 and out == "" and "not been launched" in err


@pytest.mark.parametrize(
    ("since", "shown", "note"),
    [("1970-01-01T00:00:50Z", True, ""),        # before the job started: everything
     ("1970-01-01T00:02:30+00:00", True, "ran across"),  # while it ran: everything, said
     ("1970-01-01T00:05:00", False, "ended before")],    # after it ended: nothing
)
def test_since_is_decided_from_the_jobs_times(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], since: str, shown: bool, note: str
) -> None:
    code, out, err = run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--since", since)
    assert code == 0
    assert bool(out) is shown
    assert (note in err) if note else err == ""


@pytest.mark.parametrize(
    ("text", "seconds_ago"), [("30s", 30), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1.5m", 90)]
)
def test_since_durations(text: str, seconds_ago: float) -> None:
    assert logs.since_time(text, now=1000000.0) == 1000000.0 - seconds_ago


def test_since_times_and_nonsense() -> None:
    assert logs.since_time("1970-01-01T00:01:40Z") == 100.0
    assert logs.since_time("1970-01-01T01:01:40+01:00") == 100.0
    with pytest.raises(argparse.ArgumentTypeError):
        logs.since_time("yesterday")


def test_follow_merges_whole_lines_as_they_come_and_waits_for_a_late_task(monkeypatch, capsys) -> None:
    api = FakeApi({"chief-0": "c1\nc2\n"}, size=2, state="RUNNING")
    real_logs = api.logs

    def logs_then_launch(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if len(api.reads) == 6:   # worker-0 starts late; then the job ends
            api.outputs["worker-0"] = "w\n"
            api.outputs["worker-1"] = "x"
        if len(api.reads) == 12:
            api.state = "SUCCEEDED"
        return real_logs(*args, **kwargs)

    api.logs = logs_then_launch  # type: ignore[method-assign]
    code, out, err = run_logs(api, monkeypatch, capsys, "--follow")
    assert code == 0
    assert sorted(out.splitlines()) == ["[chief-0] c1", "[chief-0] c2", "[worker-0] w", "[worker-1] x"]
    assert out.endswith("\n")
    assert "waiting" in err


def test_follow_ends_when_the_job_ends_with_a_task_never_launched(monkeypatch, capsys) -> None:
    api = FakeApi({"chief-0": "c\n"}, state="FAILED")
    code, out, _ = run_logs(api, monkeypatch, capsys, "--follow")
    assert code == 0 and out == "[chief-0] c\n"


def test_follow_with_tail_shows_the_last_lines_then_new_ones(monkeypatch, capsys) -> None:
    api = FakeApi({"chief-0": "a\nb\nc\n", "worker-0": "", "worker-1": ""}, size=4)
    out = run_logs(api, monkeypatch, capsys, "--follow", "--tail", "2", "--task", "chief-0")[1]
    assert out == "b\nc\n"


def test_json_prints_one_object_per_task(monkeypatch, capsys) -> None:
    import json

    out = run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--json")[1]
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["task"], r["data"]) for r in records] == [("chief-0", "c1\nc2\n"), ("worker-0", "w0-a\nw0-b")]
    assert [(r["offset"], r["next_offset"], r["task_id"]) for r in records] == [(0, 6, "chief-0.0"),
                                                                              (0, 9, "worker-0.0")]
    tailed_out = run_logs(FakeApi(OUTPUTS), monkeypatch, capsys, "--json", "--tail", "1")[1]
    tailed = json.loads(tailed_out.splitlines()[0])
    assert (tailed["data"], tailed["offset"], tailed["next_offset"]) == ("c2\n", 3, 6)


@pytest.mark.parametrize("chunks", [["ab\ncd", "\n", "e"], ["a", "b\n\n", "c\nd"], ["\n"], ["x"]])
def test_labelled_lines_lose_nothing_whatever_the_chunking(chunks: list[str]) -> None:
    output = logs.TaskOutput("t-0", "[t-0] ")
    shown = "".join(output.lines(chunk) for chunk in chunks) + output.lines("", final=True)
    text = "".join(chunks)
    expected = text if text.endswith("\n") else text + "\n"
    assert shown == "".join(f"[t-0] {line}\n" for line in expected.splitlines())


@pytest.mark.parametrize("server_tail", [True, False], ids=["server-tail", "older-server"])
def test_tail_is_read_by_the_server_when_it_can(monkeypatch, capsys, server_tail: bool) -> None:
    big = {"chief-0": "".join(f"c{i}\n" for i in range(300)), "worker-0": "w0-a\nw0-b", "worker-1": ""}
    api = FakeApi(big, server_tail=server_tail)
    out = run_logs(api, monkeypatch, capsys, "--tail", "2")[1]
    assert out == "[chief-0] c298\n[chief-0] c299\n[worker-0] w0-a\n[worker-0] w0-b\n"
    if server_tail:
        assert api.reads == ["chief-0", "worker-0", "worker-1"]     # one read a task, not the whole file
    else:
        assert len(api.reads) > 300


def test_follow_with_a_server_tail_goes_on_from_its_end(monkeypatch, capsys) -> None:
    import json

    api = FakeApi({"chief-0": "a\nb\nc\n", "worker-0": "", "worker-1": ""}, size=4, server_tail=True)
    out = run_logs(api, monkeypatch, capsys, "--follow", "--tail", "2", "--task", "chief-0")[1]
    assert out == "b\nc\n"
    tailed = json.loads(run_logs(api, monkeypatch, capsys, "--json", "--tail", "1")[1].splitlines()[0])
    assert (tailed["data"], tailed["offset"], tailed["next_offset"]) == ("c\n", 4, 6)
