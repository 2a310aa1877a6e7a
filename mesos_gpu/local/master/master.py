"""The embedded Mesos v1 master's core: framework subscription, failover and removal, heartbeats,
leadership, and the `MasterLink` the in-process agents call (local-interface.md); `MasterServer` is
its HTTP listener. The rest of this package follows Mesos' seams: `allocator`, `validation`
(validation.cpp), `launch` + `calls` (what each call does), `readonly` / `operator` (what operators
see), `http` (the endpoints), `records` (the records). One IOLoop thread, no
locks; a test can restart the master (same port) without dropping pymesos' keep-alive connection.

Additions to the interface note: `register_agent` reads `running()` entries of both kinds the agent
documents (tasks, and executors whose "tasks" are task ids; `registry.readmit_entry`); after
`LocalCluster.restart_master()` the agents learn the new master through `Agent.attach_master`, and the
new master awaits them (`registry`); `unregister_agent` turns the agent's tasks LOST (UNREACHABLE when
partition-aware, REASON_AGENT_REMOVED) and sends FAILURE{agent_id}.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import tornado.httpserver
import tornado.netutil
from tornado.ioloop import IOLoop

from mesos_gpu.core import wire
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master import readonly as master_state
from mesos_gpu.local.master.allocator import Allocator
from mesos_gpu.local.master.calls import SchedulerCalls
from mesos_gpu.local.master.http import EventStream, MasterHolder, make_app
from mesos_gpu.local.master.records import (
    COMPLETED_FRAMEWORKS_KEPT,
    AgentLink,
    AgentRecord,
    EventSink,
    FrameworkRecord,
    MasterConfig,
    OfferRecord,
    master_status,
)
from mesos_gpu.local.master.registry import readmit_entry, recover
from mesos_gpu.local.master.validation import PAYLOAD_KEY, validate_framework_info, validate_suppressed_roles
from mesos_gpu.local.protocol import HttpError, id_of, value

__all__ = ["AgentLink", "EventStream", "Master", "MasterConfig", "MasterHolder", "MasterServer"]

log = logging.getLogger(__name__)


class Master:
    """The master's state and `MasterLink`; every method runs on the IOLoop thread."""

    def __init__(self, config: MasterConfig, master_id: str | None = None) -> None:
        self.config = config
        self.master_id = master_id or p.new_master_id()
        self.start_time = time.time()
        self.frameworks: dict[str, FrameworkRecord] = {}
        self.completed_frameworks: deque[FrameworkRecord] = deque(maxlen=COMPLETED_FRAMEWORKS_KEPT)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, AgentRecord] = {}
        self.unreachable_agents: dict[str, float] = {}  # agent id -> when it went away
        self.recovered_agents: set[str] = set()  # from the registry, not re-registered yet (registry.py)
        self.recovery_timer: object | None = None
        self.is_leader = True
        self.leader_address: str | None = None  # "host:port" of the leader while standby
        # Reads who leads from ZooKeeper now, (leader address, is self); a standby asks it before it
        # answers a framework (set when the master is announced in ZooKeeper).
        self.leader_probe: Callable[[], tuple[str | None, bool] | None] | None = None
        self.scheduler_requests = 0  # requests to /api/v1/scheduler (tests check 503 pacing)
        self._framework_counter = 0
        self._agent_counter = 0
        self.loop = IOLoop.current()
        self.allocator = Allocator(self)
        self.calls = SchedulerCalls(self)

    @property
    def offers(self) -> dict[str, OfferRecord]:
        return self.allocator.offers

    def request_allocation(self) -> None:
        self.allocator.request()

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
        self.allocator.stop()
        self._cancel(self.recovery_timer)
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

    def send(self, framework: FrameworkRecord, event: dict[str, Any]) -> None:
        if framework.stream is not None and framework.connected:
            framework.stream.send(event)

    # ------------------------------------------------------------------ calls
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
        method = self.calls.table.get(kind)
        if method is None:
            return 202
        result = method(framework, call.get(PAYLOAD_KEY.get(kind, ""), {}))
        return 202 if result is None else result

    # ------------------------------------------------------------------ SUBSCRIBE
    def subscribe(self, call: dict[str, Any], stream: EventSink, stream_id: str) -> None:
        """A (re-)subscription: ERROR for an invalid or removed framework or a suppressed role it lacks,
        else SUBSCRIBED, heartbeats and offers on `stream` (none for the `suppressed_roles`)."""
        info = dict(call["subscribe"]["framework_info"])
        framework_id = id_of(info, "id")
        suppressed = {str(role) for role in call["subscribe"].get("suppressed_roles", [])}
        error = validate_framework_info(info) or validate_suppressed_roles(info, suppressed)
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
        self.allocator.set_suppressed(framework, suppressed)  # Mesos: on every (re)subscription
        self._connect(framework, stream, stream_id)
        self._tell_agents(framework)
        self.request_allocation()

    def _connect(self, framework: FrameworkRecord, stream: EventSink, stream_id: str) -> None:
        framework.stream = stream
        framework.stream_id = stream_id
        framework.connected = True
        framework.recovered = False
        framework.heartbeats = True
        framework.unregistered_time = None
        stream.on_client_close = self._stream_closed
        subscribed = {
            "framework_id": value(framework.framework_id),
            "heartbeat_interval_seconds": float(self.config.heartbeat_interval),
            "master_info": self.master_info(),
        }
        stream.send({"type": "SUBSCRIBED", "subscribed": subscribed})
        self._heartbeat(framework)

    def _tell_agents(self, framework: FrameworkRecord) -> None:
        """Agents running the framework's executors learn its new FrameworkInfo."""
        for agent in self.agents.values():
            with contextlib.suppress(Exception):
                updated = getattr(agent.link, "framework_updated", None)
                if updated is not None and any(k[0] == framework.framework_id for k in agent.executors):
                    updated(framework.info)

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
        self.allocator.remove_framework_offers(framework)
        framework.info = info

    def _stream_closed(self, stream: EventSink) -> None:
        for framework in self.frameworks.values():
            if framework.stream is stream:
                self._disconnect(framework)
                return

    def _disconnect(self, framework: FrameworkRecord) -> None:
        """The subscription connection is gone: deactivate (offers, filters go), start failover timer."""
        framework.stream = None
        framework.connected = False
        framework.unregistered_time = time.time()
        self._cancel(framework.heartbeat_timer)
        framework.heartbeat_timer = None
        self.allocator.deactivate(framework)
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

    # ------------------------------------------------------------------ framework removal / hooks
    def remove_framework(self, framework_id: str) -> None:
        """TEARDOWN or failover timeout: kill everything (no updates), close the stream, remember it."""
        framework = self.frameworks.pop(framework_id, None)
        if framework is None:
            return
        self._cancel(framework.heartbeat_timer)
        self._cancel(framework.failover_timer)
        self.allocator.remove_framework_offers(framework)
        framework.offers.clear()
        for agent in self.agents.values():
            self._shut_down_on(agent, framework)
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

    def _shut_down_on(self, agent: AgentRecord, framework: FrameworkRecord) -> None:
        """The agent shuts the framework down (if it runs any of it) and its executors are forgotten."""
        framework_id = framework.framework_id
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
        if agent_id in self.agents:
            self.allocator.rescind_agent_offers(agent_id)
        self.unreachable_agents.pop(agent_id, None)
        self.recovered_agents.discard(agent_id)
        record = AgentRecord(
            agent_id, agent, info, wire.resources_from_mesos(info.get("resources", []), lenient=True)
        )
        self.agents[agent_id] = record
        for framework in self.frameworks.values():
            for task in list(framework.tasks.values()):
                if task.agent_id == agent_id and not task.terminal:
                    record.used = record.used + task.resources
        for entry in agent.running():
            readmit_entry(self, record, entry)
        self.request_allocation()

    def unregister_agent(self, agent_id: str) -> None:
        """The agent is gone: rescind its offers, its tasks become LOST/UNREACHABLE, FAILURE to all."""
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        self.unreachable_agents[agent_id] = time.time()
        self.allocator.rescind_agent_offers(agent_id)
        for framework in list(self.frameworks.values()):
            state = "TASK_UNREACHABLE" if framework.has("PARTITION_AWARE") else "TASK_LOST"
            for task in [t for t in framework.tasks.values() if t.agent_id == agent_id]:
                framework.tasks.pop(task.task_id, None)
                if task.terminal:
                    continue
                task.state = state
                gone = f"Agent {agent.hostname} is unreachable"
                reason = "REASON_AGENT_REMOVED"
                task.status = master_status(task.task_id, state, reason, gone, agent_id, task.executor_id)
                framework.completed_tasks.append(task)
                self.send(framework, {"type": "UPDATE", "update": {"status": task.status}})
            self.send(framework, {"type": "FAILURE", "failure": {"agent_id": value(agent_id)}})
        self.request_allocation()

    def status_update(self, agent_id: str, framework_id: str, status: dict[str, Any]) -> None:
        """A task status from an agent: record it, free resources at a terminal state, forward it."""
        status = dict(status)
        status.setdefault("agent_id", value(agent_id))
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        task = framework.tasks.get(id_of(status, "task_id") or "")
        if task is not None:
            was_terminal = task.terminal
            task.state = str(status.get("state", ""))
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
        message = {"agent_id": value(agent_id), "executor_id": value(executor_id), "data": data_b64}
        self.send(framework, {"type": "MESSAGE", "message": message})

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
        failure = {"agent_id": value(agent_id), "executor_id": value(executor_id), "status": int(wait_status)}
        self.send(framework, {"type": "FAILURE", "failure": failure})

    # ------------------------------------------------------------------ what operators see
    def state(self) -> dict[str, Any]:
        return master_state.state(self)  # GET /master/state

    def slaves(self) -> dict[str, Any]:
        return master_state.slaves(self)  # GET /master/slaves


