"""Share hosts in `/metrics`, `GET /v1/cluster` and `mesos-gpu cluster` against the live local cluster:
a running 0.25 share counts its share host's GPU, and the host is listed with its task."""

from __future__ import annotations

import json
import time
import urllib.request

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone
from tests.api.promtext import value
from tests.api.spec import check
from tests.cli.conftest import run_cli


def running(api: ApiClient, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.job(job_id)
        if job["tasks"] and job["tasks"][0]["state"] == "TASK_RUNNING":
            return job
        assert job["state"] not in ("FAILED", "SUCCEEDED", "KILLED"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def metric(text: str, name: str) -> str:
    return format(value(text, name), "g")


def test_a_running_share_shows_its_share_host(local: Standalone) -> None:
    api = ApiClient(local.api_url)
    job, _ = api.submit({"name": "quarter", "command": "sleep 60", "gpus": 0.25, "cpus": 0.1, "mem": 32})
    try:
        job = running(api, job["id"])
        task_id = job["tasks"][0]["task_id"]
        with urllib.request.urlopen(f"{local.api_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert metric(text, "mesos_gpu_gpus_allocated") == "1"
        assert metric(text, "mesos_gpu_share_hosts") == "1"
        assert metric(text, "mesos_gpu_gpu_shares_allocated") == "0.25"
        cluster = check("Cluster", api.cluster())
        (host,) = cluster["share_hosts"]
        assert host["tasks"] == [task_id] and host["gpus"] == 0.25 and host["isolation"] == "capped"
        result = run_cli("cluster", api=local.api_url)
        assert result.returncode == 0, result.stderr
        assert host["host"] in result.stdout and "1 share host(s) hold 1 GPU(s)" in result.stdout
        as_json = json.loads(run_cli("cluster", "--json", api=local.api_url).stdout)
        assert as_json["share_hosts"] == cluster["share_hosts"]
    finally:
        api.kill(job["id"])
