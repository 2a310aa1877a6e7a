"""A local Mesos agent: runs tasks and executors for the local master, and serves the agent HTTP API.

`Agent` implements AgentLink (notes: local-interface). HTTP on a loopback port: `POST /api/v1/executor`
(v1 executor API), `GET /files/read`, `GET /version`, `GET /state`. Everything runs on one tornado IOLoop
thread; child processes are reaped by watcher threads that hand results back with add_callback.

`running()` returns two kinds of entries, told apart by their keys:
- tasks: `{"framework_id": F, "task": TaskInfo, "state": "TASK_RUNNING", "executor_id": E or None}` for
  every task that is not terminal or whose terminal update is not acknowledged yet (executor_id is None
  for command tasks: their built-in executor has no resources of its own here);
- executors: `{"framework_id": F, "executor": ExecutorInfo, "tasks": [task ids]}` for every custom
  executor still running (its resources count until `executor_exited`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tornado import httpserver, netutil, web
from tornado.ioloop import IOLoop

from mesos_gpu.local.command_executor import (
    CommandTask,
    CommandTaskConfig,
    command_argv,
    command_environment,
    grace_period_seconds,
)
from mesos_gpu.local.gpus import (
    SIMULATED_GPU_MODEL,
    GpuAllocationError,
    GpuDevice,
    GpuSlots,
    nvml_devices,
    simulated_devices,
    visible_devices_env,
)
from mesos_gpu.local.protocol import MESOS_VERSION, encode_record, format_duration
from mesos_gpu.local.runners import DockerRunner, HostRunner, LaunchSpec, Runner, RunningProcess
from mesos_gpu.local.sandbox import (
    FetchError,
    FileReadError,
    Sandbox,
    SandboxFiles,
    create_sandbox,
    create_task_sandbox,
    fetch_uris,
)
from mesos_gpu.local.status_updates import TERMINAL_STATES, StatusUpdateStreams

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"


class MasterLink(Protocol):
    """What the agent calls on the master (implemented by mesos_gpu.local.master.Master)."""

    def register_agent(self, agent: Any) -> None: ...

    def unregister_agent(self, agent_id: str) -> None: ...

    def status_update(self, agent_id: str, framework_id: str, status: dict[str, Any]) -> None: ...

    def executor_message(self, agent_id: str, framework_id: str, executor_id: str, data_b64: str) -> None: ...

    def executor_exited(
        self, agent_id: str, framework_id: str, executor_id: str, wait_status: int
    ) -> None: ...


def new_uuid_b64() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode("ascii")


def scalar_resource(resources: list[dict[str, Any]], name: str) -> float:
    return sum(float(r.get("scalar", {}).get("value", 0)) for r in resources if r.get("name") == name)


@dataclass
class AgentConfig:
    """Everything configurable about one local agent; durations in seconds."""

    cpus: float = 4.0
    mem: float = 8192.0
    disk: float = 65536.0
    ports: tuple[tuple[int, int], ...] = ((31000, 32000),)
    attributes: dict[str, str | float] = field(default_factory=dict)
    gpus: int | None = 0  # N simulated GPU slots; None: the host's real GPUs through isolator.nvml
    gpu_model: str = SIMULATED_GPU_MODEL
    host: str = "127.0.0.1"
    port: int = 0
    hostname: str | None = None  # advertised in AgentInfo/offers; default: `host`
    executor_registration_timeout: float = 60.0
    executor_shutdown_grace_period: float = 5.0
    command_kill_grace_period: float = 3.0
    status_update_retry: float = 10.0
    status_update_retry_max: float = 600.0
    executor_heartbeat_interval: float = 1800.0
    recovery_timeout: float = 900.0
    subscription_backoff_max: float = 2.0
    docker: str = "auto"  # "auto": use a reachable Docker engine for image tasks; "off": never
    docker_host: str | None = None  # e.g. unix:///tmp/x/docker.sock; default: DOCKER_HOST / the SDK's


@dataclass
class _Task:
    framework_id: str
    info: dict[str, Any]
    container_id: str
    executor_id: str | None  # custom executor id; None for command tasks
    state: str = "TASK_STAGING"
    delivered: bool = False  # LAUNCH sent to its executor
    command: CommandTask | None = None

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])


@dataclass
class _Executor:
    framework_id: str
    info: dict[str, Any]
    container_id: str
    sandbox: Sandbox
    state: str = "REGISTERING"  # REGISTERING -> RUNNING -> TERMINATING -> TERMINATED
    process: RunningProcess | None = None
    stream: _ExecutorStream | None = None
    queued: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # ("task"|"group", info)
    tasks: dict[str, _Task] = field(default_factory=dict)
    recorded_uuids: set[str] = field(default_factory=set)
    pending_termination: tuple[str, str, str] | None = None  # (state, reason, message)
    registration_timer: object | None = None
    shutdown_timer: object | None = None
    heartbeat_timer: object | None = None
    default: bool = False  # the emulated DEFAULT executor: no process, tasks run as nested commands
    groups: list[list[str]] = field(default_factory=list)  # task ids of each LAUNCH_GROUP

    @property
    def executor_id(self) -> str:
        return str(self.info["executor_id"]["value"])


class Agent:
    """One local agent. Construct anywhere; call every method on the IOLoop thread."""

    def __init__(
        self,
        master: MasterLink | None,
        agent_id: str,
        workdir: Path | str,
        config: AgentConfig | None = None,
        *,
        runner: Runner | None = None,
        docker_runner: Runner | None = None,
        gpu_devices: list[GpuDevice] | None = None,
    ) -> None:
        self.master = master
        self.agent_id = agent_id
        self.config = config or AgentConfig()
        self.root = Path(workdir) / "agents" / agent_id
        self.port = 0
        self.files = SandboxFiles()
        if gpu_devices is not None:  # injected (e.g. discovered through isolator.fakenvml in tests)
            devices = list(gpu_devices)
        elif self.config.gpus is None:
            devices = nvml_devices()
        else:
            devices = simulated_devices(self.config.gpus, self.config.gpu_model)
        self.gpus = GpuSlots(devices)
        self._runner = runner
        self._docker_runner = docker_runner
        self._docker_checked = docker_runner is not None or self.config.docker == "off"
        self._owns_docker_runner = docker_runner is None  # one it connected itself: closed at stop()
        self._loop: IOLoop | None = None
        self._server: httpserver.HTTPServer | None = None
        self._streams: StatusUpdateStreams | None = None
        self.frameworks: dict[str, dict[str, Any]] = {}
        self.removed_frameworks: set[str] = set()
        self.tasks: dict[tuple[str, str], _Task] = {}
        self.executors: dict[tuple[str, str], _Executor] = {}
        self.completed_executors: list[_Executor] = []
        self._stopped = False

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind the HTTP server and register with the master. On the loop thread."""
        self._loop = IOLoop.current()
        self.root.mkdir(parents=True, exist_ok=True)
        if self._runner is None:
            self._runner = HostRunner(self._loop)
        self._streams = StatusUpdateStreams(
            self._send_update,
            self._loop,
            initial_interval=self.config.status_update_retry,
            max_interval=self.config.status_update_retry_max,
        )
        self._streams.set_paused(self.master is None)
        sockets = netutil.bind_sockets(self.config.port, address=self.config.host, family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self._server = httpserver.HTTPServer(self._application())
        self._server.add_sockets(sockets)
        if self.master is not None:
            self.master.register_agent(self)

    def attach_master(self, master: MasterLink | None) -> None:
        """A (new) master: register with it and re-send every unacknowledged update."""
        self.master = master
        if master is not None:
            master.register_agent(self)
        self.streams.set_paused(master is None)

    def stop(self) -> None:
        """Kill every process (SIGKILL to each group), close the server, cancel timers."""
        if self._stopped:
            return
        self._stopped = True
        for task in list(self.tasks.values()):
            if task.command is not None:
                task.command.destroy()
        for executor in list(self.executors.values()):
            self._cancel_executor_timers(executor)
            if executor.stream is not None:
                executor.stream.close()
            if executor.process is not None:
                executor.process.signal(signal.SIGKILL)
        if self._streams is not None:
            self._streams.close()
        if self._server is not None:
            self._server.stop()
        if self._owns_docker_runner and isinstance(self._docker_runner, DockerRunner):
            self._docker_runner.close()

    @property
    def streams(self) -> StatusUpdateStreams:
        assert self._streams is not None, "Agent.start() first"
        return self._streams

    @property
    def loop(self) -> IOLoop:
        assert self._loop is not None, "Agent.start() first"
        return self._loop

    # ---------------------------------------------------------------- AgentLink: read side

    @property
    def hostname(self) -> str:
        return self.config.hostname or self.config.host

    def endpoint(self) -> tuple[str, int]:
        return (self.config.host, self.port)

    def pid(self) -> str:
        return f"slave(1)@{self.config.host}:{self.port}"

    def resources(self) -> list[dict[str, Any]]:
        """The agent's total resources (role "*")."""
        c = self.config
        res: list[dict[str, Any]] = [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": c.cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": c.mem}, "role": "*"},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": c.disk}, "role": "*"},
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": b, "end": e} for b, e in c.ports]},
                "role": "*",
            },
        ]
        if self.gpus.total:
            res.append(
                {"name": "gpus", "type": "SCALAR", "scalar": {"value": float(self.gpus.total)}, "role": "*"}
            )
        return res

    def attributes(self) -> list[dict[str, Any]]:
        attrs: dict[str, str | float] = {}
        if self.gpus.total and self.gpus.model:
            attrs["gpu_model"] = self.gpus.model
        attrs.update(self.config.attributes)
        out: list[dict[str, Any]] = []
        for name, value in attrs.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
            else:
                out.append({"name": name, "type": "TEXT", "text": {"value": str(value)}})
        return out

    def agent_info(self) -> dict[str, Any]:
        return {
            "id": {"value": self.agent_id},
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.resources(),
            "attributes": self.attributes(),
        }

    def running(self) -> list[dict[str, Any]]:
        unacked = {
            (fw, st["task_id"]["value"])
            for fw, st in (self._streams.unacknowledged() if self._streams else [])
        }
        out: list[dict[str, Any]] = []
        for key, task in self.tasks.items():
            if task.state not in TERMINAL_STATES or key in unacked:
                out.append(
                    {
                        "framework_id": task.framework_id,
                        "task": task.info,
                        "state": task.state,
                        "executor_id": task.executor_id,
                    }
                )
        for executor in self.executors.values():
            out.append(
                {
                    "framework_id": executor.framework_id,
                    "executor": executor.info,
                    "tasks": sorted(executor.tasks),
                }
            )
        return out

    def latest_state(self, framework_id: str, task_id: str) -> str | None:
        """The task's latest state on this agent, even when its update still waits in the stream."""
        task = self.tasks.get((framework_id, task_id))
        return task.state if task else None

    # ---------------------------------------------------------------- AgentLink: commands

    def launch(
        self,
        framework: dict[str, Any],
        task: dict[str, Any] | None = None,
        executor: dict[str, Any] | None = None,
        task_group: dict[str, Any] | None = None,
    ) -> None:
        framework_id = str(framework["id"]["value"])
        self.frameworks[framework_id] = framework
        self.removed_frameworks.discard(framework_id)
        if task is not None and "executor" not in task:
            self._launch_command_task(framework_id, task)
        elif task is not None:
            self._launch_on_executor(framework_id, dict(task["executor"]), "task", task, [task])
        elif executor is not None and task_group is not None and executor.get("type") == "DEFAULT":
            self._launch_default_executor(framework_id, dict(executor), task_group)
        elif executor is not None and task_group is not None:
            self._launch_on_executor(
                framework_id, dict(executor), "group", task_group, list(task_group["tasks"])
            )
        else:
            raise ValueError("launch needs a task, or an executor and a task group")

    def kill_task(self, framework_id: str, task_id: str, kill_policy: dict[str, Any] | None = None) -> None:
        task = self.tasks.get((framework_id, task_id))
        if task is None or task.state in TERMINAL_STATES:
            log.info("kill of unknown or finished task %s/%s ignored", framework_id, task_id)
            return
        if task.command is not None:
            task.command.kill(kill_policy)
            return
        executor = self.executors.get((framework_id, task.executor_id or ""))
        if executor is None:
            return
        if not task.delivered:
            executor.queued = [
                (kind, info)
                for kind, info in (self._without_task(q, task_id) for q in executor.queued)
                if info is not None
            ]
            self._agent_update(
                framework_id,
                task,
                "TASK_KILLED",
                "Killed before delivery to the executor",
                "REASON_TASK_KILLED_DURING_LAUNCH",
            )
            if not any(t.state not in TERMINAL_STATES for t in executor.tasks.values()):
                self.shutdown_executor(framework_id, executor.executor_id)
            return
        event: dict[str, Any] = {"task_id": {"value": task_id}}
        if kill_policy:
            event["kill_policy"] = kill_policy
        self._send_event(executor, {"type": "KILL", "kill": event})

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        executor = self.executors.get((framework_id, executor_id))
        if executor is None or executor.state in ("TERMINATING", "TERMINATED"):
            return
        framework = self.frameworks.get(framework_id, {})
        gone = "TASK_GONE" if _has_capability(framework, "PARTITION_AWARE") else "TASK_LOST"
        if executor.pending_termination is None:
            executor.pending_termination = (gone, "REASON_EXECUTOR_TERMINATED", "Executor terminated")
        self._terminate_executor(executor)

    def shutdown_framework(self, framework_id: str) -> None:
        self.removed_frameworks.add(framework_id)
        self.streams.drop_framework(framework_id)
        for task in list(self.tasks.values()):
            if task.framework_id == framework_id and task.command is not None:
                task.command.kill(None)
        for executor in list(self.executors.values()):
            if executor.framework_id == framework_id:
                self._terminate_executor(executor)

    def framework_message(self, framework_id: str, executor_id: str, data_b64: str) -> None:
        executor = self.executors.get((framework_id, executor_id))
        if executor is None or executor.stream is None:
            log.warning("dropping message for executor %s/%s: not subscribed", framework_id, executor_id)
            return
        self._send_event(executor, {"type": "MESSAGE", "message": {"data": data_b64}})

    def acknowledge(self, framework_id: str, task_id: str, uuid_b64: str) -> None:
        self.streams.acknowledge(framework_id, task_id, uuid_b64)
        task = self.tasks.get((framework_id, task_id))
        if (
            task is not None
            and task.state in TERMINAL_STATES
            and not self.streams.pending(framework_id, task_id)
        ):
            self._forget_task(task)

    def framework_updated(self, framework: dict[str, Any]) -> None:
        framework_id = str(framework["id"]["value"])
        if framework_id in self.frameworks:
            self.frameworks[framework_id] = framework

    # ---------------------------------------------------------------- command tasks

    def _launch_command_task(
        self, framework_id: str, info: dict[str, Any], pod: _Executor | None = None
    ) -> _Task | None:
        """A command task: under the built-in command executor (its own container), or, with `pod`,
        as one task of a DEFAULT executor's group (a nested sandbox `.../runs/<C>/tasks/<T>`)."""
        task_id = str(info["task_id"]["value"])
        container_id = pod.container_id if pod else str(uuid.uuid4())
        task = _Task(framework_id, info, container_id, pod.executor_id if pod else None)
        self.tasks[(framework_id, task_id)] = task
        gpu_holder = f"{container_id}/{task_id}" if pod else container_id
        try:
            if pod is None:
                sandbox = create_sandbox(self.root, framework_id, task_id, container_id)
                self.files.attach(sandbox)
            else:
                pod.tasks[task_id] = task
                sandbox = create_task_sandbox(pod.sandbox, task_id)
        except (OSError, ValueError) as exc:
            self._agent_update(
                framework_id,
                task,
                "TASK_FAILED",
                f"Failed to create sandbox: {exc}",
                "REASON_CONTAINER_LAUNCH_FAILED",
            )
            return None
        try:
            gpus = self.gpus.allocate(gpu_holder, scalar_resource(info.get("resources", []), "gpus"))
        except GpuAllocationError as exc:
            self._agent_update(
                framework_id,
                task,
                "TASK_FAILED",
                f"Failed to launch container: {exc}",
                "REASON_CONTAINER_LAUNCH_FAILED",
            )
            return None
        command = info.get("command", {})
        spec, runner, warnings = self._launch_spec(
            info,
            gpus,
            sandbox,
            self._base_env(framework_id, pod.executor_id if pod else task_id, sandbox),
            name=f"mesos-{container_id}-{task_id}" if pod else f"mesos-{container_id}",
            task_id=task_id,
        )
        framework = self.frameworks.get(framework_id, {})

        def terminated(_cmd: CommandTask, _status: int | None) -> None:
            self._release_container_gpus(gpu_holder)
            if pod is not None:
                self._pod_task_terminated(pod, task)

        task.command = CommandTask(
            info,
            spec,
            runner,
            self.loop,
            emit=lambda state, message=None, reason=None: self._command_update(task, state, message, reason),
            on_terminated=terminated,
            config=CommandTaskConfig(
                kill_grace_period=self.config.command_kill_grace_period,
                task_killing_state=_has_capability(framework, "TASK_KILLING_STATE"),
                warnings=warnings,
            ),
        )
        uris = list(command.get("uris", []))
        if uris:
            self._fetch_then(sandbox, uris, task, task.command.start)
        else:
            task.command.start()
        return task

    def _command_update(self, task: _Task, state: str, message: str | None, reason: str | None) -> None:
        status = self._new_status(task, state, "SOURCE_EXECUTOR", message, reason)
        # the command executor's id is the task id; a default executor's tasks carry the pod's id
        status["executor_id"] = {"value": task.executor_id or task.task_id}
        process = task.command.process if task.command else None
        if process is not None and process.pid and task.executor_id is None:
            status["container_status"]["executor_pid"] = process.pid
        self._record_update(task.framework_id, status)

    # ---------------------------------------------------------------- the default executor (task groups)

    def _launch_default_executor(
        self, framework_id: str, info: dict[str, Any], group: dict[str, Any]
    ) -> None:
        """Emulate mesos-default-executor: every task of the group is a command task in a nested
        container; when one fails or is killed the others are killed; the executor ends (status 0)
        once all its tasks are terminal."""
        info.setdefault("framework_id", {"value": framework_id})
        executor_id = str(info["executor_id"]["value"])
        pod = self.executors.get((framework_id, executor_id))
        tasks_info = list(group.get("tasks", []))
        if pod is not None and pod.state != "RUNNING":
            framework = self.frameworks.get(framework_id, {})
            state = "TASK_DROPPED" if _has_capability(framework, "PARTITION_AWARE") else "TASK_LOST"
            for info_ in tasks_info:
                task = _Task(framework_id, info_, pod.container_id, executor_id)
                self.tasks[(framework_id, task.task_id)] = task
                self._agent_update(
                    framework_id, task, state, "Executor terminating", "REASON_EXECUTOR_TERMINATED"
                )
            return
        if pod is None:
            container_id = str(uuid.uuid4())
            sandbox = create_sandbox(self.root, framework_id, executor_id, container_id)
            self.files.attach(sandbox)
            pod = _Executor(framework_id, info, container_id, sandbox, state="RUNNING", default=True)
            self.executors[(framework_id, executor_id)] = pod
            try:
                self.gpus.allocate(container_id, scalar_resource(info.get("resources", []), "gpus"))
            except GpuAllocationError as exc:
                pod.pending_termination = (
                    "TASK_FAILED",
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    f"Failed to launch container: {exc}",
                )
        group_ids = [str(t["task_id"]["value"]) for t in tasks_info]
        pod.groups.append(group_ids)
        for info_ in tasks_info:
            if pod.pending_termination is not None:
                task = _Task(framework_id, info_, pod.container_id, executor_id)
                self.tasks[(framework_id, task.task_id)] = task
                pod.tasks[task.task_id] = task
                continue
            self._launch_command_task(framework_id, info_, pod)
        if pod.pending_termination is not None:
            self._executor_exited(pod, 1 << 8)

    def _pod_task_terminated(self, pod: _Executor, task: _Task) -> None:
        if task.state != "TASK_FINISHED":
            for group in pod.groups:
                if task.task_id in group:
                    for other_id in group:
                        other = pod.tasks.get(other_id)
                        if other is not None and other.command is not None and not other.command.terminal:
                            other.command.kill(None)
        if pod.state != "TERMINATED" and all(t.state in TERMINAL_STATES for t in pod.tasks.values()):
            self._executor_exited(pod, 0)

    def _fetch_then(
        self, sandbox: Sandbox, uris: list[dict[str, Any]], task: _Task, then: Callable[[], None]
    ) -> None:
        """Fetch URIs in a worker thread, then continue on the loop (or fail the task)."""

        async def run() -> None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, fetch_uris, sandbox, uris)
            except FetchError as exc:
                sandbox.append_stderr(str(exc))
                self.gpus.release(task.container_id)
                self._agent_update(
                    task.framework_id,
                    task,
                    "TASK_FAILED",
                    "Failed to launch container: Failed to fetch all URIs for container "
                    f"'{task.container_id}': {exc}",
                    "REASON_CONTAINER_LAUNCH_FAILED",
                )
                return
            if task.state == "TASK_STAGING":
                then()

        self.loop.spawn_callback(run)

    # ---------------------------------------------------------------- custom executors

    def _launch_on_executor(
        self,
        framework_id: str,
        executor_info: dict[str, Any],
        kind: str,
        payload: dict[str, Any],
        task_infos: list[dict[str, Any]],
    ) -> None:
        executor_id = str(executor_info["executor_id"]["value"])
        executor = self.executors.get((framework_id, executor_id))
        tasks = []
        for info in task_infos:
            container = executor.container_id if executor else ""
            task = _Task(framework_id, info, container, executor_id)
            self.tasks[(framework_id, task.task_id)] = task
            tasks.append(task)
        if executor is not None and executor.state in ("TERMINATING", "TERMINATED"):
            framework = self.frameworks.get(framework_id, {})
            state = "TASK_DROPPED" if _has_capability(framework, "PARTITION_AWARE") else "TASK_LOST"
            for task in tasks:
                self._agent_update(
                    framework_id, task, state, "Executor terminating", "REASON_EXECUTOR_TERMINATED"
                )
            return
        if executor is None:
            self._spawn_executor(framework_id, executor_info, tasks, (kind, payload))
            return
        else:
            for task in tasks:
                task.container_id = executor.container_id
                try:
                    self.gpus.allocate(
                        f"{executor.container_id}/{task.task_id}",
                        scalar_resource(task.info.get("resources", []), "gpus"),
                    )
                except GpuAllocationError as exc:
                    self._fail_unlaunched(
                        framework_id,
                        tasks,
                        f"Failed to update container: {exc}",
                        "REASON_CONTAINER_UPDATE_FAILED",
                    )
                    return
        for task in tasks:
            executor.tasks[task.task_id] = task
        executor.queued.append((kind, payload))
        if executor.stream is not None:
            self._flush_queue(executor, set())

    def _spawn_executor(
        self, framework_id: str, info: dict[str, Any], tasks: list[_Task], queued: tuple[str, dict[str, Any]]
    ) -> _Executor | None:
        info.setdefault("framework_id", {"value": framework_id})
        executor_id = str(info["executor_id"]["value"])
        container_id = str(uuid.uuid4())
        for task in tasks:
            task.container_id = container_id
        try:
            sandbox = create_sandbox(self.root, framework_id, executor_id, container_id)
        except (OSError, ValueError) as exc:
            self._fail_unlaunched(
                framework_id, tasks, f"Failed to create sandbox: {exc}", "REASON_CONTAINER_LAUNCH_FAILED"
            )
            return None
        self.files.attach(sandbox)
        gpus: list[int] = []
        try:
            gpus += self.gpus.allocate(container_id, scalar_resource(info.get("resources", []), "gpus"))
            for task in tasks:
                gpus += self.gpus.allocate(
                    f"{container_id}/{task.task_id}", scalar_resource(task.info.get("resources", []), "gpus")
                )
        except GpuAllocationError as exc:
            self._release_container_gpus(container_id)
            self._fail_unlaunched(
                framework_id, tasks, f"Failed to launch container: {exc}", "REASON_CONTAINER_LAUNCH_FAILED"
            )
            return None
        executor = _Executor(framework_id, info, container_id, sandbox)
        executor.tasks = {task.task_id: task for task in tasks}
        executor.queued.append(queued)
        self.executors[(framework_id, executor_id)] = executor
        command = info.get("command", {})
        env = self._base_env(framework_id, executor_id, sandbox)
        env.update(self._executor_env(framework_id, info))
        spec, runner, _ = self._launch_spec(info, sorted(gpus), sandbox, env, name=f"mesos-{container_id}")

        def launch() -> None:
            try:
                executor.process = runner.start(spec, lambda status: self._executor_exited(executor, status))
            except Exception as exc:
                log.warning("executor %s failed to launch: %s", executor_id, exc)
                executor.sandbox.append_stderr(f"Failed to launch executor: {exc}")
                executor.pending_termination = (
                    "TASK_FAILED",
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    f"Failed to launch container: {exc}",
                )
                self._executor_exited(executor, -1)
                return
            executor.registration_timer = self.loop.call_later(
                self.config.executor_registration_timeout, self._registration_timeout, executor
            )

        uris = list(command.get("uris", []))
        if uris:
            placeholder = _Task(framework_id, {"task_id": {"value": executor_id}}, container_id, executor_id)
            self._fetch_executor_then(executor, uris, placeholder, launch)
        else:
            launch()
        return executor

    def _fetch_executor_then(
        self, executor: _Executor, uris: list[dict[str, Any]], _placeholder: _Task, then: Callable[[], None]
    ) -> None:
        async def run() -> None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, fetch_uris, executor.sandbox, uris)
            except FetchError as exc:
                executor.sandbox.append_stderr(str(exc))
                executor.pending_termination = (
                    "TASK_FAILED",
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    f"Failed to launch container: Failed to fetch all URIs for container "
                    f"'{executor.container_id}': {exc}",
                )
                self._executor_exited(executor, -1)
                return
            if executor.state == "REGISTERING":
                then()

        self.loop.spawn_callback(run)

    def _executor_env(self, framework_id: str, info: dict[str, Any]) -> dict[str, str]:
        framework = self.frameworks.get(framework_id, {})
        grace = grace_period_seconds(
            {"grace_period": info["shutdown_grace_period"]} if "shutdown_grace_period" in info else None,
            self.config.executor_shutdown_grace_period,
        )
        env = {"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": format_duration(grace)}
        if framework.get("checkpoint"):
            env["MESOS_RECOVERY_TIMEOUT"] = format_duration(self.config.recovery_timeout)
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = format_duration(self.config.subscription_backoff_max)
        return env

    def _base_env(self, framework_id: str, executor_id: str, sandbox: Sandbox) -> dict[str, str]:
        """The agent's environment (Mesos executors inherit it) plus what a real agent sets."""
        framework = self.frameworks.get(framework_id, {})
        env = dict(os.environ)
        for name in ("MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX", "MESOS_LOCAL"):
            env.pop(name, None)
        env.update(
            {
                "MESOS_AGENT_ENDPOINT": f"{self.config.host}:{self.port}",
                "MESOS_FRAMEWORK_ID": framework_id,
                "MESOS_EXECUTOR_ID": executor_id,
                "MESOS_DIRECTORY": str(sandbox.directory),
                "MESOS_SANDBOX": str(sandbox.directory),
                "MESOS_SLAVE_ID": self.agent_id,
                "MESOS_SLAVE_PID": self.pid(),
                "MESOS_CHECKPOINT": "1" if framework.get("checkpoint") else "0",
                "MESOS_HTTP_COMMAND_EXECUTOR": "0",
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": format_duration(
                    self.config.executor_shutdown_grace_period
                ),
                "LIBPROCESS_PORT": "0",
            }
        )
        return env

    def _registration_timeout(self, executor: _Executor) -> None:
        executor.registration_timer = None
        if executor.state != "REGISTERING":
            return
        timeout = format_duration(self.config.executor_registration_timeout)
        log.warning("executor %s did not register within %s: destroying it", executor.executor_id, timeout)
        executor.pending_termination = (
            "TASK_FAILED",
            "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
            f"Executor did not register within {timeout}",
        )
        executor.state = "TERMINATING"
        if executor.process is not None:
            executor.process.signal(signal.SIGKILL)

    def _terminate_executor(self, executor: _Executor) -> None:
        """SHUTDOWN to the executor, SIGKILL to its group after its grace period (at once if it never
        subscribed)."""
        if executor.state in ("TERMINATING", "TERMINATED"):
            return
        subscribed = executor.stream is not None
        executor.state = "TERMINATING"
        if executor.default:
            active = [t for t in executor.tasks.values() if t.command is not None and not t.command.terminal]
            for task in active:
                assert task.command is not None
                task.command.kill(None)
            if not active:
                self._executor_exited(executor, 0)
            return
        if executor.registration_timer is not None:
            self.loop.remove_timeout(executor.registration_timer)
            executor.registration_timer = None
        if subscribed:
            self._send_event(executor, {"type": "SHUTDOWN"})
            grace = grace_period_seconds(
                {"grace_period": executor.info["shutdown_grace_period"]}
                if "shutdown_grace_period" in executor.info
                else None,
                self.config.executor_shutdown_grace_period,
            )
            executor.shutdown_timer = self.loop.call_later(grace, self._kill_executor, executor)
        else:
            self._kill_executor(executor)

    def _kill_executor(self, executor: _Executor) -> None:
        executor.shutdown_timer = None
        if executor.process is not None and not executor.process.exited:
            executor.process.signal(signal.SIGKILL)
        elif executor.process is None and executor.state != "TERMINATED":
            self._executor_exited(executor, -1)  # never launched (still fetching)

    def _executor_exited(self, executor: _Executor, wait_status: int) -> None:
        if executor.state == "TERMINATED":
            return
        executor.state = "TERMINATED"
        self._cancel_executor_timers(executor)
        if executor.stream is not None:
            executor.stream.close()
            executor.stream = None
        state, reason, message = executor.pending_termination or (
            "TASK_FAILED",
            "REASON_EXECUTOR_TERMINATED",
            "Executor terminated",
        )
        for task in list(executor.tasks.values()):
            if task.state not in TERMINAL_STATES:
                self._agent_update(executor.framework_id, task, state, message, reason)
        self._release_container_gpus(executor.container_id)
        self.executors.pop((executor.framework_id, executor.executor_id), None)
        self.completed_executors.append(executor)
        del self.completed_executors[:-100]
        if self.master is not None and executor.framework_id not in self.removed_frameworks:
            try:
                self.master.executor_exited(
                    self.agent_id, executor.framework_id, executor.executor_id, wait_status
                )
            except Exception:
                log.exception("master.executor_exited failed")

    def _cancel_executor_timers(self, executor: _Executor) -> None:
        for name in ("registration_timer", "shutdown_timer", "heartbeat_timer"):
            timer = getattr(executor, name)
            if timer is not None and self._loop is not None:
                self._loop.remove_timeout(timer)
            setattr(executor, name, None)

    def _release_container_gpus(self, container_id: str) -> None:
        for holder in list(self.gpus.holders()):
            if holder == container_id or holder.startswith(container_id + "/"):
                self.gpus.release(holder)

    def _fail_unlaunched(self, framework_id: str, tasks: list[_Task], message: str, reason: str) -> None:
        for task in tasks:
            self._agent_update(framework_id, task, "TASK_FAILED", message, reason)

    @staticmethod
    def _without_task(queued: tuple[str, dict[str, Any]], task_id: str) -> tuple[str, dict[str, Any] | None]:
        kind, info = queued
        if kind == "task":
            return kind, (None if info["task_id"]["value"] == task_id else info)
        remaining = [t for t in info.get("tasks", []) if t["task_id"]["value"] != task_id]
        return kind, ({**info, "tasks": remaining} if remaining else None)

    # ---------------------------------------------------------------- executor API (called by handlers)

    def executor_subscribe(self, executor: _Executor, stream: _ExecutorStream, call: dict[str, Any]) -> None:
        if executor.stream is not None and executor.stream is not stream:
            executor.stream.close()
        executor.stream = stream
        stream.on_close = lambda: self._executor_disconnected(executor, stream)
        if (
            executor.state in ("TERMINATING", "TERMINATED")
            or executor.framework_id in self.removed_frameworks
        ):
            stream.send({"type": "SHUTDOWN"})
            stream.close()
            return
        executor.state = "RUNNING"
        if executor.registration_timer is not None:
            self.loop.remove_timeout(executor.registration_timer)
            executor.registration_timer = None
        subscribe = call.get("subscribe", {})
        framework = self.frameworks.get(executor.framework_id, {"id": {"value": executor.framework_id}})
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "executor_info": executor.info,
                    "framework_info": framework,
                    "agent_info": self.agent_info(),
                    "container_id": {"value": executor.container_id},
                },
            }
        )
        unacknowledged = {
            str(t.get("task_id", {}).get("value")) for t in subscribe.get("unacknowledged_tasks", [])
        }
        self._flush_queue(executor, unacknowledged)
        for update in subscribe.get("unacknowledged_updates", []):
            status = update.get("status") if isinstance(update, dict) else None
            if isinstance(status, dict) and "uuid" in status:
                self.executor_update(executor, status)
        self._arm_heartbeat(executor)

    def executor_update(self, executor: _Executor, status: dict[str, Any]) -> None:
        """A validated executor UPDATE: record it, forward it to the master, ACKNOWLEDGE it."""
        status = dict(status)
        uuid_b64 = str(status["uuid"])
        task_id = str(status["task_id"]["value"])
        if uuid_b64 not in executor.recorded_uuids:
            executor.recorded_uuids.add(uuid_b64)
            status["agent_id"] = {"value": self.agent_id}
            status["executor_id"] = {"value": executor.executor_id}
            status.setdefault("timestamp", time.time())
            container_status = dict(status.get("container_status", {}))
            container_status.setdefault("container_id", {"value": executor.container_id})
            status["container_status"] = container_status
            self._record_update(executor.framework_id, status)
        ack = {"type": "ACKNOWLEDGED", "acknowledged": {"task_id": {"value": task_id}, "uuid": uuid_b64}}
        self.loop.add_callback(self._send_event, executor, ack)

    def executor_message_from(self, executor: _Executor, data_b64: str) -> None:
        if self.master is not None and executor.framework_id not in self.removed_frameworks:
            self.master.executor_message(self.agent_id, executor.framework_id, executor.executor_id, data_b64)

    def find_executor(self, framework_id: str, executor_id: str) -> _Executor | None:
        return self.executors.get((framework_id, executor_id))

    def _executor_disconnected(self, executor: _Executor, stream: _ExecutorStream) -> None:
        if executor.stream is stream:
            executor.stream = None
            if executor.heartbeat_timer is not None:
                self.loop.remove_timeout(executor.heartbeat_timer)
                executor.heartbeat_timer = None

    def _flush_queue(self, executor: _Executor, unacknowledged: set[str]) -> None:
        queued, executor.queued = executor.queued, []
        for kind, info in queued:
            if kind == "task":
                task_id = str(info["task_id"]["value"])
                self._mark_delivered(executor, [task_id])
                if task_id not in unacknowledged:
                    self._send_event(executor, {"type": "LAUNCH", "launch": {"task": info}})
            else:
                tasks = [t for t in info.get("tasks", []) if str(t["task_id"]["value"]) not in unacknowledged]
                self._mark_delivered(executor, [str(t["task_id"]["value"]) for t in info.get("tasks", [])])
                if tasks:
                    group = {**info, "tasks": tasks}
                    self._send_event(
                        executor, {"type": "LAUNCH_GROUP", "launch_group": {"task_group": group}}
                    )

    def _mark_delivered(self, executor: _Executor, task_ids: list[str]) -> None:
        for task_id in task_ids:
            task = executor.tasks.get(task_id)
            if task is not None:
                task.delivered = True

    def _send_event(self, executor: _Executor, event: dict[str, Any]) -> None:
        if executor.stream is not None:
            executor.stream.send(event)

    def _arm_heartbeat(self, executor: _Executor) -> None:
        if executor.heartbeat_timer is not None:
            self.loop.remove_timeout(executor.heartbeat_timer)

        def beat() -> None:
            executor.heartbeat_timer = None
            if executor.stream is not None and executor.state == "RUNNING":
                executor.stream.send({"type": "HEARTBEAT"})
                self._arm_heartbeat(executor)

        executor.heartbeat_timer = self.loop.call_later(self.config.executor_heartbeat_interval, beat)

    # ---------------------------------------------------------------- status updates

    def _new_status(
        self, task: _Task, state: str, source: str, message: str | None, reason: str | None
    ) -> dict[str, Any]:
        status: dict[str, Any] = {
            "task_id": {"value": task.task_id},
            "state": state,
            "source": source,
            "agent_id": {"value": self.agent_id},
            "timestamp": time.time(),
            "uuid": new_uuid_b64(),
            "container_status": {
                "container_id": {"value": task.container_id},
                "network_infos": [{"ip_addresses": [{"ip_address": self.config.host}]}],
            },
        }
        if task.executor_id is not None:
            status["executor_id"] = {"value": task.executor_id}
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        return status

    def _agent_update(self, framework_id: str, task: _Task, state: str, message: str, reason: str) -> None:
        self._record_update(framework_id, self._new_status(task, state, "SOURCE_AGENT", message, reason))

    def _record_update(self, framework_id: str, status: dict[str, Any]) -> None:
        task_id = str(status["task_id"]["value"])
        task = self.tasks.get((framework_id, task_id))
        state = str(status.get("state"))
        if task is not None:
            if task.state not in TERMINAL_STATES:
                task.state = state
            if state in TERMINAL_STATES and task.executor_id is not None:
                self.gpus.release(f"{task.container_id}/{task_id}")
        else:
            log.warning("status update %s for unknown task %s/%s", state, framework_id, task_id)
        if self._stopped:
            return
        if framework_id in self.removed_frameworks:
            if task is not None and state in TERMINAL_STATES:
                self._forget_task(task)
            return
        self.streams.update(framework_id, status)

    def _send_update(self, framework_id: str, status: dict[str, Any]) -> None:
        if self.master is not None:
            self.master.status_update(self.agent_id, framework_id, status)

    def _forget_task(self, task: _Task) -> None:
        self.tasks.pop((task.framework_id, task.task_id), None)

    # ---------------------------------------------------------------- images and runners

    def _launch_spec(
        self,
        info: dict[str, Any],
        gpus: list[int],
        sandbox: Sandbox,
        env: dict[str, str],
        *,
        name: str,
        task_id: str | None = None,
    ) -> tuple[LaunchSpec, Runner, list[str]]:
        """How to start a task's or executor's process (`info` is its TaskInfo or ExecutorInfo): its
        command, `env` plus the GPU and command environment, the runner (host or Docker) and the
        warnings for its status. A task's own cpus/mem limits apply to its container."""
        command = info.get("command", {})
        argv, executable = command_argv(command)
        env.update(visible_devices_env(gpus, real=not self.gpus.simulated))
        env.update(command_environment(command))
        image, warnings = self._image_and_warnings(info.get("container"), gpus)
        runner, warnings = self._choose_runner(image, warnings, sandbox)
        resources = info.get("resources", []) if task_id is not None else []
        spec = LaunchSpec(
            argv=argv,
            executable=executable,
            env=env,
            cwd=sandbox.directory,
            stdout=sandbox.stdout,
            stderr=sandbox.stderr,
            image=image if runner is not self._runner else None,
            gpus=gpus,
            name=name,
            task_id=task_id,
            cpus=scalar_resource(resources, "cpus") or None,
            mem_mb=scalar_resource(resources, "mem") or None,
        )
        return spec, runner, warnings

    def _image_and_warnings(
        self, container: dict[str, Any] | None, gpus: list[int]
    ) -> tuple[str | None, list[str]]:
        """The Docker image a ContainerInfo names (MESOS+mesos.image.docker.name or DOCKER+docker.image)."""
        warnings: list[str] = []
        if not container:
            return None, warnings
        image: str | None = None
        if container.get("type") == "DOCKER":
            image = container.get("docker", {}).get("image")
            if gpus:
                warnings.append(
                    "GPU task in a DOCKER container: real Mesos isolates GPUs only in the Mesos "
                    "containerizer (use type MESOS with mesos.image)"
                )
        elif container.get("type") == "MESOS":
            mesos_image = container.get("mesos", {}).get("image", {})
            if mesos_image.get("type") == "DOCKER":
                image = mesos_image.get("docker", {}).get("name")
        return image, warnings

    def _choose_runner(
        self, image: str | None, warnings: list[str], sandbox: Sandbox
    ) -> tuple[Runner, list[str]]:
        assert self._runner is not None
        if image is None:
            return self._runner, warnings
        docker = self._docker()
        if docker is not None:
            return docker, warnings
        warning = (
            f"Docker image '{image}' was NOT used: no Docker engine is reachable; "
            + "the command runs on the host"
        )
        sandbox.append_stderr(f"WARNING: {warning}")
        for text in warnings:
            sandbox.append_stderr(f"WARNING: {text}")
        return self._runner, [warning, *warnings]

    def _docker(self) -> Runner | None:
        if not self._docker_checked:
            self._docker_checked = True
            try:
                from mesos_gpu.local.runners import docker_runner

                self._docker_runner = docker_runner(self.loop, self.config.docker_host)
            except Exception as exc:
                log.info("no Docker engine for image tasks: %s", exc)
                self._docker_runner = None
        return self._docker_runner

    # ---------------------------------------------------------------- HTTP

    def _application(self) -> web.Application:
        return web.Application(
            [
                (r"/api/v1/executor", ExecutorApiHandler, {"agent": self}),
                (r"/files/read(?:\.json)?", FilesReadHandler, {"agent": self}),
                (r"/version", VersionHandler),
                (r"/state(?:\.json)?", StateHandler, {"agent": self}),
            ],
            compress_response=False,
        )

    def state(self) -> dict[str, Any]:
        """GET /state: this agent's resources, frameworks, executors and tasks (Mesos' shape, trimmed)."""
        frameworks: dict[str, dict[str, Any]] = {}

        def framework_entry(framework_id: str) -> dict[str, Any]:
            if framework_id not in frameworks:
                info = self.frameworks.get(framework_id, {})
                frameworks[framework_id] = {
                    "id": framework_id,
                    "name": info.get("name", ""),
                    "executors": [],
                }
            return frameworks[framework_id]

        for executor in self.executors.values():
            framework_entry(executor.framework_id)["executors"].append(
                {
                    "id": executor.executor_id,
                    "container": executor.container_id,
                    "directory": str(executor.sandbox.directory),
                    "state": executor.state,
                    "resources": executor.info.get("resources", []),
                    "gpus": self.gpus.held(executor.container_id),
                    "tasks": [self._task_state(t) for t in executor.tasks.values()],
                }
            )
        for task in self.tasks.values():
            if task.command is not None and task.executor_id is None:
                framework_entry(task.framework_id)["executors"].append(
                    {
                        "id": task.task_id,
                        "container": task.container_id,
                        "directory": str(task.command.spec.cwd),
                        "state": "TERMINATED" if task.state in TERMINAL_STATES else "RUNNING",
                        "resources": task.info.get("resources", []),
                        "gpus": self.gpus.held(task.container_id),
                        "tasks": [self._task_state(task)],
                    }
                )
        return {
            "id": self.agent_id,
            "pid": self.pid(),
            "hostname": self.hostname,
            "version": MESOS_VERSION,
            "resources": self.resources(),
            "attributes": self.attributes(),
            "gpus": [
                {"index": d.index, "uuid": d.uuid, "model": d.model, "simulated": d.simulated}
                for d in self.gpus.devices
            ],
            "frameworks": list(frameworks.values()),
        }

    @staticmethod
    def _task_state(task: _Task) -> dict[str, Any]:
        return {
            "id": task.task_id,
            "name": task.info.get("name", ""),
            "framework_id": task.framework_id,
            "executor_id": task.executor_id or "",
            "state": task.state,
            "resources": task.info.get("resources", []),
        }


