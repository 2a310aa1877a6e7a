"""What the embedded master knows (Mesos' `master.hpp` structs): frameworks, agents, tasks, executors,
offers and refusal filters, plus the two seams it talks through (`AgentLink`, `EventSink`)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mesos_gpu.core import wire
from mesos_gpu.core.resources import Resources
from mesos_gpu.local import protocol as p
from mesos_gpu.local.protocol import id_of, value

COMPLETED_FRAMEWORKS_KEPT = 50
COMPLETED_TASKS_KEPT = 1000


class AgentLink(Protocol):
    """What the master needs from an agent (implemented by `mesos_gpu.local.agent.agent.Agent`)."""

    agent_id: str

    def agent_info(self) -> dict[str, Any]: ...
    def endpoint(self) -> tuple[str, int]: ...
    def running(self) -> list[dict[str, Any]]: ...
    def launch(
        self,
        framework: dict[str, Any],
        task: dict[str, Any] | None = None,
        executor: dict[str, Any] | None = None,
        task_group: dict[str, Any] | None = None,
    ) -> None: ...
    def kill_task(self, framework_id: str, task_id: str, kill_policy: dict[str, Any] | None) -> None: ...
    def shutdown_executor(self, framework_id: str, executor_id: str) -> None: ...
    def shutdown_framework(self, framework_id: str) -> None: ...
    def framework_message(self, framework_id: str, executor_id: str, data_b64: str) -> None: ...
    def acknowledge(self, framework_id: str, task_id: str, uuid_b64: str) -> None: ...


class EventSink(Protocol):
    """One framework's subscription stream (implemented by `master_http.EventStream`)."""

    closed: bool
    on_client_close: Callable[[Any], None] | None

    def send(self, event: dict[str, Any]) -> None: ...
    def close(self, abrupt: bool = False) -> None: ...


@dataclass
class MasterConfig:
    """Knobs of the local master; the defaults are Mesos' own."""

    host: str = "127.0.0.1"
    port: int = 5050
    hostname: str | None = None
    heartbeat_interval: float = p.DEFAULT_HEARTBEAT_INTERVAL
    offer_timeout: float | None = None
    allocation_interval: float = 1.0
    filter_gpu_resources: bool = True
    strict: bool = False  # reject unknown JSON keys and enum names (catches framework typos)
    agent_reregister_timeout: float = 600.0  # after a failover, awaiting the registry's agents

    @property
    def advertised_hostname(self) -> str:
        return self.hostname or self.host


@dataclass
class TaskRecord:
    info: dict[str, Any]
    framework_id: str
    agent_id: str
    executor_id: str | None
    resources: Resources
    state: str = "TASK_STAGING"
    status: dict[str, Any] | None = None

    @property
    def task_id(self) -> str:
        return id_of(self.info, "task_id") or ""

    @property
    def terminal(self) -> bool:
        return wire.is_terminal_state(self.state)


@dataclass
class ExecutorRecord:
    info: dict[str, Any]
    framework_id: str
    agent_id: str
    resources: Resources


@dataclass
class OfferRecord:
    offer_id: str
    framework_id: str
    agent_id: str
    resources: Resources
    timer: object | None = None


@dataclass
class OfferFilter:
    """A DECLINE's (or an ACCEPT's unused part's) refusal: these resources of one agent, until `expires`
    (monotonic seconds)."""

    resources: Resources
    expires: float


@dataclass
class AgentRecord:
    agent_id: str
    link: AgentLink
    info: dict[str, Any]
    total: Resources
    used: Resources = field(default_factory=Resources)
    offered: Resources = field(default_factory=Resources)
    executors: dict[tuple[str, str], ExecutorRecord] = field(default_factory=dict)
    registered_time: float = field(default_factory=time.time)

    @property
    def hostname(self) -> str:
        return str(self.info.get("hostname", "localhost"))

    @property
    def has_gpus(self) -> bool:
        return self.total.scalar("gpus") > 0

    def available(self) -> Resources:
        return self.total.subtract_or_zero(self.used).subtract_or_zero(self.offered)


@dataclass
class FrameworkRecord:
    framework_id: str
    info: dict[str, Any]
    stream: EventSink | None = None
    stream_id: str | None = None
    connected: bool = False
    recovered: bool = False  # known only from an agent's report (master restarted)
    suppressed_roles: set[str] = field(default_factory=set)  # no offers for these roles
    heartbeats: bool = True
    filters: dict[str, list[OfferFilter]] = field(default_factory=dict)   # agent id -> live refusals
    offers: set[str] = field(default_factory=set)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    completed_tasks: deque[TaskRecord] = field(default_factory=lambda: deque(maxlen=COMPLETED_TASKS_KEPT))
    heartbeat_timer: object | None = None
    failover_timer: object | None = None
    registered_time: float = field(default_factory=time.time)
    unregistered_time: float | None = None

    def capabilities(self) -> set[str]:
        return {c.get("type", "") for c in self.info.get("capabilities", []) if isinstance(c, dict)}

    def has(self, capability: str) -> bool:
        return capability in self.capabilities()

    @property
    def role(self) -> str:
        roles = self.info.get("roles") or []
        if roles:
            return str(roles[0])
        return str(self.info.get("role", "*"))

    @property
    def roles(self) -> set[str]:
        return roles_of(self.info)

    @property
    def suppressed(self) -> bool:
        """Offers are suppressed for the role the allocator offers to."""
        return self.role in self.suppressed_roles

    @property
    def active(self) -> bool:
        """`active` in /master/state and GET_FRAMEWORKS: subscribed and not suppressed."""
        return self.connected and not self.suppressed

    @property
    def failover_timeout(self) -> float:
        try:
            return max(0.0, float(self.info.get("failover_timeout", 0.0)))
        except (TypeError, ValueError):
            return 0.0

    def used(self) -> Resources:
        """What the framework's live tasks hold (executors not counted, as before)."""
        used = Resources()
        for task in self.tasks.values():
            if not task.terminal:
                used = used + task.resources
        return used


def roles_of(info: dict[str, Any]) -> set[str]:
    """Every role of a FrameworkInfo (`protobuf::framework::getRoles`): `roles`, else `role` or "*"."""
    roles = info.get("roles") or []
    return {str(r) for r in roles} if roles else {str(info.get("role", "*"))}


def master_status(  # noqa: PLR0917
    task_id: str,
    state: str,
    reason: str,
    message: str,
    agent_id: str | None = None,
    executor_id: str | None = None,
) -> dict[str, Any]:
    """A TaskStatus generated by the master: SOURCE_MASTER, a reason and a message, and no uuid."""
    status: dict[str, Any] = {
        "task_id": value(task_id),
        "state": state,
        "source": "SOURCE_MASTER",
        "reason": reason,
        "message": message,
        "timestamp": time.time(),
    }
    if agent_id:
        status["agent_id"] = value(agent_id)
    if executor_id:
        status["executor_id"] = value(executor_id)
    return status
