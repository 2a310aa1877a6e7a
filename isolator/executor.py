"""The nvidia-docker executor (`python -m isolator.executor`): a pymesos custom executor that runs each
task's image through the Docker Engine on exactly the GPUs Mesos gave its container.

Per task (one container each): STARTING; decode the payload (base64 JSON `{"image", "command", "uris",
["network"]}` from TaskInfo.data, else ExecutorInfo.data); choose the GPUs (`isolator.devices`: devices
cgroup, then NVIDIA_/CUDA_VISIBLE_DEVICES, then the host's `ExclusiveGpuAllocator`); start the container
(GPU device request for exactly those devices, CPU and memory limits from the task's resources, the
sandbox mounted at /mnt/mesos/sandbox and used as working directory, labels with framework, executor,
task and agent ids); RUNNING; stream the container's stdout/stderr into the sandbox's; wait; remove the
container, release the devices; then FINISHED ("Command exited with status 0") or FAILED ("Command
exited with status N", label `exit_code`). A container that cannot start gives FAILED with the engine's
message and REASON_CONTAINER_LAUNCH_FAILED. KILL stops the container (SIGTERM, SIGKILL after the task's
kill_policy grace, else MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD) and sends KILLED; SHUTDOWN does that for
every task within the shutdown grace period. The executor exits when its last task has ended. At start
it removes the containers an earlier run of the same executor id left behind and frees their devices.

Network: `host` by default (Mesos' docker containerizer default; TF members bind the offered PORT0 on
the agent's address, which needs the host's network namespace); `--network` or the payload's
"network" picks another (e.g. `none`). The engine: `--docker-host` / MESOS_GPU_DOCKER_HOST, else the
SDK's DOCKER_HOST environment. The container's output is streamed while it runs (`docker logs
--follow`), through this process's own stdout/stderr (the sandbox files, or the pipes of Mesos'
container logger) or appended to the sandbox files.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymesos import Executor, MesosExecutorDriver

from isolator import docker as isolator_docker
from isolator.allocator import AllocatorStateError, ContainerProbe, ExclusiveGpuAllocator, ProcessProbe
from isolator.devices import CgroupPaths, DeviceSelector, GpuGrant, GpuInventory, GpuSelectionError, GpuSource
from isolator.docker import (
    LABEL_EXECUTOR_ID,
    LABEL_FRAMEWORK_ID,
    SANDBOX_MOUNT,
    ContainerSpec,
    DockerLauncher,
    DockerLaunchError,
    DockerUnavailableError,
    GpuMode,
    LogFollower,
)

log = logging.getLogger("isolator.executor")

DEFAULT_ALLOCATOR_DIR = "/var/run/mesos-gpu"
ALLOCATOR_STATE_FILE = "gpus.json"
DEFAULT_NETWORK = "host"
DEFAULT_SHUTDOWN_GRACE = 5.0  # Mesos' --executor_shutdown_grace_period default
OUTPUT_DRAIN_SECONDS = 10.0  # how long an exited container's output may take to arrive in full
LABEL_AGENT_ID = "mesos-gpu.agent-id"
REASON_LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"
REASON_EXITED = "REASON_COMMAND_EXECUTOR_FAILED"
TERMINAL_STATES = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST"})
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d*)?)\s*(ns|us|ms|secs|mins|hrs|days|weeks)\s*$")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0,
                   "days": 86400.0, "weeks": 604800.0}  # fmt: skip


# ---- task inputs (pure) ---------------------------------------------------------------------------


class PayloadError(ValueError):
    """The executor's payload (ExecutorInfo.data / TaskInfo.data) is missing or malformed."""


@dataclass(frozen=True)
class Payload:
    """What the scheduler asks the executor to run (mesos_gpu/core/taskinfo.py writes it)."""

    image: str
    command: str | tuple[str, ...] | None = None
    uris: tuple[Mapping[str, Any], ...] = ()
    network: str | None = None


