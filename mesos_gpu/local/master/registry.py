"""What a new leading master keeps of its predecessor: the registry of agents (Mesos' registrar over
the replicated log, `src/master/registrar.cpp`), never their tasks or frameworks.

After a failover (`MasterServer.restart` / `come_up`) the agents the old master had admitted are
*recovered* (`Master.recovered_agents`, Mesos' `slaves.recovered`) and its unreachable agents stay
unreachable. A recovered agent leaves that set when it re-registers, bringing its tasks, terminal
ones whose updates are not acknowledged included, and re-sending those updates; one that has not come
back after `agent_reregister_timeout` (Mesos: 10 minutes) is marked unreachable
(`Master::recoveredSlavesTimeout`).

`unknown_task_status` is Mesos' explicit reconciliation of a task the master does not know
(`Master::reconcile`, cases 2-6): while the task's agent, or with no agent given any agent, is still
recovering there is no answer (the framework retries); "Task is unknown" only once no agent that could
hold the task is awaited. `readmit_entry` takes back what a (re-)registering agent reports
(`Master::reregisterSlave`): its executors and tasks, re-creating their frameworks as recovered.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mesos_gpu.core import wire
from mesos_gpu.local.master.records import (
    AgentRecord,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
    master_status,
)
from mesos_gpu.local.protocol import id_of, value

if TYPE_CHECKING:
    from mesos_gpu.local.master.master import Master

__all__ = ["readmit_entry", "recover", "unknown_task_status"]

log = logging.getLogger(__name__)


def recover(master: Master, previous: Master) -> None:
    """Start `master` from `previous`'s registry: its agents (registered, or still recovering) are
    awaited, its unreachable agents stay unreachable."""
    master.unreachable_agents.update(previous.unreachable_agents)
    master.recovered_agents.update(previous.recovered_agents)
    master.recovered_agents.update(previous.agents)
    for agent_id in master.recovered_agents:
        master.unreachable_agents.pop(agent_id, None)
    if master.recovered_agents:
        master.recovery_timer = master.loop.call_later(
            master.config.agent_reregister_timeout, recovery_timed_out, master
        )


def recovery_timed_out(master: Master) -> None:
    """`agent_reregister_timeout` after the failover: the agents still awaited become unreachable."""
    master.recovery_timer = None
    now = time.time()
    for agent_id in sorted(master.recovered_agents):
        log.warning(
            "agent %s did not re-register within %s s after the master failed over: unreachable",
            agent_id,
            master.config.agent_reregister_timeout,
        )
        master.unreachable_agents[agent_id] = now
    master.recovered_agents.clear()


def unknown_task_status(
    master: Master, task_id: str, agent_id: str | None, partition_aware: bool
) -> dict[str, Any] | None:
    """The reconciliation answer for a task the master does not know; None: no answer yet."""
    recovering = agent_id in master.recovered_agents if agent_id else bool(master.recovered_agents)
    if recovering:
        log.info(
            "dropping reconciliation of task %s: %s not yet re-registered",
            task_id,
            f"agent {agent_id} has" if agent_id else "some agents have",
        )
        return None
    if agent_id is not None and agent_id in master.agents:
        state = "TASK_GONE" if partition_aware else "TASK_LOST"
        message = "Reconciliation: Task is unknown to the agent"
        return master_status(task_id, state, "REASON_RECONCILIATION", message, agent_id)
    if agent_id is not None and agent_id in master.unreachable_agents:
        state = "TASK_UNREACHABLE" if partition_aware else "TASK_LOST"
        message = "Reconciliation: Task is unreachable"
        status = master_status(task_id, state, "REASON_RECONCILIATION", message, agent_id)
        status["unreachable_time"] = {"nanoseconds": int(master.unreachable_agents[agent_id] * 1e9)}
        return status
    state = "TASK_UNKNOWN" if partition_aware else "TASK_LOST"
    return master_status(task_id, state, "REASON_RECONCILIATION", "Reconciliation: Task is unknown", agent_id)


# ------------------------------------------------------------------ an agent's re-registration
def readmit_entry(master: Master, agent: AgentRecord, entry: dict[str, Any]) -> None:
    """One `running()` entry of a (re-)registering agent: an executor with its tasks, or a task."""
    framework_id = entry.get("framework_id")
    if isinstance(framework_id, dict):
        framework_id = framework_id.get("value")
    if not isinstance(framework_id, str):
        return
    if framework_id in master.removed_framework_ids:
        agent.link.shutdown_framework(framework_id)
        return
    framework = master.frameworks.get(framework_id)
    if framework is None:
        info = entry.get("framework") or {"user": "", "name": "", "id": value(framework_id)}
        framework = FrameworkRecord(framework_id, dict(info), recovered=True)
        master.frameworks[framework_id] = framework
    if "executor" in entry:
        _readmit_executor(master, agent, framework_id, entry)
    elif isinstance(entry.get("task"), dict):
        _readmit_task(agent, framework, entry)


def _readmit_executor(master: Master, agent: AgentRecord, framework_id: str, entry: dict[str, Any]) -> None:
    executor = entry["executor"]
    executor_id = id_of(executor, "executor_id") or ""
    key = (framework_id, executor_id)
    if key not in agent.executors:
        resources = wire.resources_from_mesos(executor.get("resources", []), lenient=True)
        agent.executors[key] = ExecutorRecord(executor, framework_id, agent.agent_id, resources)
        agent.used = agent.used + resources
    for item in entry.get("tasks", []):
        if not isinstance(item, dict):
            continue  # task ids: the tasks themselves are listed as entries of their own
        task_entry = item if "task" in item else {"task": item, "state": "TASK_RUNNING"}
        task_entry = {**task_entry, "framework_id": framework_id, "executor_id": executor_id}
        readmit_entry(master, agent, task_entry)


def _readmit_task(agent: AgentRecord, framework: FrameworkRecord, entry: dict[str, Any]) -> None:
    task_info = entry["task"]
    task_id = id_of(task_info, "task_id") or ""
    if task_id in framework.tasks:
        return
    raw_executor = entry.get("executor_id")
    if isinstance(raw_executor, dict):
        raw_executor = raw_executor.get("value")
    task_executor = str(raw_executor) if raw_executor else id_of(task_info.get("executor", {}), "executor_id")
    resources = wire.resources_from_mesos(task_info.get("resources"), lenient=True)
    record = TaskRecord(task_info, framework.framework_id, agent.agent_id, task_executor, resources)
    record.state = str(entry.get("state", "TASK_RUNNING"))
    if isinstance(entry.get("status"), dict):
        record.status = entry["status"]
    framework.tasks[task_id] = record
    if not record.terminal:
        agent.used = agent.used + record.resources
