"""The API against a live local Mesos cluster: real task states, agents, GPUs, the TF cluster, sandbox
logs through the agent's /files/read, the cluster view and metrics; every body checked against the
OpenAPI document."""

from __future__ import annotations

import json
import time

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone
from tests.api.promtext import value
from tests.api.spec import check
from tests.cli.test_cli import wait_for_state

PRINT_TF_CONFIG = "python3 -c 'import os; print(os.environ[\"TF_CONFIG\"])'"


def test_a_distributed_job_shows_tasks_agents_and_its_tf_cluster(local: Standalone) -> None:
    api = ApiClient(local.api_url)
    doc = {
        "name": "tf",
        "command": PRINT_TF_CONFIG,
        "roles": {"chief": {"cpus": 0.5, "mem": 128}, "worker": {"instances": 2, "cpus": 0.5, "mem": 128}},
        "success_policy": "AllWorkers",
    }
    job, created = api.submit(doc)
    assert created
    job = check("Job", wait_for_state(api, job["id"], {"SUCCEEDED", "FAILED"}))
    assert job["state"] == "SUCCEEDED", job
    assert [t["state"] for t in job["tasks"]] == ["TASK_FINISHED"] * 3
    agents = {a["id"] for a in api.cluster()["agents"]}
    for task in job["tasks"]:
        assert task["agent_id"] in agents
        assert task["hostname"].startswith("127.")   # local agents are 127.0.0.1, 127.0.0.2, ...
        assert task["address"] == f"{task['hostname']}:{task['ports'][0]}"
        assert task["exit_code"] == 0
    cluster = job["tf_cluster"]
    assert cluster == {
        "chief": [job["tasks"][0]["address"]],
        "worker": [job["tasks"][1]["address"], job["tasks"][2]["address"]],
    }
    logs = check("Logs", api.logs(job["id"], task="worker-1"))
    tf_config = json.loads(logs["data"])
    assert tf_config["cluster"] == cluster
    assert tf_config["task"] == {"type": "worker", "index": 1}
    assert logs["next_offset"] == len(logs["data"].encode())
    # reading on from next_offset gives nothing more; a Mesos task id names the task too
    task_id = job["tasks"][2]["task_id"]
    assert api.logs(job["id"], task=task_id, offset=logs["next_offset"])["data"] == ""


def test_gpus_in_use_show_in_the_cluster_view_and_metrics(local: Standalone) -> None:
    api = ApiClient(local.api_url)
    job, _ = api.submit({"name": "gpu", "command": "sleep 30", "gpus": 2})
    running = check("Job", wait_for_state(api, job["id"], {"RUNNING"}))
    [task] = running["tasks"]
    assert task["state"] == "TASK_RUNNING" and task["gpus"] == 2 and task["isolation"] == "exclusive"
    cluster = check("Cluster", api.cluster())
    [busy] = [a for a in cluster["agents"] if a["id"] == task["agent_id"]]
    assert busy["gpus"] == {"total": 2, "used": 2, "free": 0, "model": "Simulated-GPU"}
    assert cluster["gpus"]["used"] >= 2
    assert cluster["gpu_models"] == [{"model": "Simulated-GPU", "gpus": 4}]
    _, _, metrics = api.request("GET", "/metrics")
    assert value(metrics, "mesos_gpu_gpus_allocated") == 2
    assert value(metrics, "mesos_gpu_tasks_launched_total") >= 1
    assert value(metrics, "mesos_gpu_tenant_gpus_allocated", tenant="default") == 2
    assert value(metrics, "mesos_gpu_cluster_gpus", state="active") == 4   # the master's /state
    api.kill(job["id"])
    wait_for_state(api, job["id"], {"KILLED"})
    deadline = time.monotonic() + 20
    while api.cluster()["gpus"]["used"] != 0:
        assert time.monotonic() < deadline, "the GPUs were not released"
        time.sleep(0.2)


def test_logs_tail_reads_the_last_lines_from_the_agent(local: Standalone) -> None:
    api = ApiClient(local.api_url)
    job, _ = api.submit({"name": "lines", "command": "seq 1 20000", "cpus": 0.1, "mem": 32})
    assert wait_for_state(api, job["id"], {"SUCCEEDED", "FAILED"})["state"] == "SUCCEEDED"
    whole = "".join(f"{i}\n" for i in range(1, 20001))
    last = api.logs(job["id"], tail=3)
    assert (last["data"], last["tail"], last["truncated"]) == ("19998\n19999\n20000\n", 3, False)
    assert last["next_offset"] == len(whole) and last["offset"] == len(whole) - len(last["data"])
    assert api.logs(job["id"], tail=0)["data"] == ""
    capped = api.logs(job["id"], tail=20000, length=100)     # more lines than 100 bytes hold
    assert capped["truncated"] and capped["data"] == whole[-100:][whole[-100:].index("\n") + 1:]
    assert api.logs(job["id"], offset=last["next_offset"])["data"] == ""      # follow on from the tail
