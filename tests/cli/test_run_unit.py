"""`mesos-gpu run` without a cluster: the archive of the directory (what is left out, the size limit and
its message), the job it submits, the back-off while it waits, --max-wait, streaming and exit codes."""

from __future__ import annotations

import argparse
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.cli import build_parser
from mesos_gpu.client import ApiError
from mesos_gpu.commands.archive import RUN_DIR, ArchiveTooLargeError, build_archive, excluded
from mesos_gpu.commands.run import (
    EXIT_KILLED,
    FIRST_POLL,
    JITTER,
    MAX_POLL,
    Runner,
    command_line,
    exit_status,
    job_document,
)


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# ----------------------------------------------------------------------------------------- archive
def test_the_archive_holds_the_directory_under_one_top_directory(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "proj",
        {
            "train.py": b"print('hi')\n",
            "data/input.txt": b"42\n",
            ".git/HEAD": b"ref",
            ".venv/bin/python": b"",
            "pkg/__pycache__/m.pyc": b"",
            "pkg/m.py": b"",
            "sub/.git/config": b"",
        },
    )
    built = build_archive(root, 1 << 20)
    assert sorted(names(built.data)) == [
        RUN_DIR,
        f"{RUN_DIR}/data",
        f"{RUN_DIR}/data/input.txt",
        f"{RUN_DIR}/pkg",
        f"{RUN_DIR}/pkg/m.py",
        f"{RUN_DIR}/sub",
        f"{RUN_DIR}/train.py",
    ]
    assert built.files == 3 and built.unpacked == len(b"print('hi')\n42\n")
    with tarfile.open(fileobj=io.BytesIO(built.data), mode="r:gz") as tar:
        assert tar.extractfile(f"{RUN_DIR}/data/input.txt").read() == b"42\n"  # type: ignore[union-attr]
    # deterministic: the same files give the same bytes (so the same sha256 on the scheduler)
    os.utime(root / "train.py")
    assert build_archive(root, 1 << 20).data == build_archive(root, 1 << 20).data


def test_ignore_file_and_exclude_patterns(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            ".mesosgpuignore": b"# big things\n*.ckpt\ndata/raw/\n/logs\n",
            "model.ckpt": b"x",
            "sub/model.ckpt": b"x",
            "data/raw/a": b"x",
            "data/clean/a": b"x",
            "logs/l": b"x",
            "sub/logs/l": b"x",
            "notes.tmp": b"x",
            "keep.py": b"x",
        },
    )
    got = {n.removeprefix(f"{RUN_DIR}/") for n in names(build_archive(root, 1 << 20, ["*.tmp"]).data)}
    assert got == {
        RUN_DIR,
        ".mesosgpuignore",
        "data",
        "data/clean",
        "data/clean/a",
        "sub",
        "sub/logs",
        "sub/logs/l",
        "keep.py",
    }


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        (".git", True),
        ("a/__pycache__/x.pyc", True),
        (".venv/lib", True),
        ("src/main.py", False),
    ],
)
def test_always_skipped(path: str, left_out: bool) -> None:
    assert excluded(path, []) is left_out


def test_links_inside_are_kept_and_links_outside_left_out(tmp_path: Path) -> None:
    root = tree(tmp_path / "proj", {"real.txt": b"x"})
    (tmp_path / "secret").write_text("s")
    (root / "inside").symlink_to("real.txt")
    (root / "outside").symlink_to(tmp_path / "secret")
    built = build_archive(root, 1 << 20)
    assert f"{RUN_DIR}/inside" in names(built.data)
    assert f"{RUN_DIR}/outside" not in names(built.data)
    assert built.skipped_links == ("outside",)


def test_a_directory_over_the_limit_is_refused_with_what_is_big_and_how_to_leave_it_out(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path / "proj", {"train.py": b"x", "data/big.bin": os.urandom(300_000)})
    with pytest.raises(ArchiveTooLargeError) as info:
        build_archive(root, 100_000)
    message = str(info.value)
    assert f"{root} is more than 0.1 MB compressed" in message
    assert "MESOS_GPU_UPLOAD_MAX_MB" in message
    assert "Largest: data/ (0.3 MB), train.py (0.0 MB)" in message
    assert "--exclude PATTERN" in message and ".mesosgpuignore" in message and "--no-upload" in message


