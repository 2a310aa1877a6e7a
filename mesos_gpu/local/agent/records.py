"""The local agent's records (Mesos' slave.hpp): a task from launch until its terminal update is
acknowledged, an executor and the tasks it holds, and the event stream an executor subscribes with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mesos_gpu.local.agent.command_executor import CommandTask
from mesos_gpu.local.agent.runners import RunningProcess
from mesos_gpu.local.agent.sandbox import Sandbox

Queued = tuple[str, dict[str, Any]]  # ("task", TaskInfo) or ("group", TaskGroupInfo), not yet delivered
Termination = tuple[str, str, str]  # (state, reason, message) for the tasks an ending executor leaves


class EventStream(Protocol):
    """An executor's SUBSCRIBE response (`executor_api.ExecutorStream`): events out, `on_close` called
    once when it ends."""

    on_close: Callable[[], None] | None

    def send(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@dataclass
class Task:
    """A task on this agent, from launch until its terminal update is acknowledged."""

    framework_id: str
    info: dict[str, Any]
    container_id: str
    executor_id: str | None  # custom executor id; None for command tasks
    state: str = "TASK_STAGING"
    delivered: bool = False  # LAUNCH sent to its executor
    command: CommandTask | None = None
    fetch: asyncio.Future[None] | None = None  # its URI fetch, done once its completion is handled

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])


@dataclass
class Executor:
    """A custom executor (or an emulated DEFAULT one, `default`) and the tasks it holds."""

    framework_id: str
    info: dict[str, Any]
    container_id: str
    sandbox: Sandbox
    state: str = "REGISTERING"  # REGISTERING -> RUNNING -> TERMINATING -> TERMINATED
    process: RunningProcess | None = None
    stream: EventStream | None = None
    queued: list[Queued] = field(default_factory=list)
    tasks: dict[str, Task] = field(default_factory=dict)
    recorded_uuids: set[str] = field(default_factory=set)
    pending_termination: Termination | None = None
    registration_timer: object | None = None
    shutdown_timer: object | None = None
    heartbeat_timer: object | None = None
    default: bool = False  # the emulated DEFAULT executor: no process, tasks run as nested commands
    groups: list[list[str]] = field(default_factory=list)  # task ids of each LAUNCH_GROUP
    fetch: asyncio.Future[None] | None = None  # its URI fetch, done once its completion is handled
    warnings: list[str] = field(default_factory=list)  # for its tasks' status (e.g. its image NOT used)

    @property
    def executor_id(self) -> str:
        return str(self.info["executor_id"]["value"])


def launch_failed(message: str) -> Termination:
    return ("TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", message)
