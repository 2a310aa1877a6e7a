"""Issue 20 item 6 (second part): a task that exits 0 while the master is down must end its job
SUCCEEDED. The scheduler re-subscribes to the new master and reconciles before the agent re-registers;
a master that answers "Task is unknown" then (instead of waiting for the agents it recovered from its
registry, as Mesos does) makes the job FAILED although the agent holds the task's TASK_FINISHED."""

from __future__ import annotations

from typing import Any

import pytest

from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]


def _record_reconciles(cluster: LocalCluster) -> list[dict[str, Any]]:
    """Note every RECONCILE the current master handles (after it has answered it)."""
    seen: list[dict[str, Any]] = []

    def patch() -> None:
        table = cluster.master.calls.table
        original = table["RECONCILE"]

        def recording(framework: Any, payload: dict[str, Any]) -> Any:
            result = original(framework, payload)
            seen.append(payload)
            return result

        table["RECONCILE"] = recording

    cluster.call(patch)
    return seen


def _agent_state(cluster: LocalCluster, framework_id: str, task_id: str) -> str | None:
    return cluster.call(
        lambda: next(
            (s for a in cluster.agents if (s := a.latest_state(framework_id, task_id)) is not None), None
        )
    )


def test_a_task_that_exits_0_while_the_master_is_down_ends_succeeded(
    runtime: SchedulerRuntime, cluster: LocalCluster
) -> None:
    spec = validate_job({"name": "quiet", "command": "sleep 2; exit 0", "cpus": 0.1, "mem": 32})
    view, _ = runtime.submit(spec)
    job_id = view["id"]
    running = wait_for(
        lambda: (v := runtime.job(job_id))["state"] == "RUNNING" and v, 20, "the job never ran"
    )
    task_id = running["members"]["task-0"]["task_id"]
    framework_id = cluster.call(lambda: next(iter(cluster.master.frameworks)))

    cluster.stop_master()
    wait_for(
        lambda: _agent_state(cluster, framework_id, task_id) == "TASK_FINISHED",
        10,
        "the task did not finish while the master was down",
    )
    # The agents re-register only once the scheduler has re-subscribed and reconciled.
    cluster.start_master(reattach_agents=False)
    reconciles = _record_reconciles(cluster)
    wait_for(lambda: any(r.get("tasks") for r in reconciles), 20, "the scheduler never reconciled")
    early = runtime.job(job_id)
    assert early["state"] == "RUNNING", (early["message"], early["members"])
    cluster.reattach_agents()

    done = wait_for(
        lambda: (v := runtime.job(job_id))["state"] in ("SUCCEEDED", "FAILED", "KILLED") and v,
        30,
        f"job {job_id} did not end: {runtime.job(job_id)}",
    )
    assert done["state"] == "SUCCEEDED", done
    assert done["members"]["task-0"]["state"] == "TASK_FINISHED"
