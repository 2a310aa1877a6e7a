"""What the master does with each scheduler call after the HTTP checks (Mesos' `Master::accept`,
`decline`, `kill`, `reconcile`, ...). `SchedulerCalls.table` maps a call type to its bound method;
a type not in it (REQUEST, the inverse-offer and operation calls) is accepted and ignored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from mesos_gpu.core import wire
from mesos_gpu.core.resources import Resources
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master.launch import Launch, launches
from mesos_gpu.local.master.records import (
    AgentRecord,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
    master_status,
)
from mesos_gpu.local.master.registry import unknown_task_status
from mesos_gpu.local.master.validation import (
    validate_framework_info,
    validate_offers,
    validate_suppressed_roles,
)
from mesos_gpu.local.protocol import HttpError, id_of, value

if TYPE_CHECKING:
    from mesos_gpu.local.master.master import Master

log = logging.getLogger(__name__)

CallMethod = Callable[[FrameworkRecord, dict[str, Any]], int | None]
RECONCILED_STATUS_KEYS = ("healthy", "labels", "container_status", "check_status", "data")


class SchedulerCalls:
    """The non-SUBSCRIBE calls of one `Master`; each returns the HTTP status, None meaning 202."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.allocator = master.allocator
        self.table: dict[str, CallMethod] = {
            "TEARDOWN": self.teardown,
            "ACCEPT": self.accept,
            "DECLINE": self.decline,
            "REVIVE": self.revive,
            "SUPPRESS": self.suppress,
            "KILL": self.kill,
            "SHUTDOWN": self.shutdown,
            "ACKNOWLEDGE": self.acknowledge,
            "RECONCILE": self.reconcile,
            "MESSAGE": self.message,
            "UPDATE_FRAMEWORK": self.update_framework,
        }

    # ------------------------------------------------------------------ offers
    def teardown(self, framework: FrameworkRecord, _: dict[str, Any]) -> None:
        self.master.remove_framework(framework.framework_id)

    def revive(self, framework: FrameworkRecord, revive: dict[str, Any]) -> None:
        roles = call_roles(framework, revive, "REVIVE")
        if roles is not None:
            self.allocator.revive(framework, roles)

    def suppress(self, framework: FrameworkRecord, suppress: dict[str, Any]) -> None:
        roles = call_roles(framework, suppress, "SUPPRESS")
        if roles is not None:
            self.allocator.suppress(framework, roles)

    def decline(self, framework: FrameworkRecord, decline: dict[str, Any]) -> None:
        offer_ids = [ref.get("value", "") for ref in decline.get("offer_ids", [])]
        self.allocator.decline(framework, offer_ids, decline.get("filters"))

    def accept(self, framework: FrameworkRecord, accept: dict[str, Any]) -> None:
        """Validate the offers, run the LAUNCH / LAUNCH_GROUP operations on what they hold, and refuse
        the rest with the call's filters."""
        offers = self.allocator.offers
        offer_ids = [o.get("value", "") for o in accept.get("offer_ids", [])]
        operations = accept.get("operations", [])
        error = validate_offers(framework.framework_id, offer_ids, offers, self.master.agents)
        if error is not None:
            self._invalid_offers(framework, offer_ids, operations, error)
            return
        agent = self.master.agents[offers[offer_ids[0]].agent_id]
        remaining = Resources()
        for offer_id in offer_ids:
            record = self.allocator.remove_offer(offer_id, rescind=False)
            assert record is not None
            remaining = remaining + record.resources
        for operation in operations:
            if operation.get("type") in ("LAUNCH", "LAUNCH_GROUP"):
                remaining = self._launch(framework, agent, operation, remaining)
            else:
                kind = operation.get("type")
                log.warning("ignoring unsupported offer operation %s from %s", kind, framework.framework_id)
        self.allocator.add_filter(framework, agent.agent_id, remaining, accept.get("filters"))
        self.allocator.request()

    def _invalid_offers(
        self, framework: FrameworkRecord, offer_ids: list[str], operations: list[dict[str, Any]], error: str
    ) -> None:
        """Every task of the ACCEPT is LOST (DROPPED when partition-aware); its own offers go back."""
        state = "TASK_DROPPED" if framework.has("PARTITION_AWARE") else "TASK_LOST"
        for task in p.iter_tasks_of_operations(operations):
            status = master_status(
                id_of(task, "task_id") or "",
                state,
                "REASON_INVALID_OFFERS",
                f"Task launched with invalid offers: {error}",
                id_of(task, "agent_id"),
            )
            self.master.send(framework, {"type": "UPDATE", "update": {"status": status}})
        for offer_id in offer_ids:
            offer = self.allocator.offers.get(offer_id)
            if offer is not None and offer.framework_id == framework.framework_id:
                self.allocator.remove_offer(offer_id, rescind=False)
        self.allocator.request()

    # ------------------------------------------------------------------ LAUNCH and LAUNCH_GROUP
    def _launch(
        self, framework: FrameworkRecord, agent: AgentRecord, operation: dict[str, Any], remaining: Resources
    ) -> Resources:
        """Start each valid launch of the operation on the agent; the invalid ones get TASK_ERROR.
        Returns what is left of the offers."""
        pending: set[str] = set()
        for launch in launches(operation, framework, agent, pending):
            error = launch.problem(remaining)
            if error is not None:
                for task in launch.tasks:
                    self._task_error(framework, task, error, launch.reason)
                continue
            remaining = remaining.subtract_or_zero(launch.resources)
            pending.update(id_of(task, "task_id") or "" for task in launch.tasks)
            self._start(framework, agent, launch)
        return remaining

    def _start(self, framework: FrameworkRecord, agent: AgentRecord, launch: Launch) -> None:
        """Record the executor (when new) and the tasks, then hand them to the agent; a launch the
        agent refuses fails its tasks (REASON_CONTAINER_LAUNCH_FAILED)."""
        framework_id = framework.framework_id
        executor_id = launch.executor_id
        if launch.executor is not None and launch.new_executor:
            resources = wire.resources_from_mesos(launch.executor.get("resources", []), lenient=True)
            agent.executors[(framework_id, executor_id or "")] = ExecutorRecord(
                launch.executor, framework_id, agent.agent_id, resources
            )
            agent.used = agent.used + resources
        for task in launch.tasks:
            resources = wire.resources_from_mesos(task.get("resources", []), lenient=True)
            record = TaskRecord(task, framework_id, agent.agent_id, executor_id, resources)
            framework.tasks[record.task_id] = record
            agent.used = agent.used + resources
        try:
            if launch.task_group is None:
                agent.link.launch(framework.info, task=launch.tasks[0])
            else:
                agent.link.launch(framework.info, executor=launch.executor, task_group=launch.task_group)
        except Exception as exc:
            log.exception("agent %s failed to launch %d task(s)", agent.agent_id, len(launch.tasks))
            for task in launch.tasks:
                status = master_status(
                    id_of(task, "task_id") or "",
                    "TASK_FAILED",
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    str(exc),
                    agent.agent_id,
                    executor_id,
                )
                self.master.status_update(agent.agent_id, framework_id, status)

    def _task_error(
        self, framework: FrameworkRecord, task: dict[str, Any], message: str, reason: str
    ) -> None:
        status = master_status(
            id_of(task, "task_id") or "",
            "TASK_ERROR",
            reason,
            message,
            id_of(task, "agent_id"),
            id_of(task.get("executor", {}), "executor_id"),
        )
        self.master.send(framework, {"type": "UPDATE", "update": {"status": status}})

    # ------------------------------------------------------------------ tasks and executors
    def kill(self, framework: FrameworkRecord, kill: dict[str, Any]) -> None:
        """KILL: forwarded to the task's agent; an unknown task is reconciled instead (master.cpp)."""
        task_id = id_of(kill, "task_id") or ""
        task = framework.tasks.get(task_id)
        if task is None:
            item: dict[str, Any] = {"task_id": value(task_id)}
            if "agent_id" in kill:
                item["agent_id"] = kill["agent_id"]
            self.reconcile_explicit(framework, [item])
            return
        agent = self.master.agents.get(task.agent_id)
        if agent is None or task.terminal:
            return
        agent.link.kill_task(framework.framework_id, task_id, kill.get("kill_policy"))

    def shutdown(self, framework: FrameworkRecord, shutdown: dict[str, Any]) -> None:
        agent = self.master.agents.get(id_of(shutdown, "agent_id") or "")
        executor_id = id_of(shutdown, "executor_id") or ""
        if agent is not None:
            agent.link.shutdown_executor(framework.framework_id, executor_id)

    def acknowledge(self, framework: FrameworkRecord, ack: dict[str, Any]) -> None:
        """Forward to the agent; the ACK of a terminal task's last status completes the task."""
        agent_id = id_of(ack, "agent_id") or ""
        task_id = id_of(ack, "task_id") or ""
        uuid_b64 = str(ack.get("uuid", ""))
        agent = self.master.agents.get(agent_id)
        if agent is not None:
            agent.link.acknowledge(framework.framework_id, task_id, uuid_b64)
        task = framework.tasks.get(task_id)
        acknowledged = task is not None and task.status is not None and task.status.get("uuid") == uuid_b64
        if task is not None and task.terminal and acknowledged:
            del framework.tasks[task_id]
            framework.completed_tasks.append(task)

    def message(self, framework: FrameworkRecord, message: dict[str, Any]) -> None:
        agent = self.master.agents.get(id_of(message, "agent_id") or "")
        if agent is not None:
            agent.link.framework_message(
                framework.framework_id, id_of(message, "executor_id") or "", str(message.get("data", ""))
            )

    def update_framework(self, framework: FrameworkRecord, update: dict[str, Any]) -> int:
        info = dict(update.get("framework_info", {}))
        if id_of(info, "id") != framework.framework_id:
            raise HttpError(
                400,
                p.call_validation_error("'framework_id' differs from 'update_framework.framework_info.id'"),
            )
        error = validate_framework_info(info)
        if error is not None:
            raise HttpError(400, error)
        suppressed = {str(role) for role in update.get("suppressed_roles", [])}
        error = validate_suppressed_roles(info, suppressed)
        if error is not None:
            raise HttpError(400, error)
        framework.info = info
        self.allocator.set_suppressed(framework, suppressed)
        self.allocator.request()
        return 200

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self, framework: FrameworkRecord, reconcile: dict[str, Any]) -> None:
        """Implicit (no tasks: every known task) or explicit reconciliation (docs/reconciliation.md)."""
        tasks = reconcile.get("tasks", [])
        if tasks:
            self.reconcile_explicit(framework, tasks)
            return
        for task in list(framework.tasks.values()):
            self.master.send(framework, {"type": "UPDATE", "update": {"status": reconciled(task)}})

    def reconcile_explicit(self, framework: FrameworkRecord, tasks: Iterable[dict[str, Any]]) -> None:
        """Per task: its latest state when known, else `registry.unknown_task_status` (none while an
        agent that may hold it has not re-registered after a failover)."""
        partition_aware = framework.has("PARTITION_AWARE")
        for item in tasks:
            task_id = id_of(item, "task_id") or ""
            task = framework.tasks.get(task_id)
            if task is not None:
                status: dict[str, Any] | None = reconciled(task)
            else:
                status = unknown_task_status(self.master, task_id, id_of(item, "agent_id"), partition_aware)
            if status is not None:
                self.master.send(framework, {"type": "UPDATE", "update": {"status": status}})


def call_roles(framework: FrameworkRecord, call: dict[str, Any], kind: str) -> set[str] | None:
    """The roles a REVIVE or SUPPRESS names (none: all the framework's); None drops the call, as Mesos
    does when one of them is not the framework's."""
    roles = {str(role) for role in call.get("roles", [])}
    unknown = sorted(roles - framework.roles)
    if unknown:
        log.warning("dropping %s of framework %s: %s not its roles", kind, framework.framework_id, unknown)
        return None
    return roles or framework.roles


def reconciled(task: TaskRecord) -> dict[str, Any]:
    """The master's answer for a task it knows: its latest state, keeping the status' health and data."""
    status = master_status(
        task.task_id,
        task.state,
        "REASON_RECONCILIATION",
        "Reconciliation: Latest task state",
        task.agent_id,
        task.executor_id,
    )
    if task.status is not None:
        for key in RECONCILED_STATUS_KEYS:
            if key in task.status:
                status[key] = task.status[key]
    return status