def decode_payload(data: str | bytes | None) -> Payload:
    """Decode the base64 JSON payload `{"image", "command", "uris", ["network"]}`."""
    if not data:
        raise PayloadError("no payload: neither TaskInfo.data nor ExecutorInfo.data is set")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(f"the payload is not base64: {exc}") from exc
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"the payload is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise PayloadError("the payload must be a JSON object")
    image = doc.get("image")
    if not isinstance(image, str) or not image.strip():
        raise PayloadError("the payload names no image")
    command = doc.get("command")
    if isinstance(command, list) and all(isinstance(part, str) for part in command):
        command = tuple(command)
    elif command is not None and not isinstance(command, str):
        raise PayloadError("the payload's command must be a string, a list of strings or null")
    uris = doc.get("uris") or []
    if not isinstance(uris, list) or not all(isinstance(u, dict) for u in uris):
        raise PayloadError("the payload's uris must be a list of CommandInfo.URI objects")
    network = doc.get("network")
    if network is not None and (not isinstance(network, str) or not network):
        raise PayloadError("the payload's network must be a non-empty string")
    return Payload(image=image, command=command, uris=tuple(uris), network=network)


def task_payload(task: Mapping[str, Any], executor_info: Mapping[str, Any] | None) -> Payload:
    """The payload of a task: TaskInfo.data, else its ExecutorInfo's data, else the registered one's."""
    for source in (task, task.get("executor"), executor_info):
        if isinstance(source, Mapping) and source.get("data"):
            return decode_payload(source["data"])
    return decode_payload(None)


@dataclass(frozen=True)
class TaskResources:
    """The scalars the container is limited to."""

    cpus: float | None = None
    mem_mb: int | None = None
    gpus: int = 0


def task_resources(resources: Sequence[Mapping[str, Any]] | None) -> TaskResources:
    """cpus, mem (MB) and gpus summed over a Mesos Resource list (missing ones: no limit / no GPU)."""
    totals: dict[str, float] = {}
    for resource in resources or []:
        name = resource.get("name")
        scalar = resource.get("scalar") or {}
        if isinstance(name, str) and "value" in scalar:
            totals[name] = totals.get(name, 0.0) + float(scalar["value"])
    gpus = totals.get("gpus", 0.0)
    if gpus != int(gpus) or gpus < 0:
        raise PayloadError("The 'gpus' resource must be an unsigned integer")
    return TaskResources(
        cpus=totals["cpus"] if totals.get("cpus") else None,
        mem_mb=int(totals["mem"]) if totals.get("mem") else None,
        gpus=int(gpus),
    )


def command_environment(*commands: Mapping[str, Any] | None) -> dict[str, str]:
    """CommandInfo.environment variables (VALUE type) of these CommandInfos, later ones winning."""
    env: dict[str, str] = {}
    for command in commands:
        variables = ((command or {}).get("environment") or {}).get("variables") or []
        for variable in variables:
            if variable.get("type", "VALUE") == "VALUE" and isinstance(variable.get("name"), str):
                env[variable["name"]] = str(variable.get("value", ""))
    return env


