"""The scheduler runtime against the real local cluster and a real ZooKeeper store."""

from __future__ import annotations

import threading
import time

import pytest

from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.catalog import AgentCatalog
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import ZooKeeperStore
from tests.integration.conftest import make_runtime, wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]


def final_state(runtime: SchedulerRuntime, job_id: str, timeout: float = 30) -> dict:
    return wait_for(
        lambda: (view := runtime.job(job_id))["state"] in ("SUCCEEDED", "FAILED", "KILLED") and view,
        timeout,
        f"job {job_id} did not end: {runtime.job(job_id)}",
    )


def test_a_one_gpu_job_runs_to_succeeded(runtime: SchedulerRuntime) -> None:
    spec = validate_job({"name": "one", "command": "echo $CUDA_VISIBLE_DEVICES", "cpus": 0.5, "mem": 64,
                         "gpus": 1})
    view, created = runtime.submit(spec)
    assert created
    done = final_state(runtime, view["id"])
    assert done["state"] == "SUCCEEDED", done
    member = done["members"]["task-0"]
    assert member["state"] == "TASK_FINISHED"
    stored = runtime.store.get(view["id"]).data
    assert stored["state"] == "SUCCEEDED"


def _tasks_on_master(cluster: LocalCluster) -> list[dict]:
    state = cluster.state()
    tasks: list[dict] = []
    for framework in state.get("frameworks", []):
        tasks.extend(framework.get("tasks", []))
        tasks.extend(framework.get("completed_tasks", []))
    return tasks


def test_a_distributed_job_is_placed_all_at_once_across_two_agents(
    runtime: SchedulerRuntime, cluster: LocalCluster
) -> None:
    spec = validate_job({
        "name": "dist",
        "command": "python3 -c 'import json,os; print(json.loads(os.environ[\"TF_CONFIG\"])[\"task\"])'",
        "roles": {
            "chief": {"instances": 1, "cpus": 0.2, "mem": 64, "gpus": 1},
            "worker": {"instances": 2, "cpus": 0.2, "mem": 64, "gpus": 1, "command": "sleep 60"},
            "ps": {"instances": 1, "cpus": 0.2, "mem": 64, "command": "sleep 60"},
        },
        "rendezvous_timeout_seconds": 30,
    })
    view, _ = runtime.submit(spec)
    done = final_state(runtime, view["id"], timeout=60)
    assert done["state"] == "SUCCEEDED", done
    members = done["members"]
    assert {m["attempt"] for m in members.values()} == {0}
    assert len({m["agent_id"] for m in members.values()}) == 2, "3 GPUs need both 2-GPU agents"
    # The ps and the workers were killed after the chief succeeded, never left running.
    wait_for(
        lambda: all(runtime.job(view["id"])["members"][k]["state"] == "TASK_KILLED"
                    for k in ("ps-0", "worker-0", "worker-1")),
        20, f"clean-up kills did not finish: {runtime.job(view['id'])['members']}",
    )
    job_id = view["id"]
    assert sorted(t["name"] for t in _tasks_on_master(cluster)) == [
        f"{job_id}.chief-0", f"{job_id}.ps-0", f"{job_id}.worker-0", f"{job_id}.worker-1",
    ]
    # No member is active any more: the rendezvous nodes (members, cluster) are deleted.
    store = runtime.store
    wait_for(lambda: store.client.exists(f"{store.root}/tf/{job_id}") is None, 10,
             "the rendezvous nodes of the finished job were left behind")


def test_a_gang_that_cannot_fit_holds_nothing_and_says_why(
    runtime: SchedulerRuntime, cluster: LocalCluster
) -> None:
    spec = validate_job({
        "name": "huge", "command": "true",
        "roles": {"worker": {"instances": 5, "cpus": 0.1, "mem": 32, "gpus": 1}},
    })
    view, _ = runtime.submit(spec)
    reason = wait_for(lambda: runtime.job(view["id"])["wait_reason"], 10, "no wait reason")
    assert "0/2 agents fit: 2 insufficient gpus" in reason, reason
    assert " of 5 members fit" in reason, reason   # how much of the gang fits, not only why the rest does not
    assert runtime.job(view["id"])["state"] == "PENDING"
    assert _tasks_on_master(cluster) == []


