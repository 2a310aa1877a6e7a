"""`mesos-gpu logs ID --attempt N` (issue 19 item 11c): the output of an earlier launch of a restarted
task, read from its sandbox (the master's completed tasks say where it ran)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone
from tests.cli.conftest import run_cli


def test_logs_of_each_attempt_of_a_restarted_task(local: Standalone, tmp_path: Path) -> None:
    doc = {
        "name": "twice",
        "command": f"n=$(cat {tmp_path}/n 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/n; "
        'echo "run $n"; exit 1',
        "restart": {"policy": "OnFailure", "backoff_limit": 1, "backoff_seconds": 0.1},
    }
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(doc))
    job_id = json.loads(run_cli("submit", str(path), "--json", api=local.api_url).stdout)["id"]
    api, deadline = ApiClient(local.api_url), time.monotonic() + 60
    while api.job(job_id)["state"] != "FAILED":
        assert time.monotonic() < deadline, api.job(job_id)
        time.sleep(0.2)
    first = run_cli("logs", job_id, "--attempt", "0", api=local.api_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "run 0\n"
    latest = run_cli("logs", job_id, api=local.api_url)
    assert latest.stdout == "run 1\n"
    assert run_cli("logs", job_id, "--attempt", "1", api=local.api_url).stdout == latest.stdout
    followed = run_cli("logs", job_id, "--attempt", "0", "--follow", api=local.api_url, timeout=30)
    assert followed.stdout == first.stdout
    beyond = run_cli("logs", job_id, "--attempt", "5", api=local.api_url)
    assert beyond.returncode == 1 and "attempts 0 to 1" in beyond.stderr