def _has_capability(framework: dict[str, Any], name: str) -> bool:
    return any(c.get("type") == name for c in framework.get("capabilities", []))


# -------------------------------------------------------------------- HTTP handlers


class _ExecutorStream:
    """The executor's SUBSCRIBE response: a chunked RecordIO event stream."""

    def __init__(self, handler: web.RequestHandler) -> None:
        self._handler = handler
        self.closed = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_close: Callable[[], None] | None = None

    def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        self._handler.write(encode_record(event))
        self._handler.flush()

    def close(self) -> None:
        """End the stream (the chunked body's last chunk)."""
        if self.closed:
            return
        self._mark_closed()
        with contextlib.suppress(Exception):  # the connection may already be gone
            self._handler.finish()

    def connection_lost(self) -> None:
        if not self.closed:
            self._mark_closed()

    def _mark_closed(self) -> None:
        self.closed = True
        if not self.done.done():
            self.done.set_result(None)
        if self.on_close is not None:
            callback, self.on_close = self.on_close, None
            callback()


class _AgentHandler(web.RequestHandler):
    def initialize(self, agent: Agent) -> None:
        self.agent = agent

    def reply(self, status: int, text: str = "", content_type: str = "text/plain; charset=utf-8") -> None:
        self.set_status(status)
        if text:
            self.set_header("Content-Type", content_type)
            self.write(text)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish()