# ------------------------------------------------------------------------------------ the job document
def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_arguments_make_a_one_task_job() -> None:
    args = parse(
        "--gpus",
        "0.5",
        "--isolation",
        "mps",
        "--gpu-memory",
        "4096",
        "--image",
        "tf:2",
        "--cpus",
        "2",
        "--mem",
        "2048",
        "--name",
        "train",
        "--",
        "python",
        "train.py",
        "--lr",
        "0.1 x",
    )
    assert args.command[0] == "--"
    doc = job_document(args, args.command[1:], "http://s:8080/v1/uploads/ab.tar.gz")
    assert doc == {
        "name": "train",
        "command": f"cd {RUN_DIR} && python train.py --lr '0.1 x'",
        "gpus": 0.5,
        "cpus": 2.0,
        "mem": 2048.0,
        "image": "tf:2",
        "isolation": "mps",
        "gpu_memory": 4096,
        "uris": [{"value": "http://s:8080/v1/uploads/ab.tar.gz", "extract": True}],
    }
    plain = parse("--gpus", "2", "--", "nvidia-smi")
    assert job_document(plain, ["nvidia-smi"], None) == {"name": "run", "command": "nvidia-smi", "gpus": 2}
    assert isinstance(plain.gpus, int)


def test_one_word_is_a_shell_command_line() -> None:
    assert command_line(["python a.py | tee log"], True) == f"cd {RUN_DIR} && python a.py | tee log"
    assert command_line(["echo", "a b"], False) == "echo 'a b'"


@pytest.mark.parametrize(
    ("option", "bad"),
    [("--gpus", "-1"), ("--gpus", "half"), ("--gpus", "nan"), ("--max-wait", "-5"), ("--max-wait", "inf")],
)
def test_bad_numbers_are_refused(option: str, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(option, bad, "--", "true")
    assert option in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ exit codes
def job(
    state: str, exit_code: int | None = None, task_id: str | None = "t.0", **extra: Any
) -> dict[str, Any]:
    terminal = state in ("SUCCEEDED", "FAILED", "KILLED")
    return {
        "id": "run-1",
        "state": state,
        "terminal": terminal,
        "wait_reason": "",
        "message": "",
        "tasks": [{"task_id": task_id, "exit_code": exit_code, "message": None}],
        **extra,
    }


@pytest.mark.parametrize(
    ("view", "status"),
    [
        (job("SUCCEEDED", 0), 0),
        (job("FAILED", 3), 3),
        (job("FAILED", 137), 137),
        (job("FAILED"), 1),
        (job("KILLED"), EXIT_KILLED),
        (job("KILLED", 143), 143),
        (job("SUCCEEDED"), 0),
        (job("FAILED", 256 + 2), 2),
    ],
)
def test_exit_status(view: dict[str, Any], status: int) -> None:
    assert exit_status(view) == status


# ------------------------------------------------------------------------------------- waiting, streaming
class FakeApi:
    """The API as the Runner sees it: scripted job views and log chunks."""

    def __init__(self, views: list[dict[str, Any]], logs: dict[str, list[Any]] | None = None) -> None:
        self.views, self.logs_script = views, logs or {}
        self.killed = 0
        self.reads: list[tuple[str, int]] = []

    def job(self, job_id: str) -> dict[str, Any]:
        return self.views.pop(0) if len(self.views) > 1 else self.views[0]

    def kill(self, job_id: str) -> dict[str, Any]:
        self.killed += 1
        return job("KILLED")

    def logs(self, job_id: str, task: Any, stream: str, offset: int, length: int) -> dict[str, Any]:
        self.reads.append((stream, offset))
        script = self.logs_script[stream]
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, Exception):
            raise item
        return item


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def runner(
    api: FakeApi, clock: Clock, max_wait: float | None = None, rng: float = 0.5
) -> tuple[Runner, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    r = Runner(api, "run-1", max_wait, out, err, clock=clock, sleep=clock.sleep, rng=lambda: rng)  # type: ignore[arg-type]
    return r, out, err


def test_waiting_polls_with_exponential_back_off_and_says_why_when_it_changes() -> None:
    pending = [job("PENDING", task_id=None, wait_reason="no agent has 1 GPU free")] * 9
    pending += [job("PENDING", task_id=None, wait_reason="no share host has 0.5 GPU free")]
    api = FakeApi([*pending[1:], job("RUNNING")])
    clock = Clock()
    r, _, err = runner(api, clock)
    started = r.wait(pending[0])
    assert started is not None and started["state"] == "RUNNING"
    assert clock.sleeps == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]  # rng 0.5: no jitter
    lines = err.getvalue().splitlines()
    assert lines == [
        "mesos-gpu: waiting (0 s): no agent has 1 GPU free",
        "mesos-gpu: waiting (122 s): no share host has 0.5 GPU free",
    ]


