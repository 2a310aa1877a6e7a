"""Share hosts in `/metrics` and the cluster view: derived from the jobs' active share members, each host
counts its one whole GPU in `mesos_gpu_gpus_allocated`, its tasks' fractions in the shares gauge, and is
listed (agent, isolation, fraction and memory given, tasks) in `GET /v1/cluster` and `mesos-gpu cluster`."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from mesos_gpu.api import views
from mesos_gpu.api.metrics import render, scheduler_families
from mesos_gpu.commands import cluster as cluster_command
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import ShareGrant
from tests.api.promtext import value
from tests.api.spec import check


def grant(host: str, gpus: int, memory: int = 4096, isolation: Isolation = Isolation.CAPPED
          ) -> dict[str, Any]:
    return ShareGrant(host, False, isolation, gpus, memory, 16384).to_dict()


def member(task_id: str, state: str, share: dict[str, Any] | None, agent: str = "a1") -> dict[str, Any]:
    out: dict[str, Any] = {"attempt": 0, "task_id": task_id, "state": state, "agent_id": agent,
                           "hostname": f"{agent}.example"}
    if share is not None:
        out["share"] = share
    return out


def job(job_id: str, members: dict[str, dict[str, Any]], gpus: float = 0.25) -> dict[str, Any]:
    return {"id": job_id, "spec": {"name": job_id, "gpus": gpus}, "state": "RUNNING",
            "members": members}


# Two jobs on one host (0.25 + 0.5 of it), one on another agent's host, a finished share and a
# whole-GPU job: 2 share hosts, 0.75 + 0.25 GPU given.
JOBS = [
    job("j1", {"task-0": member("j1.t", "TASK_RUNNING", grant("sharehost.j1.t", 250))}),
    job("j2", {"task-0": member("j2.t", "TASK_STAGING", grant("sharehost.j1.t", 500, 8192))}, 0.5),
    job("j3", {"task-0": member("j3.t", "TASK_RUNNING", grant("sharehost.j3.t", 250, 0, Isolation.MPS),
                                "a2")}),
    job("j4", {"task-0": member("j4.t", "TASK_FINISHED", grant("sharehost.j4.t", 500))}, 0.5),
    job("j5", {"task-0": member("j5.t", "TASK_RUNNING", None)}, 2),
]


def test_share_hosts_are_derived_from_the_active_share_members() -> None:
    hosts = views.share_hosts(JOBS)
    assert hosts == [
        {"host": "sharehost.j1.t", "agent_id": "a1", "hostname": "a1.example", "isolation": "capped",
         "gpus": 0.75, "gpu_memory": 12288, "device_memory": 16384, "tasks": ["j1.t", "j2.t"]},
        {"host": "sharehost.j3.t", "agent_id": "a2", "hostname": "a2.example", "isolation": "mps",
         "gpus": 0.25, "gpu_memory": 0, "device_memory": 16384, "tasks": ["j3.t"]},
    ]
    assert views.share_hosts([]) == []


def metric(text: str, name: str) -> str:
    return format(value(text, name), "g")


def families(hosts: list[dict[str, Any]]) -> str:
    whole = sum(views.gpus_allocated(view) for view in JOBS)
    return render(scheduler_families(
        jobs_by_state={"RUNNING": 5}, gpus_allocated=whole, launches=5, leader=True,
        mesos_connected=True, zookeeper_connected=True, share_hosts=hosts,
    ))


def test_metrics_count_the_gpu_of_each_share_host_and_the_fractions_given() -> None:
    text = families(views.share_hosts(JOBS))
    assert metric(text, "mesos_gpu_gpus_allocated") == "4"  # j5's 2 whole GPUs + 2 share hosts
    assert metric(text, "mesos_gpu_share_hosts") == "2"
    assert metric(text, "mesos_gpu_gpu_shares_allocated") == "1"  # 0.75 + 0.25
    help_line = next(line for line in text.splitlines() if line.startswith("# HELP mesos_gpu_gpus_allocated"))
    assert "share host" in help_line and "lingering" in help_line


def test_metrics_without_share_hosts_count_whole_gpu_tasks_only() -> None:
    text = families([])
    assert metric(text, "mesos_gpu_gpus_allocated") == "2"
    assert metric(text, "mesos_gpu_share_hosts") == "0"
    assert metric(text, "mesos_gpu_gpu_shares_allocated") == "0"


CLUSTER: dict[str, Any] = {
    "master": {"url": "http://m:5050", "version": "1.11.0", "leader": None},
    "agents": [{
        "id": "a1", "hostname": "a1.example", "active": True,
        "gpus": {"total": 4, "used": 3, "free": 1, "model": "H100"},
        "cpus": {"total": 8.0, "used": 2.0}, "mem": {"total": 1024.0, "used": 512.0}, "attributes": {},
    }],
    "gpus": {"total": 4, "used": 3, "free": 1},
    "gpu_models": [{"model": "H100", "gpus": 4}],
}


def test_the_cluster_schema_takes_the_share_hosts() -> None:
    check("Cluster", {**CLUSTER, "share_hosts": views.share_hosts(JOBS)})
    check("Cluster", CLUSTER)  # an older scheduler says nothing of share hosts


@pytest.mark.parametrize("json_output", [False, True])
def test_mesos_gpu_cluster_lists_the_share_hosts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], json_output: bool
) -> None:
    doc = {**CLUSTER, "share_hosts": views.share_hosts(JOBS)}

    class Client:
        def cluster(self) -> dict[str, Any]:
            return doc

    monkeypatch.setattr(cluster_command, "client_from", lambda args: Client())
    assert cluster_command.show_cluster(argparse.Namespace(json=json_output)) == 0
    out = capsys.readouterr().out
    if json_output:
        assert '"share_hosts"' in out and '"sharehost.j3.t"' in out
        return
    lines = out.splitlines()
    row = next(line for line in lines if "sharehost.j1.t" in line)
    assert row.split() == ["a1.example", "a1", "sharehost.j1.t", "capped", "0.75", "12288/16384", "j1.t,",
                           "j2.t"]
    assert "2 share host(s) hold 2 GPU(s); 1 GPU given to 3 share task(s)" in out


def test_mesos_gpu_cluster_without_share_hosts_prints_no_share_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Client:
        def cluster(self) -> dict[str, Any]:
            return CLUSTER

    monkeypatch.setattr(cluster_command, "client_from", lambda args: Client())
    assert cluster_command.show_cluster(argparse.Namespace(json=False)) == 0
    assert "SHARE HOST" not in capsys.readouterr().out