class ExecutorApiHandler(_AgentHandler):
    """POST /api/v1/executor, with Mesos' status codes and texts (src/slave/http.cpp)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")
    _stream: _ExecutorStream | None = None

    async def prepare(self) -> None:
        if self.request.method != "POST":
            self.set_header("Allow", "POST")
            self.reply(405, f"Expecting one of {{ 'POST' }}, but received '{self.request.method}'")

    def get(self) -> None:  # pragma: no cover - prepare() answered
        pass

    head = delete = patch = put = options = get

    async def post(self) -> None:
        content_type = self.request.headers.get("Content-Type")
        if content_type is None:
            return self.reply(400, "Expecting 'Content-Type' to be present")
        if content_type == PROTOBUF_TYPE:
            return self.reply(415, "Protobuf request bodies are not supported by the local agent")
        if content_type != JSON_TYPE:
            return self.reply(415, f"Expecting 'Content-Type' of {JSON_TYPE} or {PROTOBUF_TYPE}")
        try:
            call = json.loads(self.request.body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            return self.reply(400, f"Failed to parse body into JSON: {exc}")
        problem = convert_executor_call(call)
        if problem is not None:
            return self.reply(400, f"Failed to convert JSON into Call protobuf: {problem}")
        problem = validate_executor_call(call)
        if problem is not None:
            return self.reply(400, f"Failed to validate Executor::Call: {problem}")
        call_type = call["type"]
        if call_type == "SUBSCRIBE" and not _accepts_json(self.request.headers.get("Accept")):
            return self.reply(406, f"Expecting 'Accept' to allow '{PROTOBUF_TYPE}' or '{JSON_TYPE}'")
        if call_type == "HEARTBEAT":
            return self.reply(202)
        framework_id = call["framework_id"]["value"]
        if framework_id not in self.agent.frameworks:
            return self.reply(400, "Framework cannot be found")
        executor = self.agent.find_executor(framework_id, call["executor_id"]["value"])
        if executor is None:
            return self.reply(400, "Executor cannot be found")
        if call_type != "SUBSCRIBE" and executor.state == "REGISTERING":
            return self.reply(403, "Executor is not subscribed")
        if call_type == "SUBSCRIBE":
            self.set_status(200)
            self.set_header("Content-Type", JSON_TYPE)
            self._stream = _ExecutorStream(self)
            self.agent.executor_subscribe(executor, self._stream, call)
            await self._stream.done
            return None
        if call_type == "UPDATE":
            self.reply(202)
            self.agent.executor_update(executor, call["update"]["status"])
            return None
        if call_type == "MESSAGE":
            self.reply(202)
            self.agent.executor_message_from(executor, call["message"]["data"])
            return None
        return self.reply(501 if call_type == "UNKNOWN" else 400, f"Unsupported call type {call_type}")

    def on_connection_close(self) -> None:
        if self._stream is not None:
            self._stream.connection_lost()


class FilesReadHandler(_AgentHandler):
    """GET /files/read?path=&offset=&length= for sandbox files, as Mesos' FilesProcess serves it."""

    def get(self) -> None:
        args = {k: self.get_query_argument(k, None) for k in ("path", "offset", "length")}
        try:
            body = self.agent.files.read(args["path"], args["offset"], args["length"])
        except FileReadError as exc:
            return self.reply(exc.status, exc.text)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(body))