@pytest.mark.parametrize("rng", [0.0, 1.0])
def test_the_back_off_is_jittered_within_bounds(rng: float) -> None:
    api = FakeApi([job("PENDING", task_id=None)] * 7 + [job("RUNNING")])
    clock = Clock()
    runner(api, clock, rng=rng)[0].wait(job("PENDING", task_id=None))
    factor = 1 - JITTER + 2 * JITTER * rng
    expected = [min(FIRST_POLL * 2**i, MAX_POLL) * factor for i in range(8)]
    assert clock.sleeps == pytest.approx(expected)


def test_max_wait_expiry_kills_the_job_and_says_why() -> None:
    api = FakeApi([job("PENDING", task_id=None, wait_reason="3 agents have no whole GPU")])
    clock = Clock()
    r, _, err = runner(api, clock, max_wait=10)
    assert r.run(api.views[0]) is None
    assert clock.now == pytest.approx(10)  # the last pause is cut to the deadline
    assert api.killed == 1
    assert (
        "not started within --max-wait 10 s (3 agents have no whole GPU); killed job run-1." in err.getvalue()
    )


def chunk(data: str, offset: int, state: str = "RUNNING", task_id: str = "t.0") -> dict[str, Any]:
    return {
        "data": data,
        "offset": offset,
        "next_offset": offset + len(data.encode()),
        "job_state": state,
        "task_id": task_id,
    }


def test_streaming_copies_both_streams_until_the_job_ended_and_both_are_read() -> None:
    api = FakeApi(
        [job("FAILED", 3)],
        {
            "stdout": [
                ApiError(409, "conflict", "not launched"),
                chunk("hi\n", 0),
                chunk("", 3),
                chunk("there\n", 3),
                chunk("", 9, "FAILED"),
            ],
            "stderr": [chunk("", 0), chunk("", 0), chunk("oops\n", 0), chunk("", 5, "FAILED")],
        },
    )
    clock = Clock()
    r, out, err = runner(api, clock)
    final = r.run(job("RUNNING"))
    assert final is not None and exit_status(final) == 3
    assert out.getvalue() == "hi\nthere\n"
    assert err.getvalue().splitlines() == [
        "mesos-gpu: started: the task on -, no GPU.",
        "oops",
        "mesos-gpu: job run-1 ended FAILED, exit code 3; exit status 3.",
    ]
    assert ("stdout", 9) in api.reads and ("stderr", 5) in api.reads


def test_an_unreadable_sandbox_of_an_ended_job_is_given_up_after_a_few_tries() -> None:
    api = FakeApi(
        [job("FAILED")],
        {
            "stdout": [ApiError(502, "bad_gateway", "agent gone")],
            "stderr": [ApiError(502, "bad_gateway", "agent gone")],
        },
    )
    final = runner(api, Clock())[0].stream()
    assert final["state"] == "FAILED"


def test_a_task_that_ended_before_the_first_poll_still_has_its_output_shown() -> None:
    ended = job("SUCCEEDED", 0)
    api = FakeApi(
        [ended],
        {
            "stdout": [chunk("quick\n", 0, "SUCCEEDED"), chunk("", 6, "SUCCEEDED")],
            "stderr": [chunk("", 0, "SUCCEEDED")],
        },
    )
    r, out, _ = runner(api, Clock())
    assert r.run(ended) == ended
    assert out.getvalue() == "quick\n"


def test_a_job_that_ended_without_a_task_reads_no_output() -> None:
    never = job("FAILED", task_id=None, message="no agent could ever hold it")
    api = FakeApi([never])
    r, _, err = runner(api, Clock())
    assert r.run(never) == never and api.reads == []
    assert "ended FAILED" in err.getvalue()


def test_where_a_task_runs_states_its_isolation() -> None:
    from mesos_gpu.commands.run import where

    task = {
        "name": "task-0",
        "hostname": "10.0.0.5",
        "agent_id": "S1",
        "gpus": 0.5,
        "isolation": "capped",
        "enforced": {"enforced_by": "the share host's NVML watchdog"},
    }
    assert where(task) == (
        "task-0 on 10.0.0.5 (S1), 0.5 GPU, capped isolation (enforced by the share host's NVML watchdog)"
    )
    assert where({"name": "task-0", "hostname": "h", "gpus": 0}) == "task-0 on h, no GPU"
