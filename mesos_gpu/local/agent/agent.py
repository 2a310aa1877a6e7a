"""A local Mesos agent: runs tasks and executors for the local master, and serves the agent HTTP API.

`Agent` implements AgentLink (notes: local-interface) and holds the agent's state (frameworks, tasks,
executors, GPU slots, status update streams); the parts follow Mesos' own seams:

| module | what it does |
| --- | --- |
| `task_launch` | command tasks and DEFAULT-executor task groups (runTask / runTaskGroup) |
| `records` | the task and executor records, the executor's event stream |
| `executors` | a custom executor's launch, calls (SUBSCRIBE, UPDATE, MESSAGE), shutdown and reaping |
| `containerizer` | a process's LaunchSpec, runner (host or Docker) and URI fetch |
| `executor_api` | `POST /api/v1/executor` (decode by content type, then hand to the lifecycle) |
| `validation` | the executor Call's conversion and validation texts (pure) |
| `http` | the routes, `GET /state`, `/files/read`, `/version` |

Everything runs on one tornado IOLoop thread; child processes are reaped by watcher threads that hand
results back with add_callback.

`running()` returns two kinds of entries, told apart by their keys:
- tasks: `{"framework_id": F, "task": TaskInfo, "state": "TASK_RUNNING", "executor_id": E or None}` for
  every task that is not terminal or whose terminal update is not acknowledged yet (executor_id is None
  for command tasks: their built-in executor has no resources of its own here);
- executors: `{"framework_id": F, "executor": ExecutorInfo, "tasks": [task ids]}` for every custom
  executor still running (its resources count until `executor_exited`).
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tornado import httpserver, netutil
from tornado.ioloop import IOLoop

from mesos_gpu.core.wire import TERMINAL_TASK_STATES, format_duration
from mesos_gpu.local.agent.containerizer import Containerizer
from mesos_gpu.local.agent.executors import ExecutorLifecycle
from mesos_gpu.local.agent.gpus import (
    DEFAULT_GPU_MEMORY_MB,
    SIMULATED_GPU_MODEL,
    GpuDevice,
    GpuSharing,
    GpuSlots,
    check_attributes,
    fake_nvml_env,
    nvml_devices,
    simulated_devices,
)
from mesos_gpu.local.agent.http import agent_application, agent_state
from mesos_gpu.local.agent.records import Executor, Task
from mesos_gpu.local.agent.runners import HostRunner, Runner
from mesos_gpu.local.agent.sandbox import Sandbox, SandboxFiles
from mesos_gpu.local.agent.status_updates import StatusUpdateStreams
from mesos_gpu.local.agent.task_launch import TaskLauncher

__all__ = ["Agent", "AgentConfig", "MasterLink"]

log = logging.getLogger(__name__)


class MasterLink(Protocol):
    """What the agent calls on the master (implemented by mesos_gpu.local.master.master.Master)."""

    def register_agent(self, agent: Any) -> None: ...

    def unregister_agent(self, agent_id: str) -> None: ...

    def status_update(self, agent_id: str, framework_id: str, status: dict[str, Any]) -> None: ...

    def executor_message(self, agent_id: str, framework_id: str, executor_id: str, data_b64: str) -> None: ...

    def executor_exited(
        self, agent_id: str, framework_id: str, executor_id: str, wait_status: int
    ) -> None: ...


def new_uuid_b64() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode("ascii")


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
    gpu_memory: int = DEFAULT_GPU_MEMORY_MB  # MB of each simulated GPU (real GPUs: what NVML says)
    gpu_mig: str = ""  # MIG layout of every GPU, e.g. "3g.40gb/2g.20gb/1g.10gb" ("" none)
    gpu_mps: bool = False  # the GPUs can run a CUDA MPS daemon (attribute gpu_mps:true)
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
    # Where REFERENCE secrets are read from (one file per secret name: `local.agent.mounts`); default:
    # MESOS_GPU_SECRETS_DIR when set, else none (a task using such a secret then fails).
    secrets_dir: str | None = field(default_factory=lambda: os.environ.get("MESOS_GPU_SECRETS_DIR") or None)


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
        self.sharing = GpuSharing(self.config.gpu_memory, self.config.gpu_mig, self.config.gpu_mps)
        if gpu_devices is not None:  # injected (e.g. discovered through isolator.fakenvml in tests)
            devices = list(gpu_devices)
        elif self.config.gpus is None:
            devices = nvml_devices()
        else:
            devices = simulated_devices(  # seeded by the agent id: UUIDs unique across agents
                self.config.gpus, self.config.gpu_model, self.config.gpu_memory, seed=agent_id
            )
        self.gpus = GpuSlots(devices)
        check_attributes(self.attribute_values())
        self._runner = runner
        self._docker_runner = docker_runner
        self._containerizer: Containerizer | None = None
        self._loop: IOLoop | None = None
        self._server: httpserver.HTTPServer | None = None
        self._streams: StatusUpdateStreams | None = None
        self.frameworks: dict[str, dict[str, Any]] = {}
        self.removed_frameworks: set[str] = set()
        self.tasks: dict[tuple[str, str], Task] = {}
        self.executors: dict[tuple[str, str], Executor] = {}
        self.completed_executors: list[Executor] = []
        self.lifecycle = ExecutorLifecycle(self)
        self.launcher = TaskLauncher(self, self.lifecycle)
        self._stopped = False

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind the HTTP server and register with the master. On the loop thread."""
        self._loop = IOLoop.current()
        self.root.mkdir(parents=True, exist_ok=True)
        if self.gpus.total and self.gpus.simulated:
            (self.root / "fake-nvml").mkdir(exist_ok=True)
        self._containerizer = Containerizer(
            self._loop,
            self._runner or HostRunner(self._loop),
            self._docker_runner,
            docker=self.config.docker,
            docker_host=self.config.docker_host,
            real_gpus=not self.gpus.simulated,
            gpu_env=fake_nvml_env(self.gpus.devices, self.sharing, self.root / "fake-nvml"),
        )
        self._streams = StatusUpdateStreams(
            self._send_update,
            self._loop,
            initial_interval=self.config.status_update_retry,
            max_interval=self.config.status_update_retry_max,
        )
        self._streams.set_paused(self.master is None)
        sockets = netutil.bind_sockets(self.config.port, address=self.config.host, family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self._server = httpserver.HTTPServer(agent_application(self))
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
        self.lifecycle.stop()
        if self._streams is not None:
            self._streams.close()
        if self._server is not None:
            self._server.stop()
        if self._containerizer is not None:
            self._containerizer.close()

    @property
    def streams(self) -> StatusUpdateStreams:
        assert self._streams is not None, "Agent.start() first"
        return self._streams

    @property
    def loop(self) -> IOLoop:
        assert self._loop is not None, "Agent.start() first"
        return self._loop

    @property
    def containerizer(self) -> Containerizer:
        assert self._containerizer is not None, "Agent.start() first"
        return self._containerizer

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

    def attribute_values(self) -> dict[str, str | float]:
        """The agent's attributes by name: its GPUs' model and sharing capabilities (core.sharing's
        names), then the configured ones (which win)."""
        attrs: dict[str, str | float] = {}
        if self.gpus.total and self.gpus.model:
            attrs["gpu_model"] = self.gpus.model
        attrs.update(self.sharing.attributes(self.gpus.devices))
        attrs.update(self.config.attributes)
        return attrs

    def attributes(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, value in self.attribute_values().items():
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
            if task.state not in TERMINAL_TASK_STATES or key in unacked:
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

    def state(self) -> dict[str, Any]:
        """GET /state's body (see `agent_http.agent_state`)."""
        return agent_state(self)

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
            self.launcher.launch_command_task(framework_id, task)
        elif task is not None:
            self.lifecycle.launch(framework_id, dict(task["executor"]), "task", task, [task])
        elif executor is not None and task_group is not None and executor.get("type") == "DEFAULT":
            self.launcher.launch_default_executor(framework_id, dict(executor), task_group)
        elif executor is not None and task_group is not None:
            self.lifecycle.launch(
                framework_id, dict(executor), "group", task_group, list(task_group["tasks"])
            )
        else:
            raise ValueError("launch needs a task, or an executor and a task group")

    def kill_task(self, framework_id: str, task_id: str, kill_policy: dict[str, Any] | None = None) -> None:
        task = self.tasks.get((framework_id, task_id))
        if task is None or task.state in TERMINAL_TASK_STATES:
            log.info("kill of unknown or finished task %s/%s ignored", framework_id, task_id)
            return
        if task.command is not None:
            task.command.kill(kill_policy)
            return
        self.lifecycle.kill_task(task, kill_policy)

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        self.lifecycle.shutdown(framework_id, executor_id)

    def shutdown_framework(self, framework_id: str) -> None:
        self.removed_frameworks.add(framework_id)
        self.streams.drop_framework(framework_id)
        for task in list(self.tasks.values()):
            if task.framework_id == framework_id and task.command is not None:
                task.command.kill(None)
        for executor in list(self.executors.values()):
            if executor.framework_id == framework_id:
                self.lifecycle.terminate(executor)

    def framework_message(self, framework_id: str, executor_id: str, data_b64: str) -> None:
        self.lifecycle.message_to(framework_id, executor_id, data_b64)

    def acknowledge(self, framework_id: str, task_id: str, uuid_b64: str) -> None:
        self.streams.acknowledge(framework_id, task_id, uuid_b64)
        task = self.tasks.get((framework_id, task_id))
        if (
            task is not None
            and task.state in TERMINAL_TASK_STATES
            and not self.streams.pending(framework_id, task_id)
        ):
            self._forget_task(task)

    def framework_updated(self, framework: dict[str, Any]) -> None:
        framework_id = str(framework["id"]["value"])
        if framework_id in self.frameworks:
            self.frameworks[framework_id] = framework

    # ---------------------------------------------------------------- what the parts share

    def has_capability(self, framework_id: str, name: str) -> bool:
        """Whether the framework's FrameworkInfo lists the capability `name` (e.g. PARTITION_AWARE)."""
        framework = self.frameworks.get(framework_id, {})
        return any(c.get("type") == name for c in framework.get("capabilities", []))

    def executor_environment(self, framework_id: str, executor_id: str, sandbox: Sandbox) -> dict[str, str]:
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

    # ---------------------------------------------------------------- status updates

    def new_status(
        self, task: Task, state: str, source: str, message: str | None, reason: str | None
    ) -> dict[str, Any]:
        """A TaskStatus for `task` from this agent, with a fresh uuid."""
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

    def agent_update(self, framework_id: str, task: Task, state: str, message: str, reason: str) -> None:
        """An update the agent itself sends (SOURCE_AGENT), e.g. a launch failure."""
        self.record_update(framework_id, self.new_status(task, state, "SOURCE_AGENT", message, reason))

    def record_update(self, framework_id: str, status: dict[str, Any]) -> None:
        """Note the task's new state (a terminal one frees an executor task's GPUs) and queue the update
        in its stream to the master (dropped for a removed framework)."""
        task_id = str(status["task_id"]["value"])
        task = self.tasks.get((framework_id, task_id))
        state = str(status.get("state"))
        if task is not None:
            if task.state not in TERMINAL_TASK_STATES:
                task.state = state
            if state in TERMINAL_TASK_STATES and task.executor_id is not None:
                self.gpus.release(f"{task.container_id}/{task_id}")
        else:
            log.warning("status update %s for unknown task %s/%s", state, framework_id, task_id)
        if self._stopped:
            return
        if framework_id in self.removed_frameworks:
            if task is not None and state in TERMINAL_TASK_STATES:
                self._forget_task(task)
            return
        self.streams.update(framework_id, status)

    def _send_update(self, framework_id: str, status: dict[str, Any]) -> None:
        if self.master is not None:
            self.master.status_update(self.agent_id, framework_id, status)

    def _forget_task(self, task: Task) -> None:
        self.tasks.pop((task.framework_id, task.task_id), None)