def test_with_the_masters_agents_a_gang_larger_than_the_cluster_can_never_fit(
    cluster: LocalCluster, store: ZooKeeperStore, zk_hosts: str, zk_chroot: str, launcher_uri: str
) -> None:
    agents = AgentCatalog(f"http://{cluster.master_address}", interval=0.5)
    assert agents.refresh()
    first = agents.current()
    assert first is not None and len(first) == 2
    assert all(slot.total is not None and slot.total.gpus == 2 for slot in first)
    assert agents.refresh() and agents.current() is first        # unchanged: the same catalog
    assert not AgentCatalog("http://127.0.0.1:1", timeout=1).refresh()
    running = make_runtime(cluster, store, zk_hosts, zk_chroot, launcher_uri=launcher_uri,
                           catalog=agents.current, never_fits_after_seconds=4.0)
    running.start()
    agents.start()
    try:
        wait_for(lambda: running.is_leader and running.mesos_connected, 20, "the scheduler never registered")
        huge, _ = running.submit(validate_job({
            "name": "huge", "command": "true",
            "roles": {"worker": {"instances": 5, "cpus": 0.1, "mem": 32, "gpus": 1}},
        }))
        small = {"name": "fits", "command": "true", "cpus": 0.1, "mem": 32, "gpus": 2}
        fits, _ = running.submit(validate_job(small))
        reason = wait_for(lambda: running.job(huge["id"])["wait_reason"], 10, "no wait reason")
        assert reason.startswith("can never fit: "), reason
        assert "0/2 agents fit: 2 insufficient gpus" in reason, reason
        # Said in the persisted record too, while it waits in case an agent joins; then it fails.
        record = wait_for(lambda: (data := store.get(huge["id"]).data)["message"] == reason and data, 10,
                          "the record does not say it")
        assert record["state"] == "PENDING", record
        assert final_state(running, fits["id"], timeout=30)["state"] == "SUCCEEDED"
        ended = final_state(running, huge["id"], timeout=30)
        assert ended["state"] == "FAILED" and ended["message"].startswith(reason), ended
    finally:
        agents.stop()
        running.stop()


def test_a_waiting_job_starts_as_soon_as_capacity_frees(runtime: SchedulerRuntime) -> None:
    def gpu_job(name: str, command: str) -> dict:
        return {"name": name, "command": command, "cpus": 0.1, "mem": 32, "gpus": 2}

    first = [runtime.submit(validate_job(gpu_job(f"hold{i}", "sleep 2")))[0]["id"] for i in range(2)]
    wait_for(lambda: all(runtime.job(j)["state"] == "RUNNING" for j in first), 20, "holders did not run")
    waiting, _ = runtime.submit(validate_job(gpu_job("next", "true")))
    reason = wait_for(lambda: runtime.job(waiting["id"])["wait_reason"], 10, "no wait reason")
    assert reason == "0/2 agents fit: 2 insufficient gpus", reason
    assert final_state(runtime, waiting["id"])["state"] == "SUCCEEDED"
    assert all(runtime.job(j)["state"] == "SUCCEEDED" for j in first)


def test_kill_a_running_job(runtime: SchedulerRuntime) -> None:
    view, _ = runtime.submit(validate_job({"name": "long", "command": "sleep 60", "cpus": 0.1, "mem": 32,
                                           "gpus": 1}))
    wait_for(lambda: runtime.job(view["id"])["state"] == "RUNNING", 20, "never ran")
    runtime.kill(view["id"])
    done = final_state(runtime, view["id"], timeout=20)
    assert done["state"] == "KILLED"
    assert done["members"]["task-0"]["state"] == "TASK_KILLED"


def test_a_failing_task_is_retried_per_policy_then_fails_with_its_message(runtime: SchedulerRuntime) -> None:
    spec = validate_job({
        "name": "flaky", "command": "exit 3", "cpus": 0.1, "mem": 32,
        "restart": {"policy": "OnFailure", "backoff_limit": 2, "backoff_seconds": 0.2},
    })
    view, _ = runtime.submit(spec)
    done = final_state(runtime, view["id"], timeout=40)
    assert done["state"] == "FAILED"
    assert done["restarts"] == 2
    assert done["attempt"] == 2
    assert "Command exited with status 3" in done["message"]
    assert "backoff limit reached (2 restarts)" in done["message"]


def test_the_agent_catalog_reads_the_master_only_while_active(cluster: LocalCluster) -> None:
    leading = threading.Event()
    agents = AgentCatalog(f"http://{cluster.master_address}", interval=0.2, active=leading.is_set).start()
    try:
        time.sleep(0.6)
        assert agents.refreshes == 0 and agents.current() is None     # a standby leaves the master alone
        leading.set()
        wait_for(lambda: agents.current() is not None, 10, "the leader never read the agents")
        assert sorted(slot.hostname for slot in agents.current() or ()) == sorted(
            agent["hostname"] for agent in cluster.call(cluster.master.slaves)["slaves"]
        )
    finally:
        agents.stop()
