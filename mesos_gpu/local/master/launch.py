"""LAUNCH and LAUNCH_GROUP operations as one kind of thing: a `Launch` is the tasks that go to an agent
together (one task of a LAUNCH, or a whole task group), the executor they need, what they cost, and
why they may not go. `launches()` yields them one at a time, so each sees the ones before it applied."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core import wire
from mesos_gpu.core.resources import Resources
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master.records import AgentRecord, FrameworkRecord
from mesos_gpu.local.master.validation import (
    validate_custom_executor,
    validate_executor,
    validate_group_executor,
    validate_group_tasks,
    validate_lone_task,
    validate_task,
)
from mesos_gpu.local.protocol import id_of, value

TASK_INVALID = "REASON_TASK_INVALID"
TASK_GROUP_INVALID = "REASON_TASK_GROUP_INVALID"


@dataclass
class Launch:
    """Tasks launched together on one agent; `resources` counts the executor when it is new there."""

    tasks: list[dict[str, Any]]
    executor: dict[str, Any] | None
    task_group: dict[str, Any] | None  # LAUNCH_GROUP's TaskGroupInfo, None for a LAUNCH task
    resources: Resources
    new_executor: bool = False
    error: str | None = None

    @property
    def reason(self) -> str:
        return TASK_INVALID if self.task_group is None else TASK_GROUP_INVALID

    @property
    def executor_id(self) -> str | None:
        if self.executor is None:
            return None
        executor_id = id_of(self.executor, "executor_id")
        return executor_id if self.task_group is None else (executor_id or "")

    def problem(self, remaining: Resources) -> str | None:
        """Why it may not go with `remaining` of the offers left, or None."""
        if self.error is not None or remaining.contains(self.resources):
            return self.error
        subject = "task and its executor is" if self.task_group is None else "task group and its executor are"
        return (
            f"Total resources {p.describe_resources(self.resources)} required by {subject} more than "
            f"available {p.describe_resources(remaining)}"
        )


def launches(
    operation: dict[str, Any], framework: FrameworkRecord, agent: AgentRecord, pending: Collection[str]
) -> Iterator[Launch]:
    """The launches of one LAUNCH or LAUNCH_GROUP operation; `pending` holds the ids of tasks of this
    operation already accepted (the caller adds to it between launches)."""
    kind = operation.get("type")
    if kind == "LAUNCH":
        tasks = operation.get("launch", {}).get("task_infos", [])
        for original in tasks:
            task = _copy(original)
            if "id" in operation:
                refused = "The `id` field cannot be set on LAUNCH operations"
                yield Launch([task], None, None, Resources(), error=refused)
            else:
                yield _lone_task(framework, agent, task, pending)
    elif kind == "LAUNCH_GROUP":
        yield _task_group(framework, agent, operation)


def _lone_task(
    framework: FrameworkRecord, agent: AgentRecord, task: dict[str, Any], pending: Collection[str]
) -> Launch:
    executor = task.get("executor")
    error = validate_task(framework, agent, task, pending) or validate_lone_task(task)
    launch = Launch(
        [task],
        executor,
        None,
        wire.resources_from_mesos(task.get("resources", []), lenient=True),
        error=error,
    )
    if error is None and executor is not None:
        executor.setdefault("framework_id", value(framework.framework_id))
        launch.error = validate_executor(framework, agent, executor) or validate_custom_executor(executor)
        key = (framework.framework_id, id_of(executor, "executor_id") or "")
        if launch.error is None and key not in agent.executors:
            launch.new_executor = True
            launch.resources = launch.resources + wire.resources_from_mesos(
                executor.get("resources", []), lenient=True
            )
    return launch


def _task_group(framework: FrameworkRecord, agent: AgentRecord, operation: dict[str, Any]) -> Launch:
    group = operation.get("launch_group", {})
    executor = _copy(group.get("executor", {}))
    task_group = _copy(group.get("task_group", {}))
    tasks = task_group.get("tasks", [])
    if "id" in operation:
        refused = "The `id` field cannot be set on LAUNCH_GROUP operations"
        return Launch(tasks, executor, task_group, Resources(), error=refused)
    executor.setdefault("framework_id", value(framework.framework_id))
    error = (
        validate_group_tasks(framework, agent, tasks)
        or validate_executor(framework, agent, executor)
        or validate_group_executor(executor, tasks)
    )
    total = Resources()
    for task in tasks:
        total = total + wire.resources_from_mesos(task.get("resources", []), lenient=True)
    new_executor = (framework.framework_id, id_of(executor, "executor_id") or "") not in agent.executors
    if new_executor:
        total = total + wire.resources_from_mesos(executor.get("resources", []), lenient=True)
    return Launch(tasks, executor, task_group, total, new_executor, error)


def _copy(message: Any) -> Any:
    """A deep copy of a JSON message (the master fills in defaults without touching the call)."""
    return json.loads(json.dumps(message))
