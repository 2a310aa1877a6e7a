"""The embedded Mesos v1 master: scheduler HTTP API, offers and filters, validation, reconciliation,
failover, standby redirects, and the `MasterLink` the in-process agents call (local-interface.md).

Everything runs on one tornado IOLoop thread; no locks. `MasterServer` owns the HTTP listener and a
`MasterHolder`, so a test can restart the master (a fresh `Master`, same port) without dropping
pymesos' keep-alive call connection.

Additions to the interface note: `register_agent` reads `running()` entries of both kinds the agent
documents (tasks, and executors whose "tasks" are task ids); after `LocalCluster.restart_master()` the
agents learn the new master through `Agent.attach_master`; `unregister_agent` turns the agent's tasks
LOST (UNREACHABLE when partition-aware, REASON_AGENT_REMOVED) and sends FAILURE{agent_id}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web
from tornado.ioloop import IOLoop

from mesos_gpu.core.resources import Resources, to_milli
from mesos_gpu.local import protocol as p
from mesos_gpu.local import protojson
from mesos_gpu.local.protocol import HttpError, id_of, value

log = logging.getLogger(__name__)

SCHEDULER_PATH = "/api/v1/scheduler"
NO_PAYLOAD_CALLS = frozenset({"REVIVE", "SUPPRESS", "TEARDOWN", "UNKNOWN"})
PAYLOAD_KEY = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
}
COMPLETED_FRAMEWORKS_KEPT = 50
COMPLETED_TASKS_KEPT = 1000
STANDBY_503_DELAY = 0.5  # pymesos retries 503 without any delay; answering slowly avoids a tight loop


class AgentLink(Protocol):
    """What the master needs from an agent (implemented by `mesos_gpu.local.agent.Agent`)."""

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

    @property
    def advertised_hostname(self) -> str:
        return self.hostname or self.host


class EventStream:
    """One SUBSCRIBE response: RecordIO records written into a chunked body without ever waiting for
    the socket (tornado buffers per connection), so calls are answered independently (checklist 10)."""

    def __init__(self, handler: SchedulerHandler) -> None:
        self.handler = handler
        self.closed = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_client_close: Callable[[EventStream], None] | None = None

    def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        self.handler.write(p.encode_record(event))
        self.handler.flush()

    def close(self, abrupt: bool = False) -> None:
        """End the stream: `abrupt` drops the TCP connection, otherwise the chunked body is finished."""
        if self.closed:
            return
        self.closed = True
        stream = getattr(self.handler.request.connection, "stream", None)
        if abrupt or stream is None or stream.closed():
            if stream is not None:
                stream.close()
        else:
            try:
                finished = self.handler.finish()
            except Exception:
                stream.close()
            else:
                finished.add_done_callback(lambda _: stream.close())
        if not self.done.done():
            self.done.set_result(None)

    def client_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.done.done():
            self.done.set_result(None)
        if self.on_client_close is not None:
            self.on_client_close(self)


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
        return self.state in p.TERMINAL_STATES


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
    stream: EventStream | None = None
    stream_id: str | None = None
    connected: bool = False
    recovered: bool = False  # known only from an agent's report (master restarted)
    suppressed: bool = False
    heartbeats: bool = True
    filters: dict[str, OfferFilter] = field(default_factory=dict)
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
    def failover_timeout(self) -> float:
        try:
            return max(0.0, float(self.info.get("failover_timeout", 0.0)))
        except (TypeError, ValueError):
            return 0.0


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


class Master:
    """The master's state machine and `MasterLink`; every method runs on the IOLoop thread."""

    def __init__(self, config: MasterConfig, master_id: str | None = None) -> None:
        self.config = config
        self.master_id = master_id or p.new_master_id()
        self.start_time = time.time()
        self.frameworks: dict[str, FrameworkRecord] = {}
        self.completed_frameworks: deque[FrameworkRecord] = deque(maxlen=COMPLETED_FRAMEWORKS_KEPT)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, AgentRecord] = {}
        self.offers: dict[str, OfferRecord] = {}
        self.is_leader = True
        self.leader_address: str | None = None  # "host:port" of the leader while standby
        # Reads who leads from ZooKeeper now, (leader address, is self); a standby asks it before it
        # answers a framework (set when the master is announced in ZooKeeper).
        self.leader_probe: Callable[[], tuple[str | None, bool] | None] | None = None
        self.scheduler_requests = 0  # requests to /api/v1/scheduler (tests check 503 pacing)
        self._framework_counter = 0
        self._offer_counter = 0
        self._agent_counter = 0
        self._allocation_pending = False
        self._allocation_timer: object | None = None
        self._stopped = False
        self.loop = IOLoop.current()
        self._schedule_periodic_allocation()

    # ------------------------------------------------------------------ identity
    def master_info(self) -> dict[str, Any]:
        host, port = self.config.host, self.config.port
        hostname = self.config.advertised_hostname
        return {
            "id": self.master_id,
            "ip": p.ip_as_uint32(host),
            "port": port,
            "pid": f"master@{host}:{port}",
            "hostname": hostname,
            "version": p.MESOS_VERSION,
            "address": {"hostname": hostname, "ip": host, "port": port},
            "capabilities": [{"type": "AGENT_UPDATE"}],
        }

    def new_agent_id(self) -> str:
        agent_id = p.agent_id_for(self.master_id, self._agent_counter)
        self._agent_counter += 1
        return agent_id

    def set_standby(self, leader_address: str | None) -> None:
        """Become a non-leader that redirects to `leader_address` (503 while it is None)."""
        self.is_leader = False
        self.leader_address = leader_address
        for framework in list(self.frameworks.values()):
            if framework.stream is not None:
                framework.stream.close(abrupt=True)

    def set_leader(self) -> None:
        self.is_leader = True
        self.leader_address = None

    def stop(self) -> None:
        """Close every stream and cancel timers (the HTTP listener belongs to `MasterServer`)."""
        self._stopped = True
        self._cancel(self._allocation_timer)
        for offer in list(self.offers.values()):
            self._cancel(offer.timer)
        for framework in self.frameworks.values():
            self._cancel(framework.heartbeat_timer)
            self._cancel(framework.failover_timer)
            if framework.stream is not None:
                framework.stream.on_client_close = None
                framework.stream.close(abrupt=True)
                framework.stream = None

    def _cancel(self, handle: object | None) -> None:
        if handle is not None:
            self.loop.remove_timeout(handle)

    # ------------------------------------------------------------------ HTTP entry point
    def handle_call(self, call: dict[str, Any], stream_id: str | None) -> int:
        """Process one converted, validated non-SUBSCRIBE call; returns the HTTP status (202)."""
        framework_id = id_of(call, "framework_id") or ""
        framework = self.frameworks.get(framework_id)
        if framework is None:
            raise HttpError(400, p.FRAMEWORK_NOT_FOUND)
        if not framework.connected or framework.stream is None:
            raise HttpError(403, p.FRAMEWORK_NOT_SUBSCRIBED)
        if stream_id is None:
            raise HttpError(400, p.MISSING_STREAM_ID)
        if stream_id != framework.stream_id:
            raise HttpError(400, p.wrong_stream_id(stream_id, framework_id))
        kind = call["type"]
        if kind == "UNKNOWN":
            raise HttpError(501)
        method = getattr(self, "_call_" + kind.lower(), None)
        if method is None:
            return 202
        result = method(framework, call.get(PAYLOAD_KEY.get(kind, ""), {}))
        return int(result) if isinstance(result, int) else 202

    # ------------------------------------------------------------------ SUBSCRIBE
    def subscribe(self, call: dict[str, Any], stream: EventStream, stream_id: str) -> None:
        info = dict(call["subscribe"]["framework_info"])
        framework_id = id_of(info, "id")
        error = self._validate_framework_info(info)
        if framework_id is not None and framework_id in self.removed_framework_ids:
            error = p.FRAMEWORK_REMOVED
        if error is not None:
            stream.send({"type": "ERROR", "error": {"message": error}})
            stream.close()
            return
        if framework_id is None:
            framework_id = p.framework_id_for(self.master_id, self._framework_counter)
            self._framework_counter += 1
        info["id"] = value(framework_id)
        framework = self.frameworks.get(framework_id)
        if framework is None:
            framework = FrameworkRecord(framework_id, info)
            self.frameworks[framework_id] = framework
        else:
            self._failover(framework, info)
        framework.stream = stream
        framework.stream_id = stream_id
        framework.connected = True
        framework.recovered = False
        framework.heartbeats = True
        framework.unregistered_time = None
        stream.on_client_close = self._stream_closed
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": value(framework_id),
                    "heartbeat_interval_seconds": float(self.config.heartbeat_interval),
                    "master_info": self.master_info(),
                },
            }
        )
        self._heartbeat(framework)
        for agent in self.agents.values():
            with contextlib.suppress(Exception):
                updated = getattr(agent.link, "framework_updated", None)
                if updated is not None and any(k[0] == framework_id for k in agent.executors):
                    updated(info)
        self.request_allocation()

    def _validate_framework_info(self, info: dict[str, Any]) -> str | None:
        multi_role = any(c.get("type") == "MULTI_ROLE" for c in info.get("capabilities", []))
        if multi_role and "role" in info:
            return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
        if not multi_role and info.get("roles"):
            return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
        return None

    def _failover(self, framework: FrameworkRecord, info: dict[str, Any]) -> None:
        """A SUBSCRIBE for a known framework: the old stream gets ERROR and is closed, offers are
        discarded without RESCIND, and the failover timer is cancelled."""
        old = framework.stream
        framework.stream = None
        if old is not None and not old.closed:
            old.on_client_close = None
            old.send({"type": "ERROR", "error": {"message": p.FRAMEWORK_FAILED_OVER}})
            old.close()
        self._cancel(framework.heartbeat_timer)
        self._cancel(framework.failover_timer)
        framework.failover_timer = None
        for offer_id in list(framework.offers):
            self._remove_offer(offer_id, rescind=False)
        framework.info = info

    def _stream_closed(self, stream: EventStream) -> None:
        for framework in self.frameworks.values():
            if framework.stream is stream:
                self._disconnect(framework)
                return

    def _disconnect(self, framework: FrameworkRecord) -> None:
        """The subscription connection is gone: deactivate, drop offers, start the failover timer."""
        framework.stream = None
        framework.connected = False
        framework.unregistered_time = time.time()
        self._cancel(framework.heartbeat_timer)
        framework.heartbeat_timer = None
        for offer_id in list(framework.offers):
            self._remove_offer(offer_id, rescind=False)
        self._cancel(framework.failover_timer)
        framework.failover_timer = self.loop.call_later(
            framework.failover_timeout, self._failover_timeout, framework.framework_id
        )
        self.request_allocation()

    def _failover_timeout(self, framework_id: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is not None and not framework.connected:
            log.info("framework %s did not re-subscribe within its failover timeout", framework_id)
            self.remove_framework(framework_id)

    def _heartbeat(self, framework: FrameworkRecord) -> None:
        framework.heartbeat_timer = None
        if framework.stream is None or not framework.connected:
            return
        if framework.heartbeats:
            framework.stream.send({"type": "HEARTBEAT"})
        framework.heartbeat_timer = self.loop.call_later(
            self.config.heartbeat_interval, self._heartbeat, framework
        )

    def send(self, framework: FrameworkRecord, event: dict[str, Any]) -> None:
        if framework.stream is not None and framework.connected:
            framework.stream.send(event)

    # ------------------------------------------------------------------ framework removal / hooks
    def remove_framework(self, framework_id: str) -> None:
        """TEARDOWN or failover timeout: kill everything (no updates), close the stream, remember it."""
        framework = self.frameworks.pop(framework_id, None)
        if framework is None:
            return
        self._cancel(framework.heartbeat_timer)
        self._cancel(framework.failover_timer)
        for offer_id in list(framework.offers):
            self._remove_offer(offer_id, rescind=False)
        framework.offers.clear()
        for agent in self.agents.values():
            touches = any(t.agent_id == agent.agent_id for t in framework.tasks.values()) or any(
                key[0] == framework_id for key in agent.executors
            )
            if touches:
                try:
                    agent.link.shutdown_framework(framework_id)
                except Exception:
                    log.exception("agent %s failed to shut down framework %s", agent.agent_id, framework_id)
            for key in [k for k in agent.executors if k[0] == framework_id]:
                executor = agent.executors.pop(key)
                agent.used = agent.used.subtract_or_zero(executor.resources)
        for task in framework.tasks.values():
            if not task.terminal:
                agent_record = self.agents.get(task.agent_id)
                if agent_record is not None:
                    agent_record.used = agent_record.used.subtract_or_zero(task.resources)
                task.state = "TASK_KILLED"
            framework.completed_tasks.append(task)
        framework.tasks.clear()
        framework.connected = False
        stream, framework.stream = framework.stream, None
        if stream is not None:
            stream.on_client_close = None
            stream.close()
        framework.unregistered_time = time.time()
        self.completed_frameworks.append(framework)
        self.removed_framework_ids.add(framework_id)
        self.request_allocation()

    def drop_stream(self, framework_id: str) -> bool:
        """Test hook: close the framework's subscription TCP connection (pymesos re-subscribes)."""
        framework = self.frameworks.get(framework_id)
        if framework is None or framework.stream is None:
            return False
        framework.stream.close(abrupt=True)
        self._disconnect(framework)
        return True

    def stop_heartbeats(self, framework_id: str) -> bool:
        """Test hook: keep the connection but send no more HEARTBEATs."""
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return False
        framework.heartbeats = False
        return True

    # ------------------------------------------------------------------ agents (MasterLink)
    def register_agent(self, agent: AgentLink) -> None:
        info = dict(agent.agent_info())
        agent_id = agent.agent_id
        info["id"] = value(agent_id)
        old = self.agents.get(agent_id)
        if old is not None:
            for offer_id in [o.offer_id for o in self.offers.values() if o.agent_id == agent_id]:
                self._remove_offer(offer_id, rescind=True)
        record = AgentRecord(agent_id, agent, info, p.resources_from_json(info.get("resources", [])))
        self.agents[agent_id] = record
        for framework in self.frameworks.values():
            for task in list(framework.tasks.values()):
                if task.agent_id == agent_id and not task.terminal:
                    record.used = record.used + task.resources
        for entry in agent.running():
            self._recover_entry(record, entry)
        self.request_allocation()

    def _recover_entry(self, agent: AgentRecord, entry: dict[str, Any]) -> None:
        framework_id = entry.get("framework_id")
        if isinstance(framework_id, dict):
            framework_id = framework_id.get("value")
        if not isinstance(framework_id, str):
            return
        if framework_id in self.removed_framework_ids:
            agent.link.shutdown_framework(framework_id)
            return
        framework = self.frameworks.get(framework_id)
        if framework is None:
            info = entry.get("framework") or {"user": "", "name": "", "id": value(framework_id)}
            framework = FrameworkRecord(framework_id, dict(info), recovered=True)
            self.frameworks[framework_id] = framework
        if "executor" in entry:
            executor = entry["executor"]
            executor_id = id_of(executor, "executor_id") or ""
            key = (framework_id, executor_id)
            if key not in agent.executors:
                resources = p.resources_from_json(executor.get("resources", []))
                agent.executors[key] = ExecutorRecord(executor, framework_id, agent.agent_id, resources)
                agent.used = agent.used + resources
            for item in entry.get("tasks", []):
                if not isinstance(item, dict):
                    continue  # task ids: the tasks themselves are listed as entries of their own
                task_entry = item if "task" in item else {"task": item, "state": "TASK_RUNNING"}
                task_entry = {**task_entry, "framework_id": framework_id, "executor_id": executor_id}
                self._recover_entry(agent, task_entry)
            return
        task_info = entry.get("task")
        if not isinstance(task_info, dict):
            return
        task_id = id_of(task_info, "task_id") or ""
        if task_id in framework.tasks:
            return
        raw_executor = entry.get("executor_id")
        if isinstance(raw_executor, dict):
            raw_executor = raw_executor.get("value")
        task_executor = (
            str(raw_executor) if raw_executor else id_of(task_info.get("executor", {}), "executor_id")
        )
        record = TaskRecord(
            task_info,
            framework_id,
            agent.agent_id,
            task_executor,
            p.resources_from_json(task_info.get("resources")),
        )
        record.state = str(entry.get("state", "TASK_RUNNING"))
        if isinstance(entry.get("status"), dict):
            record.status = entry["status"]
        framework.tasks[task_id] = record
        if not record.terminal:
            agent.used = agent.used + record.resources

    def unregister_agent(self, agent_id: str) -> None:
        """The agent is gone: rescind its offers, its tasks become LOST/UNREACHABLE, FAILURE to all."""
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        for offer_id in [o.offer_id for o in self.offers.values() if o.agent_id == agent_id]:
            self._remove_offer(offer_id, rescind=True)
        for framework in list(self.frameworks.values()):
            partition_aware = framework.has("PARTITION_AWARE")
            for task in [t for t in framework.tasks.values() if t.agent_id == agent_id]:
                framework.tasks.pop(task.task_id, None)
                if task.terminal:
                    continue
                task.state = "TASK_UNREACHABLE" if partition_aware else "TASK_LOST"
                status = master_status(
                    task.task_id,
                    task.state,
                    "REASON_AGENT_REMOVED",
                    f"Agent {agent.hostname} is unreachable",
                    agent_id,
                    task.executor_id,
                )
                task.status = status
                framework.completed_tasks.append(task)
                self.send(framework, {"type": "UPDATE", "update": {"status": status}})
            self.send(framework, {"type": "FAILURE", "failure": {"agent_id": value(agent_id)}})
        self.request_allocation()

    def status_update(self, agent_id: str, framework_id: str, status: dict[str, Any]) -> None:
        """A task status from an agent: record it, free resources at a terminal state, forward it."""
        status = dict(status)
        status.setdefault("agent_id", value(agent_id))
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        task_id = id_of(status, "task_id") or ""
        task = framework.tasks.get(task_id)
        state = str(status.get("state", ""))
        if task is not None:
            was_terminal = task.terminal
            task.state = state
            task.status = status
            if not was_terminal and task.terminal:
                agent = self.agents.get(task.agent_id)
                if agent is not None:
                    agent.used = agent.used.subtract_or_zero(task.resources)
                self.request_allocation()
        self.send(framework, {"type": "UPDATE", "update": {"status": status}})

    def executor_message(self, agent_id: str, framework_id: str, executor_id: str, data_b64: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        self.send(
            framework,
            {
                "type": "MESSAGE",
                "message": {"agent_id": value(agent_id), "executor_id": value(executor_id), "data": data_b64},
            },
        )

    def executor_exited(self, agent_id: str, framework_id: str, executor_id: str, wait_status: int) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            executor = agent.executors.pop((framework_id, executor_id), None)
            if executor is not None:
                agent.used = agent.used.subtract_or_zero(executor.resources)
                self.request_allocation()
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        self.send(
            framework,
            {
                "type": "FAILURE",
                "failure": {
                    "agent_id": value(agent_id),
                    "executor_id": value(executor_id),
                    "status": int(wait_status),
                },
            },
        )

    # ------------------------------------------------------------------ allocation
    def request_allocation(self) -> None:
        if self._allocation_pending or self._stopped:
            return
        self._allocation_pending = True
        self.loop.add_callback(self._allocate_soon)

    def _allocate_soon(self) -> None:
        self._allocation_pending = False
        self.allocate()

    def _schedule_periodic_allocation(self) -> None:
        if self._stopped:
            return
        self._allocation_timer = self.loop.call_later(self.config.allocation_interval, self._periodic)

    def _periodic(self) -> None:
        self.allocate()
        self._schedule_periodic_allocation()

    def _offerable(self, resources: Resources) -> bool:
        return resources.scalar("cpus") >= p.MIN_CPUS or resources.scalar("mem") >= p.MIN_MEM

    def _dominant_share(self, framework: FrameworkRecord, totals: Resources) -> float:
        used = Resources()
        for task in framework.tasks.values():
            if not task.terminal:
                used = used + task.resources
        shares = [used.scalar(n) / totals.scalar(n) for n in ("cpus", "mem", "gpus") if totals.scalar(n) > 0]
        return max(shares, default=0.0)

    def allocate(self) -> None:
        """Offer each agent's available resources to one eligible framework (lowest dominant share)."""
        if not self.is_leader or self._stopped:
            return
        now = time.monotonic()
        candidates = [
            f for f in self.frameworks.values() if f.connected and f.stream is not None and not f.suppressed
        ]
        if not candidates:
            return
        totals = Resources()
        for agent in self.agents.values():
            totals = totals + agent.total
        shares = {f.framework_id: self._dominant_share(f, totals) for f in candidates}
        batches: dict[str, list[dict[str, Any]]] = {}
        for agent in sorted(self.agents.values(), key=lambda a: a.agent_id):
            available = agent.available()
            if not self._offerable(available):
                continue
            eligible = []
            for framework in candidates:
                if agent.has_gpus and self.config.filter_gpu_resources and not framework.has("GPU_RESOURCES"):
                    continue
                refused = framework.filters.get(agent.agent_id)
                if refused is not None:
                    if refused.expires <= now:
                        del framework.filters[agent.agent_id]
                    elif refused.resources.contains(available):
                        continue
                eligible.append(framework)
            if not eligible:
                continue
            chosen = min(eligible, key=lambda f: (shares[f.framework_id], f.registered_time))
            offer = self._make_offer(chosen, agent, available)
            batches.setdefault(chosen.framework_id, []).append(offer)
        for framework_id, offers in batches.items():
            self.send(self.frameworks[framework_id], {"type": "OFFERS", "offers": {"offers": offers}})

    def _make_offer(
        self, framework: FrameworkRecord, agent: AgentRecord, resources: Resources
    ) -> dict[str, Any]:
        offer_id = p.offer_id_for(self.master_id, self._offer_counter)
        self._offer_counter += 1
        record = OfferRecord(offer_id, framework.framework_id, agent.agent_id, resources)
        if self.config.offer_timeout is not None:
            record.timer = self.loop.call_later(self.config.offer_timeout, self._offer_timed_out, offer_id)
        self.offers[offer_id] = record
        framework.offers.add(offer_id)
        agent.offered = agent.offered + resources
        multi_role = framework.has("MULTI_ROLE")
        role = framework.role
        ip, port = agent.link.endpoint()
        offer: dict[str, Any] = {
            "id": value(offer_id),
            "framework_id": value(framework.framework_id),
            "agent_id": value(agent.agent_id),
            "hostname": agent.hostname,
            "url": {
                "scheme": "http",
                "address": {"hostname": agent.hostname, "ip": ip, "port": int(port)},
                "path": "/slave(1)",
            },
            "resources": p.resources_to_json(resources, "*", role if multi_role else None),
            "attributes": list(agent.info.get("attributes", [])),
            "executor_ids": [value(k[1]) for k in agent.executors if k[0] == framework.framework_id],
        }
        if multi_role:
            offer["allocation_info"] = {"role": role}
        return offer

    def _offer_timed_out(self, offer_id: str) -> None:
        offer = self.offers.get(offer_id)
        if offer is not None:
            offer.timer = None
            self._remove_offer(offer_id, rescind=True)
            self.request_allocation()

    def _remove_offer(self, offer_id: str, rescind: bool) -> OfferRecord | None:
        offer = self.offers.pop(offer_id, None)
        if offer is None:
            return None
        self._cancel(offer.timer)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offered = agent.offered.subtract_or_zero(offer.resources)
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.discard(offer_id)
            if rescind:
                self.send(framework, {"type": "RESCIND", "rescind": {"offer_id": value(offer_id)}})
        return offer

    def _add_filter(
        self, framework: FrameworkRecord, agent_id: str, resources: Resources, filters: Any
    ) -> None:
        refuse = p.DEFAULT_REFUSE_SECONDS
        if isinstance(filters, dict) and "refuse_seconds" in filters:
            try:
                refuse = float(filters["refuse_seconds"])
            except (TypeError, ValueError):
                refuse = p.DEFAULT_REFUSE_SECONDS
        if math.isnan(refuse):
            refuse = p.DEFAULT_REFUSE_SECONDS
        refuse = min(refuse, p.MAX_REFUSE_SECONDS)
        if refuse <= 0 or resources.is_empty():
            return
        existing = framework.filters.get(agent_id)
        expires = time.monotonic() + refuse
        if existing is not None and existing.expires > time.monotonic():
            resources = resources + existing.resources
            expires = max(expires, existing.expires)
        framework.filters[agent_id] = OfferFilter(resources, expires)
        self.loop.call_later(refuse + 0.01, self.request_allocation)

    # ------------------------------------------------------------------ calls
    def _call_teardown(self, framework: FrameworkRecord, _: Any) -> None:
        self.remove_framework(framework.framework_id)

    def _call_revive(self, framework: FrameworkRecord, _: Any) -> None:
        framework.filters.clear()
        framework.suppressed = False
        self.request_allocation()

    def _call_suppress(self, framework: FrameworkRecord, _: Any) -> None:
        framework.suppressed = True

    def _call_decline(self, framework: FrameworkRecord, decline: dict[str, Any]) -> None:
        for offer_ref in decline.get("offer_ids", []):
            offer_id = offer_ref.get("value", "")
            offer = self.offers.get(offer_id)
            if offer is None or offer.framework_id != framework.framework_id:
                continue
            self._remove_offer(offer_id, rescind=False)
            self._add_filter(framework, offer.agent_id, offer.resources, decline.get("filters"))
        self.request_allocation()

    def _validate_offers(self, framework: FrameworkRecord, offer_ids: list[str]) -> str | None:
        if not offer_ids:
            return "No offers specified"
        seen: set[str] = set()
        for offer_id in offer_ids:
            if offer_id in seen:
                return f"Duplicate offer {offer_id} in offer list"
            seen.add(offer_id)
        for offer_id in offer_ids:
            if offer_id not in self.offers:
                return f"Offer {offer_id} is no longer valid"
        for offer_id in offer_ids:
            owner = self.offers[offer_id].framework_id
            if owner != framework.framework_id:
                return (
                    f"Offer {offer_id} has invalid framework {owner} while framework "
                    f"{framework.framework_id} is expected"
                )
        first_agent = self.offers[offer_ids[0]].agent_id
        for offer_id in offer_ids:
            agent_id = self.offers[offer_id].agent_id
            if agent_id != first_agent:
                return (
                    "Aggregated offers must belong to one single agent. Offer "
                    f"{offer_id} uses agent {agent_id} and agent {first_agent}"
                )
            if agent_id not in self.agents:
                return f"Offer {offer_id} is no longer valid"
        return None

    def _call_accept(self, framework: FrameworkRecord, accept: dict[str, Any]) -> None:
        offer_ids = [o.get("value", "") for o in accept.get("offer_ids", [])]
        operations = accept.get("operations", [])
        error = self._validate_offers(framework, offer_ids)
        if error is not None:
            state = "TASK_DROPPED" if framework.has("PARTITION_AWARE") else "TASK_LOST"
            for task in p.iter_tasks_of_operations(operations):
                status = master_status(
                    id_of(task, "task_id") or "",
                    state,
                    "REASON_INVALID_OFFERS",
                    f"Task launched with invalid offers: {error}",
                    id_of(task, "agent_id"),
                )
                self.send(framework, {"type": "UPDATE", "update": {"status": status}})
            for offer_id in offer_ids:
                offer = self.offers.get(offer_id)
                if offer is not None and offer.framework_id == framework.framework_id:
                    self._remove_offer(offer_id, rescind=False)
            self.request_allocation()
            return
        offered = Resources()
        agent_id = self.offers[offer_ids[0]].agent_id
        for offer_id in offer_ids:
            record = self._remove_offer(offer_id, rescind=False)
            assert record is not None
            offered = offered + record.resources
        agent = self.agents[agent_id]
        remaining = offered
        for operation in operations:
            kind = operation.get("type")
            if kind == "LAUNCH":
                remaining = self._launch(framework, agent, operation, remaining)
            elif kind == "LAUNCH_GROUP":
                remaining = self._launch_group(framework, agent, operation, remaining)
            else:
                log.warning("ignoring unsupported offer operation %s from %s", kind, framework.framework_id)
        self._add_filter(framework, agent_id, remaining, accept.get("filters"))
        self.request_allocation()

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
        self.send(framework, {"type": "UPDATE", "update": {"status": status}})

    def _validate_task(
        self, framework: FrameworkRecord, agent: AgentRecord, task: dict[str, Any], pending: set[str]
    ) -> str | None:
        task_id = id_of(task, "task_id") or ""
        if not task_id:
            return "ID must not be empty"
        if any(c in task_id for c in "/\\\x00") or task_id in (".", ".."):
            return f"TaskID '{task_id}' contains invalid characters"
        if task_id in framework.tasks or task_id in pending:
            return f"Task has duplicate ID: {task_id}"
        task_agent = id_of(task, "agent_id")
        if task_agent != agent.agent_id:
            return f"Task uses invalid agent {task_agent} while agent {agent.agent_id} is expected"
        grace = task.get("kill_policy", {}).get("grace_period", {})
        if isinstance(grace, dict) and int(grace.get("nanoseconds", 0)) < 0:
            return "Task's 'kill_policy.grace_period' must be non-negative"
        if not task.get("resources"):
            return "Task uses no resources"
        gpu_error = self._gpu_error(task.get("resources", []))
        if gpu_error is not None:
            return f"Task uses invalid resources: {gpu_error}"
        return None

    @staticmethod
    def _gpu_error(resources: list[dict[str, Any]]) -> str | None:
        gpus = p.resources_from_json(resources).scalar_milli("gpus")
        if gpus % to_milli(1) != 0:
            return "Invalid 'gpus' resource: The 'gpus' resource must be an unsigned integer"
        return None

    def _validate_executor(
        self, framework: FrameworkRecord, agent: AgentRecord, executor: dict[str, Any]
    ) -> str | None:
        kind = executor.get("type")
        if kind == "DEFAULT" and "command" in executor:
            return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
        if kind == "CUSTOM" and "command" not in executor:
            return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
        executor_framework = id_of(executor, "framework_id")
        if executor_framework != framework.framework_id:
            return (
                "ExecutorInfo has an invalid FrameworkID (Actual: "
                f"{executor_framework} vs Expected: {framework.framework_id})"
            )
        grace = executor.get("shutdown_grace_period", {})
        if isinstance(grace, dict) and int(grace.get("nanoseconds", 0)) < 0:
            return "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
        gpu_error = self._gpu_error(executor.get("resources", []))
        if gpu_error is not None:
            return f"Executor uses invalid resources: {gpu_error}"
        existing = agent.executors.get((framework.framework_id, id_of(executor, "executor_id") or ""))
        if existing is not None and existing.info != executor:
            return "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID)."
        return None

    def _launch(
        self, framework: FrameworkRecord, agent: AgentRecord, operation: dict[str, Any], remaining: Resources
    ) -> Resources:
        tasks = operation.get("launch", {}).get("task_infos", [])
        if "id" in operation:
            for task in tasks:
                self._task_error(
                    framework,
                    task,
                    "The `id` field cannot be set on LAUNCH operations",
                    "REASON_TASK_INVALID",
                )
            return remaining
        pending: set[str] = set()
        for original in tasks:
            task = json.loads(json.dumps(original))
            error = self._validate_task(framework, agent, task, pending)
            executor = task.get("executor")
            if error is None and ("executor" in task) == ("command" in task):
                error = "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
            total = p.resources_from_json(task.get("resources", []))
            new_executor = False
            if error is None and executor is not None:
                executor.setdefault("framework_id", value(framework.framework_id))
                error = self._validate_executor(framework, agent, executor)
                if error is None and executor.get("type", "CUSTOM") != "CUSTOM":
                    error = "'ExecutorInfo.type' must be 'CUSTOM'"
                if error is None and "command" not in executor:
                    error = "'ExecutorInfo.command' must be set"
                key = (framework.framework_id, id_of(executor, "executor_id") or "")
                if error is None and key not in agent.executors:
                    new_executor = True
                    total = total + p.resources_from_json(executor.get("resources", []))
            if error is None and not remaining.contains(total):
                error = (
                    f"Total resources {p.describe_resources(total)} required by task and its executor is "
                    f"more than available {p.describe_resources(remaining)}"
                )
            if error is not None:
                self._task_error(framework, task, error, "REASON_TASK_INVALID")
                continue
            remaining = remaining.subtract_or_zero(total)
            task_id = id_of(task, "task_id") or ""
            pending.add(task_id)
            executor_id = id_of(executor, "executor_id") if executor is not None else None
            if executor is not None and new_executor:
                executor_resources = p.resources_from_json(executor.get("resources", []))
                agent.executors[(framework.framework_id, executor_id or "")] = ExecutorRecord(
                    executor, framework.framework_id, agent.agent_id, executor_resources
                )
                agent.used = agent.used + executor_resources
            task_resources = p.resources_from_json(task.get("resources", []))
            record = TaskRecord(task, framework.framework_id, agent.agent_id, executor_id, task_resources)
            framework.tasks[task_id] = record
            agent.used = agent.used + task_resources
            try:
                agent.link.launch(framework.info, task=task)
            except Exception as exc:
                log.exception("agent %s failed to launch task %s", agent.agent_id, task_id)
                self.status_update(
                    agent.agent_id,
                    framework.framework_id,
                    master_status(
                        task_id,
                        "TASK_FAILED",
                        "REASON_CONTAINER_LAUNCH_FAILED",
                        str(exc),
                        agent.agent_id,
                        executor_id,
                    ),
                )
        return remaining

    def _launch_group(  # noqa: PLR0915
        self, framework: FrameworkRecord, agent: AgentRecord, operation: dict[str, Any], remaining: Resources
    ) -> Resources:
        group = operation.get("launch_group", {})
        executor = json.loads(json.dumps(group.get("executor", {})))
        task_group = json.loads(json.dumps(group.get("task_group", {})))
        tasks = task_group.get("tasks", [])
        reason = "REASON_TASK_GROUP_INVALID"
        if "id" in operation:
            for task in tasks:
                self._task_error(
                    framework, task, "The `id` field cannot be set on LAUNCH_GROUP operations", reason
                )
            return remaining
        executor.setdefault("framework_id", value(framework.framework_id))
        executor_id = id_of(executor, "executor_id") or ""
        error: str | None = None
        pending: set[str] = set()
        for task in tasks:
            task_error = self._validate_task(framework, agent, task, pending)
            if task_error is None and task.get("container", {}).get("type") == "DOCKER":
                task_error = "Docker ContainerInfo is not supported on the task"
            if task_error is not None:
                error = f"Task '{id_of(task, 'task_id')}' is invalid: {task_error}"
                break
            pending.add(id_of(task, "task_id") or "")
        if error is None:
            error = self._validate_executor(framework, agent, executor)
        if error is None:
            if "type" not in executor:
                error = "'ExecutorInfo.type' must be set"
            elif executor.get("type") == "UNKNOWN":
                error = "Unknown executor type"
            elif executor.get("container", {}).get("type") == "DOCKER":
                error = "Docker ContainerInfo is not supported on the executor"
        for task in tasks if error is None else []:
            if "executor" in task and task["executor"] != executor:
                error = (
                    f"The `ExecutorInfo` of task '{id_of(task, 'task_id')}' is different from executor "
                    f"'{executor_id}'"
                )
                break
        executor_resources = p.resources_from_json(executor.get("resources", []))
        if error is None:
            if executor_resources.scalar("cpus") < p.MIN_CPUS:
                error = f"Executor '{executor_id}' uses less CPUs than the minimum required ({p.MIN_CPUS})"
            elif executor_resources.scalar("mem") < p.MIN_MEM:
                error = f"Executor '{executor_id}' uses less memory than the minimum required (32MB)"
            elif "disk" not in executor_resources.names():
                error = f"Executor '{executor_id}' uses no disk"
        key = (framework.framework_id, executor_id)
        total = Resources()
        for task in tasks:
            total = total + p.resources_from_json(task.get("resources", []))
        new_executor = key not in agent.executors
        if new_executor:
            total = total + executor_resources
        if error is None and not remaining.contains(total):
            error = (
                f"Total resources {p.describe_resources(total)} required by task group and its executor "
                f"are more than available {p.describe_resources(remaining)}"
            )
        if error is not None:
            for task in tasks:
                self._task_error(framework, task, error, reason)
            return remaining
        remaining = remaining.subtract_or_zero(total)
        if new_executor:
            agent.executors[key] = ExecutorRecord(
                executor, framework.framework_id, agent.agent_id, executor_resources
            )
            agent.used = agent.used + executor_resources
        for task in tasks:
            task_id = id_of(task, "task_id") or ""
            resources = p.resources_from_json(task.get("resources", []))
            framework.tasks[task_id] = TaskRecord(
                task, framework.framework_id, agent.agent_id, executor_id, resources
            )
            agent.used = agent.used + resources
        try:
            agent.link.launch(framework.info, executor=executor, task_group=task_group)
        except Exception as exc:
            log.exception("agent %s failed to launch a task group", agent.agent_id)
            for task in tasks:
                self.status_update(
                    agent.agent_id,
                    framework.framework_id,
                    master_status(
                        id_of(task, "task_id") or "",
                        "TASK_FAILED",
                        "REASON_CONTAINER_LAUNCH_FAILED",
                        str(exc),
                        agent.agent_id,
                        executor_id,
                    ),
                )
        return remaining

    def _call_kill(self, framework: FrameworkRecord, kill: dict[str, Any]) -> None:
        task_id = id_of(kill, "task_id") or ""
        task = framework.tasks.get(task_id)
        if task is None:
            self._reconcile_explicit(
                framework,
                [
                    {
                        "task_id": value(task_id),
                        **({"agent_id": kill["agent_id"]} if "agent_id" in kill else {}),
                    }
                ],
            )
            return
        agent = self.agents.get(task.agent_id)
        if agent is None or task.terminal:
            return
        agent.link.kill_task(framework.framework_id, task_id, kill.get("kill_policy"))

    def _call_shutdown(self, framework: FrameworkRecord, shutdown: dict[str, Any]) -> None:
        agent = self.agents.get(id_of(shutdown, "agent_id") or "")
        executor_id = id_of(shutdown, "executor_id") or ""
        if agent is not None:
            agent.link.shutdown_executor(framework.framework_id, executor_id)

    def _call_acknowledge(self, framework: FrameworkRecord, ack: dict[str, Any]) -> None:
        agent_id = id_of(ack, "agent_id") or ""
        task_id = id_of(ack, "task_id") or ""
        uuid_b64 = str(ack.get("uuid", ""))
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.link.acknowledge(framework.framework_id, task_id, uuid_b64)
        task = framework.tasks.get(task_id)
        if (
            task is not None
            and task.terminal
            and task.status is not None
            and task.status.get("uuid") == uuid_b64
        ):
            del framework.tasks[task_id]
            framework.completed_tasks.append(task)

    def _reconcile_status(self, framework: FrameworkRecord, task: TaskRecord) -> dict[str, Any]:
        status = master_status(
            task.task_id,
            task.state,
            "REASON_RECONCILIATION",
            "Reconciliation: Latest task state",
            task.agent_id,
            task.executor_id,
        )
        if task.status is not None:
            for key in ("healthy", "labels", "container_status", "check_status", "data"):
                if key in task.status:
                    status[key] = task.status[key]
        return status

    def _call_reconcile(self, framework: FrameworkRecord, reconcile: dict[str, Any]) -> None:
        tasks = reconcile.get("tasks", [])
        if not tasks:
            for task in list(framework.tasks.values()):
                self.send(
                    framework,
                    {"type": "UPDATE", "update": {"status": self._reconcile_status(framework, task)}},
                )
            return
        self._reconcile_explicit(framework, tasks)

    def _reconcile_explicit(self, framework: FrameworkRecord, tasks: Iterable[dict[str, Any]]) -> None:
        partition_aware = framework.has("PARTITION_AWARE")
        for item in tasks:
            task_id = id_of(item, "task_id") or ""
            agent_id = id_of(item, "agent_id")
            task = framework.tasks.get(task_id)
            if task is not None:
                status = self._reconcile_status(framework, task)
            elif agent_id is not None and agent_id in self.agents:
                status = master_status(
                    task_id,
                    "TASK_GONE" if partition_aware else "TASK_LOST",
                    "REASON_RECONCILIATION",
                    "Reconciliation: Task is unknown to the agent",
                    agent_id,
                )
            else:
                status = master_status(
                    task_id,
                    "TASK_UNKNOWN" if partition_aware else "TASK_LOST",
                    "REASON_RECONCILIATION",
                    "Reconciliation: Task is unknown",
                    agent_id,
                )
            self.send(framework, {"type": "UPDATE", "update": {"status": status}})

    def _call_message(self, framework: FrameworkRecord, message: dict[str, Any]) -> None:
        agent = self.agents.get(id_of(message, "agent_id") or "")
        if agent is not None:
            agent.link.framework_message(
                framework.framework_id, id_of(message, "executor_id") or "", str(message.get("data", ""))
            )

    def _call_update_framework(self, framework: FrameworkRecord, update: dict[str, Any]) -> int:
        info = dict(update.get("framework_info", {}))
        if id_of(info, "id") != framework.framework_id:
            raise HttpError(
                400,
                p.call_validation_error("'framework_id' differs from 'update_framework.framework_info.id'"),
            )
        error = self._validate_framework_info(info)
        if error is not None:
            raise HttpError(400, error)
        framework.info = info
        self.request_allocation()
        return 200

    # ------------------------------------------------------------------ /state
    def state(self) -> dict[str, Any]:
        def task_json(task: TaskRecord) -> dict[str, Any]:
            statuses = [task.status] if task.status else []
            return {
                "id": task.task_id,
                "name": task.info.get("name", ""),
                "framework_id": task.framework_id,
                "executor_id": task.executor_id or "",
                "slave_id": task.agent_id,
                "agent_id": task.agent_id,
                "state": task.state,
                "resources": p.resources_to_state(task.resources),
                "statuses": statuses,
            }

        def framework_json(f: FrameworkRecord) -> dict[str, Any]:
            used = Resources()
            for task in f.tasks.values():
                if not task.terminal:
                    used = used + task.resources
            offered = Resources()
            for offer_id in f.offers:
                offered = offered + self.offers[offer_id].resources
            return {
                "id": f.framework_id,
                "name": f.info.get("name", ""),
                "user": f.info.get("user", ""),
                "role": f.role,
                "hostname": f.info.get("hostname", ""),
                "failover_timeout": f.failover_timeout,
                "capabilities": sorted(f.capabilities()),
                "active": f.connected and not f.suppressed,
                "connected": f.connected,
                "recovered": f.recovered,
                "registered_time": f.registered_time,
                "unregistered_time": f.unregistered_time or 0,
                "used_resources": p.resources_to_state(used),
                "offered_resources": p.resources_to_state(offered),
                "tasks": [task_json(t) for t in f.tasks.values()],
                "completed_tasks": [task_json(t) for t in f.completed_tasks],
                "offers": [
                    {
                        "id": o,
                        "agent_id": self.offers[o].agent_id,
                        "resources": p.resources_to_state(self.offers[o].resources),
                    }
                    for o in sorted(f.offers)
                ],
                "executors": [
                    {"executor_id": k[1], "slave_id": a.agent_id}
                    for a in self.agents.values()
                    for k in a.executors
                    if k[0] == f.framework_id
                ],
            }

        agents = self.slaves()["slaves"]
        host, port = self.config.host, self.config.port
        leader = (
            f"master@{host}:{port}"
            if self.is_leader
            else (f"master@{self.leader_address}" if self.leader_address else "")
        )
        return {
            "version": p.MESOS_VERSION,
            "id": self.master_id,
            "pid": f"master@{host}:{port}",
            "hostname": self.config.advertised_hostname,
            "leader": leader,
            "elected_time": self.start_time if self.is_leader else None,
            "start_time": self.start_time,
            "activated_slaves": len(self.agents),
            "slaves": agents,
            "frameworks": [framework_json(f) for f in self.frameworks.values()],
            "completed_frameworks": [framework_json(f) for f in self.completed_frameworks],
            "flags": {
                "filter_gpu_resources": str(self.config.filter_gpu_resources).lower(),
                "offer_timeout": p.format_duration(self.config.offer_timeout)
                if self.config.offer_timeout
                else "",
            },
        }

    def slaves(self) -> dict[str, Any]:
        """`GET /master/slaves`: every registered agent with its total, used and offered resources."""
        agents = []
        for agent in self.agents.values():
            ip, port = agent.link.endpoint()
            agents.append(
                {
                    "id": agent.agent_id,
                    "pid": f"slave(1)@{ip}:{port}",
                    "hostname": agent.hostname,
                    "port": int(port),
                    "resources": p.resources_to_state(agent.total),
                    "used_resources": p.resources_to_state(agent.used),
                    "offered_resources": p.resources_to_state(agent.offered),
                    "attributes": agent.info.get("attributes", []),
                    "active": True,
                    "registered_time": agent.registered_time,
                }
            )
        return {"slaves": agents, "recovered_slaves": []}


class MasterHolder:
    """The current `Master` behind the HTTP listener (swapped by `restart`)."""

    def __init__(self, master: Master) -> None:
        self.master = master


def _text(handler: tornado.web.RequestHandler, code: int, text: str) -> None:
    handler.set_status(code)
    if text:
        handler.set_header("Content-Type", "text/plain; charset=utf-8")
        handler.finish(text.encode("utf-8"))
    else:
        handler.clear_header("Content-Type")
        handler.finish()


class SchedulerHandler(tornado.web.RequestHandler):
    """`/api/v1/scheduler`: the checks in the order of `Master::Http::scheduler` (src/master/http.cpp)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, holder: MasterHolder) -> None:
        self.holder = holder
        self.event_stream: EventStream | None = None

    def compute_etag(self) -> str | None:
        return None

    async def get(self) -> None:
        await self._handle()

    async def head(self) -> None:
        await self._handle()

    async def post(self) -> None:
        await self._handle()

    async def put(self) -> None:
        await self._handle()

    async def delete(self) -> None:
        await self._handle()

    async def patch(self) -> None:
        await self._handle()

    async def options(self) -> None:
        await self._handle()

    async def _handle(self) -> None:
        master = self.holder.master
        master.scheduler_requests += 1
        try:
            if not master.is_leader and master.leader_probe is not None:
                verdict = master.leader_probe()     # the watch may not have told us yet
                if verdict is not None:
                    leader, is_self = verdict
                    if is_self:
                        master.set_leader()
                    else:
                        master.set_standby(leader)
            if not master.is_leader:
                if master.leader_address:
                    self.set_status(307)
                    self.set_header("Location", f"//{master.leader_address}{SCHEDULER_PATH}")
                    self.clear_header("Content-Type")
                    self.finish()
                    return
                await asyncio.sleep(STANDBY_503_DELAY)
                raise HttpError(503, p.NO_LEADER)
            if self.request.method != "POST":
                self.set_header("Allow", "POST")
                raise HttpError(405, f"Expecting 'POST', received '{self.request.method}'")
            call = self._parse(master.config.strict)
            if call["type"] == "SUBSCRIBE":
                self._check_accept()
                if "Mesos-Stream-Id" in self.request.headers:
                    raise HttpError(400, p.SUBSCRIBE_WITH_STREAM_ID)
                await self._subscribe(master, call)
                return
            code = master.handle_call(call, self.request.headers.get("Mesos-Stream-Id"))
            _text(self, code, "")
        except HttpError as error:
            if not self._finished:
                _text(self, error.code, error.text)

    def _check_accept(self) -> None:
        accept = self.request.headers.get("Accept")
        if accept is None:
            return
        types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
        if not any(
            t in ("application/json", "application/x-protobuf", "*/*", "application/*") for t in types
        ):
            raise HttpError(406, p.BAD_ACCEPT)

    def _parse(self, strict: bool) -> dict[str, Any]:
        content_type = self.request.headers.get("Content-Type")
        if content_type is None:
            raise HttpError(400, p.MISSING_CONTENT_TYPE)
        media = content_type.split(";")[0].strip().lower()
        if media == "application/x-protobuf":
            raise HttpError(400, p.PROTOBUF_UNSUPPORTED)
        if media != "application/json":
            raise HttpError(415, p.UNSUPPORTED_CONTENT_TYPE)
        try:
            body = json.loads(self.request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, p.json_parse_error(str(exc))) from None
        try:
            call = protojson.convert(body, "scheduler.Call", strict=strict)
        except protojson.ConversionError as exc:
            raise HttpError(400, p.conversion_error(str(exc))) from None
        error = validate_scheduler_call(call)
        if error is not None:
            raise HttpError(400, p.call_validation_error(error))
        return call

    async def _subscribe(self, master: Master, call: dict[str, Any]) -> None:
        stream_id = p.new_stream_id()
        self.set_status(200)
        self.set_header("Content-Type", "application/json")
        self.set_header("Mesos-Stream-Id", stream_id)
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            stream.set_nodelay(True)  # each event goes out at once, not held back by Nagle
        self.flush()
        events = EventStream(self)
        self.event_stream = events
        master.subscribe(call, events, stream_id)
        await events.done
        if not self._finished:
            with contextlib.suppress(Exception):
                self.finish()

    def on_connection_close(self) -> None:
        if self.event_stream is not None:
            self.event_stream.client_closed()

    def on_finish(self) -> None:
        quick_ack(self.request.connection)


def quick_ack(connection: Any) -> None:
    """Acknowledge the next request's first segment at once (Linux TCP_QUICKACK, re-armed after every
    response): http.client writes headers and body in two sends, and Nagle on the client side plus
    delayed ACKs here would otherwise cost ~40 ms per pymesos call."""
    stream = getattr(connection, "stream", None)
    sock = getattr(stream, "socket", None)
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def validate_scheduler_call(call: dict[str, Any]) -> str | None:
    """`validation::scheduler::call::validate` (src/master/validation.cpp)."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE":
        if "subscribe" not in call:
            return "Expecting 'subscribe' to be present"
        info_id = id_of(call["subscribe"]["framework_info"], "id")
        call_id = id_of(call, "framework_id")
        if info_id is not None and info_id != call_id:
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        return None
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    key = PAYLOAD_KEY.get(kind)
    if kind not in NO_PAYLOAD_CALLS and key is not None and key not in call:
        return f"Expecting '{key}' to be present"
    if kind == "ACKNOWLEDGE":
        try:
            raw = p.decode_bytes(call["acknowledge"]["uuid"])
        except ValueError:
            raw = b""
        if len(raw) != 16:
            return "Not a valid UUID"
    if kind == "ACKNOWLEDGE_OPERATION_STATUS" and "agent_id" not in call["acknowledge_operation_status"]:
        return "Expecting 'agent_id' to be present"
    if kind == "UPDATE_FRAMEWORK":
        info_id = id_of(call["update_framework"]["framework_info"], "id")
        if info_id != id_of(call, "framework_id"):
            return "'framework_id' differs from 'update_framework.framework_info.id'"
    return None


class _JsonHandler(tornado.web.RequestHandler):
    def initialize(self, holder: MasterHolder) -> None:
        self.holder = holder

    def write_json(self, body: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class VersionHandler(_JsonHandler):
    def get(self) -> None:
        self.write_json(version_json())


class StateHandler(_JsonHandler):
    def get(self) -> None:
        self.write_json(self.holder.master.state())


class SlavesHandler(_JsonHandler):
    def get(self) -> None:
        self.write_json(self.holder.master.slaves())


class HealthHandler(_JsonHandler):
    def get(self) -> None:
        self.set_status(200)
        self.clear_header("Content-Type")
        self.finish()


def version_json() -> dict[str, Any]:
    """`GET /version` as Mesos 1.11 serves it; the version is purely numeric (pymesos parses it)."""
    return {
        "version": p.MESOS_VERSION,
        "build_date": "2020-11-24 00:00:00",
        "build_time": 1606176000.0,
        "build_user": "mesos-gpu",
        "git_sha": "0000000000000000000000000000000000000000",
        "git_tag": p.MESOS_VERSION,
    }


def make_app(holder: MasterHolder) -> tornado.web.Application:
    args = {"holder": holder}
    return tornado.web.Application(
        [
            (SCHEDULER_PATH, SchedulerHandler, args),
            (r"/master/api/v1/scheduler", SchedulerHandler, args),
            (r"/version", VersionHandler, args),
            (r"/state", StateHandler, args),
            (r"/master/state", StateHandler, args),
            (r"/state\.json", StateHandler, args),
            (r"/slaves", SlavesHandler, args),
            (r"/master/slaves", SlavesHandler, args),
            (r"/health", HealthHandler, args),
            (r"/master/health", HealthHandler, args),
        ],
        compress_response=False,
    )


class MasterServer:
    """The master's HTTP listener on `config.host:config.port` (0 picks a free port); create and use
    it on the IOLoop thread."""

    def __init__(self, config: MasterConfig, master_id: str | None = None) -> None:
        self.config = config
        sockets = tornado.netutil.bind_sockets(config.port, address=config.host)
        self.config.port = int(sockets[0].getsockname()[1])
        self.holder = MasterHolder(Master(config, master_id))
        self.server = tornado.httpserver.HTTPServer(
            make_app(self.holder), idle_connection_timeout=3600, max_body_size=64 * 1024 * 1024
        )
        self.server.add_sockets(sockets)

    @property
    def master(self) -> Master:
        return self.holder.master

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def restart(self) -> Master:
        """Replace the master by a fresh one (new id, empty state) on the same port; streams drop."""
        old = self.holder.master
        old.stop()
        self.holder.master = Master(self.config)
        return self.holder.master

    def stop(self) -> None:
        self.holder.master.stop()
        self.server.stop()
        with contextlib.suppress(Exception):
            IOLoop.current().add_callback(self.server.close_all_connections)
