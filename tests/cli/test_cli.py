"""The real `mesos-gpu` CLI against a live API on the local cluster (`Standalone`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone
from tests.cli.conftest import run_cli


def write_job(tmp_path: Path, doc: dict) -> str:
    path = tmp_path / f"{doc['name']}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def wait_for_state(api: ApiClient, job_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.job(job_id)
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"{job_id} still {job['state']}"
        time.sleep(0.2)


def test_cluster_shows_a_gpu_table(local: Standalone) -> None:
    result = run_cli("cluster", api=local.api_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["HOST", "AGENT", "GPU", "MODEL", "GPUS", "USED"]
    assert sum("Simulated-GPU" in line for line in lines) == 2
    assert "2 agent(s); GPUs: 4 total" in result.stdout
    as_json = json.loads(run_cli("cluster", "--json", api=local.api_url).stdout)
    assert as_json["gpus"]["total"] == 4


def test_submit_follow_shows_progress_and_exits_0_on_success(local: Standalone, tmp_path: Path) -> None:
    job = write_job(tmp_path, {"name": "ok", "command": "echo working; sleep 0.5", "gpus": 1})
    result = run_cli("submit", job, "--follow", "--interval", "0.2", api=local.api_url)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Submitted job ok-" in out
    assert "task-0" in out and "FINISHED" in out
    assert "1 GPU (exclusive)" in out
    assert "127.0.0.1" in out  # the agent it ran on
    assert out.rstrip().endswith("ended SUCCEEDED; task exit codes: 0; exit status 0.")


def test_submit_follow_of_a_failing_job_exits_with_its_exit_code(local: Standalone, tmp_path: Path) -> None:
    job = write_job(tmp_path, {"name": "bad", "command": "echo oops >&2; exit 3"})
    result = run_cli("submit", job, "--follow", "--interval", "0.2", api=local.api_url)
    assert result.returncode == 3
    assert "FAILED" in result.stdout
    assert "exit code 3" in result.stdout
    assert "exit status 3." in result.stdout
    assert "oops" in result.stdout  # the stderr tail in the task's message


def test_jobs_status_logs_and_json(local: Standalone, tmp_path: Path) -> None:
    job = write_job(
        tmp_path, {"name": "talk", "command": "echo out-line; echo err-line >&2", "tenant": "team-x"}
    )
    submitted = run_cli("submit", job, "--json", api=local.api_url)
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    wait_for_state(ApiClient(local.api_url), job_id, {"SUCCEEDED"})

    listed = run_cli("jobs", "--tenant", "team-x", api=local.api_url)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == [
        "ID",
        "TENANT",
        "STATE",
        "RUNNING",
        "GPUS",
        "AGE",
        "MESSAGE",
    ]
    assert job_id in listed.stdout and "SUCCEEDED" in listed.stdout
    as_json = json.loads(run_cli("jobs", "--json", "--state", "SUCCEEDED", api=local.api_url).stdout)
    assert job_id in [j["id"] for j in as_json]

    status = run_cli("status", job_id, api=local.api_url)
    assert status.returncode == 0
    assert f"Job {job_id} (talk, tenant team-x): SUCCEEDED" in status.stdout
    assert "FINISHED" in status.stdout
    assert json.loads(run_cli("status", job_id, "--json", api=local.api_url).stdout)["id"] == job_id

    assert run_cli("logs", job_id, api=local.api_url).stdout == "out-line\n"
    assert run_cli("logs", job_id, "--stream", "stderr", api=local.api_url).stdout.endswith("err-line\n")
    assert run_cli("logs", job_id, "--task", "task-0", "--follow", api=local.api_url).stdout == "out-line\n"


def test_logs_follow_prints_output_as_it_comes_until_the_job_ends(local: Standalone, tmp_path: Path) -> None:
    command = "for i in 1 2 3; do echo line-$i; sleep 0.4; done"
    job_id = json.loads(
        run_cli(
            "submit", write_job(tmp_path, {"name": "slow", "command": command}), "--json", api=local.api_url
        ).stdout
    )["id"]
    result = run_cli("logs", job_id, "--follow", "--interval", "0.2", api=local.api_url, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "line-1\nline-2\nline-3\n"


def test_a_job_that_cannot_fit_says_why_and_can_be_killed(local: Standalone, tmp_path: Path) -> None:
    job = write_job(tmp_path, {"name": "huge", "command": "sleep 60", "gpus": 3})
    job_id = json.loads(run_cli("submit", job, "--json", api=local.api_url).stdout)["id"]
    api = ApiClient(local.api_url)
    deadline = time.monotonic() + 30
    while not api.job(job_id)["wait_reason"]:
        assert time.monotonic() < deadline, "no wait reason"
        time.sleep(0.2)
    status = run_cli("status", job_id, api=local.api_url)
    assert "waiting:" in status.stdout and "gpus" in status.stdout
    killed = run_cli("kill", job_id, api=local.api_url)
    assert killed.returncode == 0
    assert killed.stdout == f"Killed job {job_id} (it was PENDING): killed before it ran.\n"
    wait_for_state(api, job_id, {"KILLED"})


def test_kill_a_running_job(local: Standalone, tmp_path: Path) -> None:
    job_id = json.loads(
        run_cli(
            "submit",
            write_job(tmp_path, {"name": "long", "command": "sleep 60"}),
            "--json",
            api=local.api_url,
        ).stdout
    )["id"]
    api = ApiClient(local.api_url)
    wait_for_state(api, job_id, {"RUNNING"})
    assert run_cli("kill", job_id, api=local.api_url).returncode == 0
    job = wait_for_state(api, job_id, {"KILLED"})
    assert job["tasks"][0]["state"] == "TASK_KILLED"


def test_errors_are_plain_sentences(local: Standalone, tmp_path: Path) -> None:
    missing = run_cli("status", "nope-123", api=local.api_url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "mesos-gpu: No job 'nope-123'."
    bad = write_job(tmp_path, {"name": "Bad", "cpus": -1, "command": ""})
    invalid = run_cli("submit", bad, api=local.api_url)
    assert invalid.returncode == 1
    assert "/name:" in invalid.stderr and "/cpus:" in invalid.stderr and "/command:" in invalid.stderr
    not_json = tmp_path / "x.json"
    not_json.write_text("{oops")
    assert "is not valid JSON" in run_cli("submit", str(not_json), api=local.api_url).stderr
    for result in (missing, invalid):
        assert "Traceback" not in result.stderr


def test_connection_refused_is_explained() -> None:
    result = run_cli("jobs", "--api", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "connection was refused" in result.stderr
    assert "mesos-gpu local" in result.stderr
    assert "Traceback" not in result.stderr
