"""After a master failover the new master knows the old one's agents from its registry (as Mesos'
registrar does) and awaits them: explicit reconciliation of a task it does not know gets no answer
while an agent that may hold it has not re-registered (`Master::reconcile` case 2), so a task that
finished while the master was away reaches the framework as TASK_FINISHED when its agent re-registers,
never as "Task is unknown" first (issue 20 item 6). An agent not back within `agent_reregister_timeout`
becomes unreachable and the usual answers resume."""

from __future__ import annotations

from typing import Any

from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.master.registry import unknown_task_status
from tests.local.conftest import command_task, framework_info
from tests.waiting import wait_until


def _finished_while_master_away(cluster: LocalCluster, driver_factory: Any) -> tuple[Any, Any, str]:
    """A task that ends (exit 0) after the master restarted and before any agent re-registered; the
    framework has re-subscribed to the new master. Returns (driver, recorder, framework id)."""
    driver, recorder = driver_factory(cluster.master_address, framework_info(failover_timeout=60.0))
    framework_id = recorder.wait_for("registered")["framework_id"]["value"]
    offer = recorder.wait_for("offer")
    driver.launchTasks(offer["id"], [command_task(offer, "quiet", cmd="sleep 1; exit 0")])
    recorder.wait_state("quiet", "TASK_RUNNING")
    wait_until(  # pymesos acknowledged TASK_RUNNING (an ACK to the next master would be refused)
        lambda: cluster.call(
            lambda: not any(a.streams.pending(framework_id, "quiet") for a in cluster.agents)
        ),
        10,
        "the ACK of TASK_RUNNING",
    )
    mark = recorder.mark()
    cluster.restart_master(reattach_agents=False)
    recorder.wait_for("reregistered", after=mark, timeout=10)
    wait_until(
        lambda: cluster.call(
            lambda: any(a.latest_state(framework_id, "quiet") == "TASK_FINISHED" for a in cluster.agents)
        ),
        10,
        "the task to finish on its agent",
    )
    return driver, recorder, framework_id


def _reconcile_reaches_master(cluster: LocalCluster, driver: Any, task_id: str) -> None:
    """Send an explicit reconciliation (pymesos drops agent_id) and wait until the master handled it."""
    before = cluster.call(lambda: cluster.master.scheduler_requests)
    driver.reconcileTasks([{"task_id": {"value": task_id}}])
    wait_until(lambda: cluster.call(lambda: cluster.master.scheduler_requests) > before, 10, "the RECONCILE")


def test_a_task_finished_while_the_master_was_away_is_not_answered_unknown(
    cluster: LocalCluster, driver_factory: Any
) -> None:
    driver, recorder, _ = _finished_while_master_away(cluster, driver_factory)
    assert cluster.call(lambda: set(cluster.master.recovered_agents)) == {a.agent_id for a in cluster.agents}
    _reconcile_reaches_master(cluster, driver, "quiet")
    cluster.reattach_agents()
    finished = recorder.wait_state("quiet", "TASK_FINISHED")
    assert "uuid" in finished  # the agent's own update, re-sent on re-registration
    assert "TASK_LOST" not in recorder.updates_for("quiet"), recorder.payloads("update")
    assert cluster.call(lambda: set(cluster.master.recovered_agents)) == set()


def test_agents_not_back_in_time_become_unreachable_and_unknown_tasks_are_answered(
    cluster: LocalCluster, driver_factory: Any
) -> None:
    cluster.master_config.agent_reregister_timeout = 0.5
    driver, recorder, _ = _finished_while_master_away(cluster, driver_factory)
    agent_id = cluster.agents[0].agent_id
    wait_until(
        lambda: cluster.call(lambda: not cluster.master.recovered_agents), 10, "the re-registration timeout"
    )
    assert cluster.call(lambda: agent_id in cluster.master.unreachable_agents)
    _reconcile_reaches_master(cluster, driver, "quiet")
    lost = recorder.wait_state("quiet", "TASK_LOST")
    assert lost["message"] == "Reconciliation: Task is unknown" and lost["reason"] == "REASON_RECONCILIATION"
    # With the agent named, a partition-aware framework hears the agent is unreachable.
    status = cluster.call(lambda: unknown_task_status(cluster.master, "quiet", agent_id, True))
    assert status is not None and status["state"] == "TASK_UNREACHABLE"
    assert status["message"] == "Reconciliation: Task is unreachable" and "unreachable_time" in status
    # The agent may still come back: it is admitted again and its update is delivered.
    cluster.reattach_agents()
    recorder.wait_state("quiet", "TASK_FINISHED")
    assert cluster.call(lambda: agent_id not in cluster.master.unreachable_agents)


def test_unknown_task_answers_while_agents_recover(cluster: LocalCluster) -> None:
    cluster.restart_master(reattach_agents=False)
    agent_id = cluster.agents[0].agent_id

    def answers() -> list[Any]:
        master = cluster.master
        return [
            unknown_task_status(master, "t", agent_id, False),  # its agent is recovering
            unknown_task_status(master, "t", None, True),  # some agent is recovering
            unknown_task_status(master, "t", "never-admitted", True),  # an agent never admitted
        ]

    named, unnamed, stranger = cluster.call(answers)
    assert named is None and unnamed is None
    assert stranger is not None and stranger["state"] == "TASK_UNKNOWN"
    cluster.reattach_agents()
    gone = cluster.call(lambda: unknown_task_status(cluster.master, "t", agent_id, True))
    assert gone is not None and gone["state"] == "TASK_GONE"
    assert gone["message"] == "Reconciliation: Task is unknown to the agent"