def parse_duration(text: str) -> float:
    """A Mesos Duration string ("5secs", "500ms", "1mins") in seconds; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a Mesos duration: {text!r}")
    return max(0.0, float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def shutdown_grace(env: Mapping[str, str]) -> float:
    """MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD in seconds (Mesos' 5 s when absent or unreadable)."""
    try:
        return parse_duration(env.get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", ""))
    except ValueError:
        return DEFAULT_SHUTDOWN_GRACE


def kill_grace(kill_policy: Mapping[str, Any] | None, default: float) -> float:
    """KillPolicy.grace_period (DurationInfo nanoseconds) in seconds, or `default`."""
    try:
        return max(0.0, int((kill_policy or {})["grace_period"]["nanoseconds"]) / 1e9)
    except (KeyError, TypeError, ValueError):
        return default


def container_name(task_id: str) -> str:
    """A Docker container name for a task: `mesos-gpu-<task id, sanitised>-<8 hex>`."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", task_id)[:100]
    return f"mesos-gpu-{safe}-{uuid.uuid4().hex[:8]}"


# ---- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutorConfig:
    """How the executor reaches the engine, finds GPUs and names its sandbox."""

    framework_id: str
    executor_id: str
    agent_id: str = ""
    sandbox: str = "."  # as this process sees it (MESOS_SANDBOX)
    host_sandbox: str = "."  # as the engine sees it (MESOS_DIRECTORY): the bind-mount source
    docker_host: str | None = None
    allocator_dir: str = DEFAULT_ALLOCATOR_DIR
    gpu_source: GpuSource = GpuSource.AUTO
    gpu_mode: str = "device-request"  # device-request | legacy | auto (detect the nvidia runtime)
    nvidia_driver_volume: str | None = None
    network: str = DEFAULT_NETWORK
    fake_gpus: str | None = None
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    cgroup_paths: CgroupPaths = field(default_factory=CgroupPaths)
    exit_delay: float = 0.5  # after the last terminal update, before the driver stops
    output_to_stdio: bool = False  # container output through this process's stdout/stderr
    update_retry_seconds: float = 30.0

    @property
    def allocator_state(self) -> str:
        return os.path.join(self.allocator_dir, ALLOCATOR_STATE_FILE)

    def owner(self, task_id: str) -> str:
        """The allocator owner of a task's GPUs."""
        return f"{self.owner_prefix}{task_id}"

    @property
    def owner_prefix(self) -> str:
        return f"{self.framework_id}/{self.executor_id}/"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m isolator.executor",
        description="mesos-gpu's nvidia-docker executor (started by a Mesos agent, not by hand).",
    )
    parser.add_argument("--docker-host", help="Docker Engine URL (default: $MESOS_GPU_DOCKER_HOST, "
                        "else the SDK's $DOCKER_HOST / default socket)")  # fmt: skip
    parser.add_argument("--allocator-dir", help="directory of the host GPU allocator's state "
                        f"(default: $MESOS_GPU_ALLOCATOR_DIR or {DEFAULT_ALLOCATOR_DIR})")  # fmt: skip
    parser.add_argument(
        "--gpu-source",
        choices=[s.value for s in GpuSource],
        help="where the task's GPUs come from (default: $MESOS_GPU_GPU_SOURCE or auto)",
    )
    parser.add_argument("--gpu-mode", choices=["device-request", "legacy", "auto"],
                        help="how GPUs reach the container (default: $MESOS_GPU_DOCKER_GPU_MODE or "
                        "device-request, i.e. the NVIDIA Container Toolkit)")  # fmt: skip
    parser.add_argument("--nvidia-driver-volume", help="host directory of the driver volume (legacy mode)")
    parser.add_argument("--network", help="container network mode (default: $MESOS_GPU_DOCKER_NETWORK "
                        f"or {DEFAULT_NETWORK}); a payload's \"network\" wins")  # fmt: skip
    parser.add_argument("--fake-gpus", metavar="SPEC", help="a fake NVML inventory (demos, tests)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from(argv: Sequence[str] | None, env: Mapping[str, str]) -> tuple[ExecutorConfig, str]:
    """The configuration from the command line and the Mesos executor environment; and the log level."""
    args = build_parser().parse_args(argv)
    sandbox = env.get("MESOS_SANDBOX") or env.get("MESOS_DIRECTORY") or os.getcwd()
    config = ExecutorConfig(
        framework_id=env.get("MESOS_FRAMEWORK_ID", ""),
        executor_id=env.get("MESOS_EXECUTOR_ID", ""),
        agent_id=env.get("MESOS_SLAVE_ID", "") or env.get("MESOS_AGENT_ID", ""),
        sandbox=sandbox,
        host_sandbox=env.get("MESOS_DIRECTORY") or sandbox,
        docker_host=args.docker_host or env.get("MESOS_GPU_DOCKER_HOST") or None,
        allocator_dir=args.allocator_dir or env.get("MESOS_GPU_ALLOCATOR_DIR") or DEFAULT_ALLOCATOR_DIR,
        gpu_source=GpuSource(args.gpu_source or env.get("MESOS_GPU_GPU_SOURCE") or "auto"),
        gpu_mode=args.gpu_mode or env.get("MESOS_GPU_DOCKER_GPU_MODE") or "device-request",
        nvidia_driver_volume=args.nvidia_driver_volume or env.get("MESOS_GPU_NVIDIA_DRIVER_VOLUME") or None,
        network=args.network or env.get("MESOS_GPU_DOCKER_NETWORK") or DEFAULT_NETWORK,
        fake_gpus=args.fake_gpus or env.get("MESOS_GPU_FAKE_GPUS") or None,
        shutdown_grace=shutdown_grace(env),
        output_to_stdio=True,
    )
    return config, str(args.log_level)


def connect_launcher(config: ExecutorConfig, inventory: GpuInventory) -> DockerLauncher:
    """A DockerLauncher on the configured engine (the SDK stays imported in isolator/docker.py)."""
    client = isolator_docker.connect(config.docker_host, timeout=60)
    auto = config.gpu_mode == "auto"
    mode = isolator_docker.detect_gpu_mode(client) if auto else GpuMode(config.gpu_mode)
    return DockerLauncher(
        client,
        gpu_mode=mode,
        legacy_minors=inventory.legacy_minors() if mode is GpuMode.LEGACY else None,
        legacy_driver_volume=config.nvidia_driver_volume,
    )


# ---- the executor --------------------------------------------------------------------------------


@dataclass
class _Run:
    """One task's life in this executor."""

    task_id: str
    task: Mapping[str, Any]
    grace: float
    container_id: str | None = None
    grant: GpuGrant | None = None
    killed: bool = False
    terminal: bool = False  # the task has ended here (its terminal update is being sent)
    terminal_sent: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    updates: threading.Lock = field(default_factory=threading.Lock)  # keeps KILLING before the end


class DockerExecutor(Executor):  # type: ignore[misc,unused-ignore]  # pymesos is untyped
    """The pymesos callbacks. Every callback returns at once (work runs on one thread per task) and
    never raises."""

    def __init__(
        self,
        config: ExecutorConfig,
        env: Mapping[str, str],
        launcher_factory: Callable[[], DockerLauncher] | None = None,
        inventory: GpuInventory | None = None,
    ) -> None:
        self.config = config
        self.inventory = inventory or GpuInventory(config.fake_gpus)
        self._launcher_factory = launcher_factory or (lambda: connect_launcher(config, self.inventory))
        self._launcher: DockerLauncher | None = None
        self.selector = DeviceSelector(
            config.gpu_source, env, self.inventory, self._allocator, config.cgroup_paths
        )
        self.executor_info: Mapping[str, Any] | None = None
        self.framework_info: Mapping[str, Any] | None = None
        self.runs: dict[str, _Run] = {}
        self._lock = threading.RLock()
        self._shutting_down = False
        self._output_lock = threading.Lock()
        self._select_lock = threading.Lock()
        self.finished = threading.Event()  # set once the driver was asked to stop

    # ---- collaborators ----

    def launcher(self) -> DockerLauncher:
        with self._lock:
            if self._launcher is None:
                self._launcher = self._launcher_factory()
            return self._launcher

    def _allocator(self, devices: list[str] | None) -> ExclusiveGpuAllocator:
        probe = ContainerProbe(self._running_gpu_containers)
        return ExclusiveGpuAllocator(
            self.config.allocator_state,
            devices,
            holder_probes=(ProcessProbe(), probe),
            usage_probes=(probe,),
        )

    def _running_gpu_containers(self) -> list[tuple[str, tuple[str, ...]]]:
        refs = self.launcher().list_by_label()
        return [(ref.id, ref.gpus) for ref in refs if ref.status == "running" and ref.gpus]

    # ---- start-up clean-up ----

    def remove_orphans(self) -> list[str]:
        """Remove the containers an earlier run of this executor left (same framework and executor id)
        and free the GPUs it held in the host allocator; return the removed container ids."""
        removed: list[str] = []
        try:
            launcher = self.launcher()
            refs = launcher.list_by_label(
                {LABEL_FRAMEWORK_ID: self.config.framework_id, LABEL_EXECUTOR_ID: self.config.executor_id}
            )
            for ref in refs:
                log.warning("removing orphan container %s (%s, GPUs %s)", ref.id[:12], ref.status,
                            ",".join(ref.gpus) or "none")  # fmt: skip
                launcher.remove(ref.id)
                removed.append(ref.id)
        except DockerLaunchError as exc:
            log.warning("cannot look for orphan containers: %s", exc)
        if os.path.exists(self.config.allocator_state):
            try:
                allocator = self._allocator(self.inventory.uuids())
                for owner in allocator.allocations():
                    if owner.startswith(self.config.owner_prefix):
                        log.warning("releasing GPUs %s left by %s", allocator.release(owner), owner)
                allocator.reconcile()
            except (AllocatorStateError, DockerLaunchError) as exc:
                log.warning("cannot clean the GPU allocator: %s", exc)
        return removed

    # ---- pymesos callbacks ----

    def registered(self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any) -> None:
        try:
            self.executor_info, self.framework_info = executor_info, framework_info
            log.info("registered with agent %s", (agent_info or {}).get("hostname"))
        except Exception:
            log.exception("registered failed")

    def reregistered(self, driver: Any, agent_info: Any) -> None:
        log.info("re-registered with the agent")

    def disconnected(self, driver: Any) -> None:
        log.warning("disconnected from the agent")

    def launchTask(self, driver: Any, task: Any) -> None:  # noqa: N802 - pymesos' name
        try:
            task_id = str(task["task_id"]["value"])
            grace = kill_grace(task.get("kill_policy"), self.config.shutdown_grace)
            with self._lock:
                if task_id in self.runs and not self.runs[task_id].terminal:
                    log.warning("task %s is already running here: LAUNCH ignored", task_id)
                    return
                run = _Run(task_id, task, grace)
                self.runs[task_id] = run
            threading.Thread(
                target=self._run_task, args=(driver, run), name=f"task-{task_id}", daemon=True
            ).start()
        except Exception as exc:
            log.exception("launchTask failed")
            broken = _task_id_of(task)
            if broken is not None:
                message = f"Executor error: {exc}"
                self._send_async(driver, broken, "TASK_FAILED", message, REASON_LAUNCH_FAILED)

    def launchTaskGroup(self, driver: Any, task_infos: Any) -> None:  # noqa: N802 - pymesos' name
        for task in task_infos or []:
            self.launchTask(driver, task)

    def killTask(self, driver: Any, task_id: Any) -> None:  # noqa: N802 - pymesos' name
        try:
            value = str(task_id["value"])
            with self._lock:
                run = self.runs.get(value)
                if run is None or run.terminal:
                    log.info("kill of unknown or ended task %s ignored", value)
                    return
                first = not run.killed
                run.killed = True
            log.info("killing task %s (grace %.1fs)", value, run.grace)
            killing = first and self._has_capability("TASK_KILLING_STATE")
            threading.Thread(
                target=self._kill, args=(driver, run, killing), name=f"kill-{value}", daemon=True
            ).start()
        except Exception:
            log.exception("killTask failed")

    def _kill(self, driver: Any, run: _Run, send_killing: bool) -> None:
        """TASK_KILLING (unless the task already ended), then stop its container if it has one yet
        (one still starting is stopped by its own thread, which sees `killed`)."""
        if send_killing:
            with run.updates:
                if not run.terminal_sent:
                    self._send(driver, run.task_id, "TASK_KILLING", "Killing the container")
        with self._lock:
            container_id = run.container_id
        if container_id is not None:
            self._stop(container_id, run.grace)

    def frameworkMessage(self, driver: Any, message: Any) -> None:  # noqa: N802 - pymesos' name
        log.info("framework message ignored (%d bytes of base64)", len(message or ""))

    def shutdown(self, driver: Any) -> None:
        """Stop every container within the shutdown grace period (pymesos SIGKILLs this process group
        when it ends), send KILLED for each, release everything."""
        try:
            self._shutting_down = True
            budget = max(0.0, self.config.shutdown_grace - 1.0)
            with self._lock:
                active = [run for run in self.runs.values() if not run.terminal]
                for run in active:
                    run.killed = True
            log.info("shutdown: stopping %d task(s) within %.1fs", len(active), budget)
            for run in active:
                if run.container_id is not None:
                    threading.Thread(
                        target=self._stop, args=(run.container_id, min(run.grace, budget)), daemon=True
                    ).start()
            deadline = time.monotonic() + budget + 0.5
            for run in active:
                run.done.wait(max(0.0, deadline - time.monotonic()))
        except Exception:
            log.exception("shutdown failed")

    def error(self, driver: Any, message: Any) -> None:
        log.error("error from the agent: %s", message)

    # ---- one task ----

    def _run_task(self, driver: Any, run: _Run) -> None:
        try:
            self._send(driver, run.task_id, "TASK_STARTING")
            state, message, reason, labels = self._launch_and_wait(driver, run)
        except Exception as exc:  # a bug here must still end the task
            log.exception("task %s failed in the executor", run.task_id)
            state, message, reason, labels = "TASK_FAILED", f"Executor error: {exc}", REASON_LAUNCH_FAILED, {}
        finally:
            self._clean_up(run)
        with self._lock:
            run.terminal = True
        with run.updates:
            run.terminal_sent = True
            self._send(driver, run.task_id, state, message, reason=reason, labels=labels)
        run.done.set()
        self._maybe_exit(driver)

    def _launch_and_wait(self, driver: Any, run: _Run) -> tuple[str, str, str | None, dict[str, str]]:
        """Start the task's container and wait for it; the terminal (state, message, reason, labels)."""
        task = run.task
        try:
            payload = task_payload(task, self.executor_info)
            resources = task_resources(task.get("resources"))
            with self._select_lock:  # one selection at a time: two tasks never get the same probed GPU
                with self._lock:
                    runs = list(self.runs.values())
                taken = {d for r in runs if r.grant and not r.terminal for d in r.grant.devices}
                grant = self.selector.select(resources.gpus, self.config.owner(run.task_id), taken)
                run.grant = grant
            log.info("task %s: GPUs %s (%s)", run.task_id, ",".join(grant.devices) or "none", grant.detail)
            if run.killed:
                return "TASK_KILLED", "Killed before the container started", None, {}
            spec = self._container_spec(run, payload, resources, grant)
            launcher = self.launcher()
            container_id = launcher.run(spec)
        except (PayloadError, GpuSelectionError, DockerLaunchError) as exc:
            log.warning("task %s cannot start: %s", run.task_id, exc)
            return "TASK_FAILED", f"Failed to launch container: {exc}", REASON_LAUNCH_FAILED, {}
        follower = self._follow_output(launcher, container_id)
        with self._lock:
            run.container_id = container_id
            killed = run.killed
        try:
            self.selector.attach(grant, container_id)
        except AllocatorStateError as exc:  # the allocation still names this process as its holder
            log.warning("cannot record container %s in the GPU allocator: %s", container_id[:12], exc)
        if killed:
            self._stop(container_id, run.grace)
        else:
            gpus = ",".join(grant.devices) or "none"
            self._send(driver, run.task_id, "TASK_RUNNING", f"Container {container_id[:12]} on GPUs {gpus}")
        code = self._wait(launcher, container_id)
        self._finish_output(launcher, container_id, follower)
        labels = {"exit_code": str(code)} if code is not None else {}
        if run.killed:
            return "TASK_KILLED", f"Container stopped (exit status {code})", None, labels
        if code is None:
            return "TASK_FAILED", "Lost the container: the Docker Engine no longer answers", REASON_EXITED, {}
        if code == 0:
            return "TASK_FINISHED", "Command exited with status 0", None, labels
        return "TASK_FAILED", f"Command exited with status {code}", REASON_EXITED, labels

    def _container_spec(
        self, run: _Run, payload: Payload, resources: TaskResources, grant: GpuGrant
    ) -> ContainerSpec:
        executor = run.task.get("executor") or self.executor_info or {}
        env = command_environment(executor.get("command"), run.task.get("command"))
        env.update({"MESOS_TASK_ID": run.task_id, "MESOS_FRAMEWORK_ID": self.config.framework_id,
                    "MESOS_EXECUTOR_ID": self.config.executor_id})  # fmt: skip
        return ContainerSpec(
            image=payload.image,
            command=payload.command,
            env=env,
            gpus=grant.devices,
            cpus=resources.cpus,
            mem_mb=resources.mem_mb,
            sandbox=self.config.host_sandbox,
            framework_id=self.config.framework_id,
            task_id=run.task_id,
            executor_id=self.config.executor_id,
            labels={LABEL_AGENT_ID: self.config.agent_id} if self.config.agent_id else {},
            name=container_name(run.task_id),
            network_mode=payload.network or self.config.network,
            working_dir=SANDBOX_MOUNT,
        )

    def _write_output(self, stream: str, data: bytes) -> None:
        """One chunk of container output into the sandbox's: through this process's own stdout or
        stderr (which Mesos' container logger owns, file or pipe) or, when `output_to_stdio` is off,
        appended to the sandbox file of that name."""
        if self.config.output_to_stdio:
            target = sys.stdout if stream == "stdout" else sys.stderr
            with self._output_lock:
                target.flush()
                target.buffer.write(data)
                target.buffer.flush()
            return
        with self._output_lock, open(os.path.join(self.config.sandbox, stream), "ab") as handle:
            handle.write(data)

    def _follow_output(self, launcher: DockerLauncher, container_id: str) -> LogFollower | None:
        """Stream the container's output into the sandbox while it runs (`mesos-gpu logs --follow`
        shows a training job's progress as it happens, not at its end)."""
        try:
            return launcher.follow_logs(container_id, self._write_output)
        except (DockerLaunchError, OSError, RuntimeError) as exc:
            log.warning("cannot follow the output of %s: %s", container_id[:12], exc)
            return None

    def _finish_output(self, launcher: DockerLauncher, container_id: str,
                       follower: LogFollower | None) -> None:
        """Wait for the streams to end; copy whole what could not be followed."""
        if follower is not None:
            for problem in follower.finish(OUTPUT_DRAIN_SECONDS):
                log.warning("%s", problem)
            return
        try:
            out, err = launcher.logs(container_id)
            for name, data in (("stdout", out), ("stderr", err)):
                if data:
                    self._write_output(name, data)
        except (DockerLaunchError, OSError) as exc:
            log.warning("cannot copy the output of %s: %s", container_id[:12], exc)

    def _wait(self, launcher: DockerLauncher, container_id: str) -> int | None:
        """The container's exit code; None when the engine stays unreachable (retried a while)."""
        deadline = time.monotonic() + self.config.update_retry_seconds
        while True:
            try:
                return launcher.wait(container_id)
            except DockerUnavailableError as exc:
                if time.monotonic() >= deadline:
                    log.error("giving up on container %s: %s", container_id[:12], exc)
                    return None
                time.sleep(1.0)
            except DockerLaunchError as exc:  # removed under us
                log.error("container %s is gone: %s", container_id[:12], exc)
                return None

    def _stop(self, container_id: str, grace: float) -> None:
        try:
            self.launcher().stop(container_id, grace=grace)
        except DockerLaunchError as exc:
            log.warning("cannot stop container %s: %s; removing it", container_id[:12], exc)
            try:
                self.launcher().remove(container_id)
            except DockerLaunchError as again:
                log.error("cannot remove container %s: %s", container_id[:12], again)

    def _clean_up(self, run: _Run) -> None:
        """Remove the container and release the devices, whatever happened."""
        if run.container_id is not None:
            try:
                self.launcher().remove(run.container_id)
            except DockerLaunchError as exc:
                log.error("cannot remove container %s: %s", run.container_id[:12], exc)
        if run.grant is not None:
            try:
                self.selector.release(run.grant)
            except (AllocatorStateError, DockerLaunchError) as exc:
                log.error("cannot release the GPUs of %s: %s", run.task_id, exc)

    def close(self) -> None:
        """After the driver stopped: stop and remove whatever still runs, release every grant."""
        with self._lock:
            left = [run for run in self.runs.values() if not run.done.is_set()]
        for run in left:
            with self._lock:
                run.killed = True
            if run.container_id is not None:
                self._stop(run.container_id, 0)
            run.done.wait(5.0)
            self._clean_up(run)

    # ---- status updates ----

    def _has_capability(self, name: str) -> bool:
        capabilities = (self.framework_info or {}).get("capabilities") or []
        return any(isinstance(c, Mapping) and c.get("type") == name for c in capabilities)

    def _send_async(
        self, driver: Any, task_id: str, state: str, message: str | None = None, reason: str | None = None
    ) -> None:
        """`_send` on its own thread (callbacks must not block the driver's I/O thread)."""
        threading.Thread(
            target=self._send, args=(driver, task_id, state, message), kwargs={"reason": reason}, daemon=True
        ).start()

    def _send(
        self,
        driver: Any,
        task_id: str,
        state: str,
        message: str | None = None,
        *,
        reason: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> bool:
        """Send one status update, retrying while the agent is unreachable; never raises."""
        status: dict[str, Any] = {"task_id": {"value": task_id}, "state": state}
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        if labels:
            status["labels"] = {"labels": [{"key": k, "value": v} for k, v in labels.items()]}
        deadline = time.monotonic() + self.config.update_retry_seconds
        while True:
            try:
                driver.sendStatusUpdate(dict(status))
                log.info("task %s: %s%s", task_id, state, f" ({message})" if message else "")
                return True
            except Exception as exc:
                if time.monotonic() >= deadline or getattr(driver, "aborted", False):
                    log.error("could not send %s for task %s: %s", state, task_id, exc)
                    return False
                time.sleep(0.5)

    def _maybe_exit(self, driver: Any) -> None:
        """Stop the driver once every task has ended (after a short delay for the agent's ACKs)."""

        def later() -> None:
            time.sleep(self.config.exit_delay)
            with self._lock:
                if any(not run.terminal for run in self.runs.values()) or self.finished.is_set():
                    return
                self.finished.set()
            log.info("every task has ended: stopping the executor")
            try:
                driver.stop()
            except Exception:
                log.exception("driver.stop failed")

        with self._lock:
            if self._shutting_down or any(not run.terminal for run in self.runs.values()):
                return
        threading.Thread(target=later, name="exit", daemon=True).start()


def _task_id_of(task: Any) -> str | None:
    try:
        return str(task["task_id"]["value"])
    except Exception:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    config, level = config_from(argv, os.environ)
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not config.framework_id or not config.executor_id:
        log.error("MESOS_FRAMEWORK_ID and MESOS_EXECUTOR_ID must be set: this runs under a Mesos agent")
        return 2
    executor = DockerExecutor(config, os.environ)
    removed = executor.remove_orphans()
    if removed:
        log.warning("removed %d orphan container(s) of executor %s", len(removed), config.executor_id)
    driver = MesosExecutorDriver(executor, use_addict=True)
    driver.run()
    executor.close()
    log.info("executor %s exits", config.executor_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