class MasterServer:
    """The master's HTTP listener on `config.host:config.port` (0 picks a free port); create and use
    it on the IOLoop thread."""

    def __init__(self, config: MasterConfig, master_id: str | None = None) -> None:
        self.config = config
        sockets = tornado.netutil.bind_sockets(config.port, address=config.host)
        self.config.port = int(sockets[0].getsockname()[1])
        self.holder = MasterHolder(Master(config, master_id))
        self.server = self._serve(sockets)

    def _serve(self, sockets: list[Any]) -> tornado.httpserver.HTTPServer:
        server = tornado.httpserver.HTTPServer(
            make_app(self.holder), idle_connection_timeout=3600, max_body_size=64 * 1024 * 1024
        )
        server.add_sockets(sockets)
        return server

    @property
    def master(self) -> Master:
        return self.holder.master

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def restart(self) -> Master:
        """Replace the master by a fresh one (new id, only the registry kept) on the same port; streams
        drop but connections stay open."""
        old = self.holder.master
        old.stop()
        self.holder.master = Master(self.config)
        recover(self.holder.master, old)
        return self.holder.master

    def go_down(self) -> None:
        """The master process is gone: its port refuses connections and every connection drops."""
        self.holder.master.stop()
        self.server.stop()
        IOLoop.current().add_callback(self.server.close_all_connections)

    def come_up(self) -> Master:
        """A fresh master (as `restart`) listening again on the same port after `go_down`."""
        sockets = tornado.netutil.bind_sockets(self.config.port, address=self.config.host)
        old, self.holder.master = self.holder.master, Master(self.config)
        recover(self.holder.master, old)
        self.server = self._serve(sockets)
        return self.holder.master

    def stop(self) -> None:
        self.holder.master.stop()
        self.server.stop()
        with contextlib.suppress(Exception):
            IOLoop.current().add_callback(self.server.close_all_connections)