class VersionHandler(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(
            json.dumps(
                {
                    "version": MESOS_VERSION,
                    "build_date": "",
                    "build_time": 0,
                    "build_user": "mesos-gpu",
                    "git_sha": "",
                }
            )
        )


class StateHandler(_AgentHandler):
    def get(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(self.agent.state()))


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in (JSON_TYPE, PROTOBUF_TYPE, "*/*", "application/*"):
            q = [p.strip() for p in part.split(";")[1:] if p.strip().startswith("q=")]
            if not q or float(q[0][2:] or 0) > 0:
                return True
    return False


def _is_id(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("value"), str)


EXECUTOR_CALL_TYPES = ("UNKNOWN", "SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT")


def convert_executor_call(call: object) -> str | None:
    """The JSON -> executor::Call conversion errors Mesos reports (stout protobuf parse), trimmed."""
    if not isinstance(call, dict):
        return "Expecting a JSON object"
    missing = [name for name in ("executor_id", "framework_id") if name not in call]
    for name in ("executor_id", "framework_id"):
        if name in call and not _is_id(call[name]):
            if not isinstance(call[name], dict):
                return f"Not expecting a JSON {_json_kind(call[name])} for field '{name}'"
            missing.append(f"{name}.value")
    if "type" in call and not isinstance(call["type"], str):
        return f"Not expecting a JSON {_json_kind(call['type'])} for field 'type'"
    update = call.get("update")
    if update is not None:
        if not isinstance(update, dict):
            return f"Not expecting a JSON {_json_kind(update)} for field 'update'"
        status = update.get("status")
        if not isinstance(status, dict):
            missing.append("update.status")
        else:
            if not _is_id(status.get("task_id")):
                missing.append("update.status.task_id")
            if not isinstance(status.get("state"), str):
                missing.append("update.status.state")
            if "uuid" in status and not _is_b64(status["uuid"]):
                return "Failed to base64 decode bytes field 'uuid'"
    message = call.get("message")
    if message is not None:
        if not isinstance(message, dict):
            return f"Not expecting a JSON {_json_kind(message)} for field 'message'"
        if "data" not in message:
            missing.append("message.data")
        elif not _is_b64(message["data"]):
            return "Failed to base64 decode bytes field 'data'"
    subscribe = call.get("subscribe")
    if subscribe is not None and not isinstance(subscribe, dict):
        return f"Not expecting a JSON {_json_kind(subscribe)} for field 'subscribe'"
    if missing:
        return "Missing required fields: " + ", ".join(missing)
    return None


def validate_executor_call(call: dict[str, Any]) -> str | None:
    """src/common/validation.cpp executor::call::validate."""
    call_type = call.get("type")
    if call_type not in EXECUTOR_CALL_TYPES:
        return "Expecting 'type' to be present"  # an unknown enum name of an optional field is dropped
    executor_id = call["executor_id"]["value"]
    framework_id = call["framework_id"]["value"]
    if call_type == "SUBSCRIBE" and "subscribe" not in call:
        return "Expecting 'subscribe' to be present"
    if call_type == "UPDATE":
        if "update" not in call:
            return "Expecting 'update' to be present"
        status = call["update"]["status"]
        if "uuid" not in status:
            return "Expecting 'uuid' to be present"
        raw = base64.b64decode(status["uuid"])
        if len(raw) != 16 or not 1 <= (raw[6] >> 4) <= 5:
            return "Not a valid UUID"
        if "executor_id" in status and status["executor_id"].get("value") != executor_id:
            return (
                f"ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: "
                f"{status['executor_id'].get('value')}"
            )
        if status.get("source") != "SOURCE_EXECUTOR":
            return (
                f"Received Call from executor {executor_id} of framework {framework_id} with invalid source, "
                "expecting 'SOURCE_EXECUTOR'"
            )
        if status.get("state") == "TASK_STAGING":
            return (
                f"Received TASK_STAGING from executor {executor_id} of framework {framework_id} "
                "which is not allowed"
            )
    if call_type == "MESSAGE" and "message" not in call:
        return "Expecting 'message' to be present"
    return None


def _is_b64(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"
