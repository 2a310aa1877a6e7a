"""`mesos-gpu run` end to end: the real CLI uploads this directory to the real scheduler on the local
Mesos cluster, the task fetches and unpacks it, runs in it, its output streams back live and the CLI
exits with its exit code; a GPU share (0.5) runs on a share host the same way; --max-wait gives up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone
from tests.cli.conftest import Result, cli_command
from tests.waiting import wait_until

PROGRAM = (
    "import sys; print(open('data/greeting.txt').read().strip()); print('err line', file=sys.stderr); "
    "sys.exit(3)"
)


def run_in(directory: Path, api: str, *args: str, timeout: float = 120) -> Result:
    """`mesos-gpu run ARGS` started in `directory` (its working directory is what gets uploaded)."""
    env = {**os.environ, "MESOS_GPU_API": api}
    done = subprocess.run(
        cli_command("run", *args),
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "greeting.txt").write_text("hi from the upload\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def test_run_uploads_the_directory_streams_the_output_and_exits_with_the_task_code(
    local: Standalone, tmp_path: Path
) -> None:
    result = run_in(
        project(tmp_path), local.api_url, "--cpus", "0.5", "--mem", "128", "--", sys.executable, "-c", PROGRAM
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout == "hi from the upload\n"  # stdout is the task's alone
    assert "err line" in result.stderr
    assert "uploading" in result.stderr and "submitted job run-" in result.stderr
    assert "ended FAILED, exit code 3; exit status 3." in result.stderr
    job_id = result.stderr.split("submitted job ", 1)[1].split(".", 1)[0]
    job = ApiClient(local.api_url).job(job_id)
    assert job["spec"]["uris"][0]["value"].startswith(f"{local.api_url}/v1/uploads/")
    assert job["spec"]["command"].startswith("cd workdir && ")


def test_run_of_a_succeeding_command_exits_0(local: Standalone, tmp_path: Path) -> None:
    result = run_in(
        project(tmp_path),
        local.api_url,
        "--cpus",
        "0.5",
        "--mem",
        "128",
        "--",
        "ls -a; cat data/greeting.txt",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = result.stdout.split()
    assert "data" in listed and ".git" not in listed
    assert "hi from the upload" in result.stdout


def test_max_wait_kills_a_job_that_cannot_start_and_exits_75(local: Standalone, tmp_path: Path) -> None:
    result = run_in(
        project(tmp_path), local.api_url, "--gpus", "3", "--max-wait", "2", "--no-upload", "--", "true"
    )
    assert result.returncode == 75, result.stdout + result.stderr
    assert "waiting (0 s):" in result.stderr
    assert "not started within --max-wait 2 s" in result.stderr and "killed job" in result.stderr


def test_run_with_half_a_gpu_runs_on_a_share_host(local: Standalone, tmp_path: Path) -> None:
    result = run_in(
        project(tmp_path),
        local.api_url,
        "--gpus",
        "0.5",
        "--cpus",
        "0.5",
        "--mem",
        "128",
        "--",
        "cat data/greeting.txt; echo share=$MESOS_GPU_SHARE isolation=$MESOS_GPU_ISOLATION; exit 4",
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "hi from the upload" in result.stdout
    assert "share=0.5 isolation=capped" in result.stdout
    assert "exit status 4." in result.stderr


def test_output_streams_live_and_ctrl_c_kills_the_job_and_exits_130(
    local: Standalone, tmp_path: Path
) -> None:
    env = {**os.environ, "MESOS_GPU_API": local.api_url}
    process = subprocess.Popen(
        cli_command("run", "--cpus", "0.5", "--mem", "128", "--", "echo started; sleep 60"),
        cwd=project(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline() == "started\n"  # while the task still runs
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130
        errors = process.stderr.read()
        assert "interrupted (Ctrl-C); killed job run-" in errors
        job_id = errors.split("killed job ", 1)[1].split(".", 1)[0]
        api = ApiClient(local.api_url)
        wait_until(lambda: api.job(job_id)["state"] == "KILLED", timeout=30, what="the job to be killed")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
