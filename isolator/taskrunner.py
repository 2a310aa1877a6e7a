"""The executor's task runner: each task in its own container on its own GPUs, supervised from
STARTING to its terminal update, on one thread per task.

Per task: STARTING; decode the payload and the resources (`isolator.taskinputs`); choose the GPUs
(`isolator.devices`); start the container; RUNNING; stream its output into the sandbox; wait; remove
the container and release the GPUs; then FINISHED, FAILED (with the exit code) or KILLED. A kill stops
the container (SIGTERM, SIGKILL after the task's grace), before it starts if need be. RUNNING names the
container's GPUs (labels `mesos-gpu/device`: UUIDs, `mesos-gpu/device-index`: NVML indices, each when the
inventory knows it: `core.sharing.device_labels`); a failed command's FAILED carries the last lines of
the container's stderr, as the command executor's does. At start-up the
containers and GPU allocations an earlier run of the same executor left behind are removed.

    runner = TaskRunner(config, os.environ, on_ended=lambda driver: ...)
    runner.start(driver, task_info)           # returns at once; the task's thread sends its updates
    runner.kill(driver, "task-1", killing=True)
    runner.stop_all(budget=4.0); runner.close()
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from isolator.allocator import AllocatorStateError, ContainerProbe, ExclusiveGpuAllocator, ProcessProbe
from isolator.containers import (
    LABEL_EXECUTOR_ID,
    LABEL_FRAMEWORK_ID,
    SANDBOX_MOUNT,
    ContainerSpec,
    DockerLaunchError,
    DockerUnavailableError,
)
from isolator.devices import DeviceSelector, GpuGrant, GpuInventory, GpuSelectionError
from isolator.docker import DockerLauncher
from isolator.executorconfig import ExecutorConfig, connect_launcher
from isolator.sandboxoutput import SandboxOutput
from isolator.statusupdates import StatusUpdates
from isolator.taskinputs import (
    Payload,
    PayloadError,
    TaskResources,
    command_environment,
    container_name,
    task_payload,
    task_resources,
    volume_mounts,
)
from mesos_gpu.core.sharing import device_labels
from mesos_gpu.core.wire import kill_grace_seconds

log = logging.getLogger("isolator.executor")

LABEL_AGENT_ID = "mesos-gpu.agent-id"
REASON_LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"
REASON_EXITED = "REASON_COMMAND_EXECUTOR_FAILED"
STDERR_TAIL_LINES = 5  # as the local agent's command executor (mesos_gpu.local.agent.command_executor)
STDERR_TAIL_CHARS = 1000


@dataclass(frozen=True)
class Ending:
    """A task's terminal update."""

    state: str
    message: str
    reason: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class TaskRun:
    """One task's life in this executor."""

    task_id: str
    task: Mapping[str, Any]
    grace: float
    container_id: str | None = None
    grant: GpuGrant | None = None
    killed: bool = False
    terminal: bool = False  # the task has ended here (its terminal update is being sent)
    done: threading.Event = field(default_factory=threading.Event)


class TaskRunner:
    """Runs and supervises the executor's tasks. `on_ended(driver)` is called after each terminal
    update (the executor stops once every task has ended)."""

    def __init__(
        self,
        config: ExecutorConfig,
        env: Mapping[str, str],
        launcher_factory: Callable[[], DockerLauncher] | None = None,
        inventory: GpuInventory | None = None,
        on_ended: Callable[[Any], None] = lambda driver: None,
    ) -> None:
        self.config = config
        self.env = env
        self.inventory = inventory or GpuInventory(config.fake_gpus)
        self._launcher_factory = launcher_factory or (lambda: connect_launcher(config, self.inventory))
        self._launcher: DockerLauncher | None = None
        self.selector = DeviceSelector(
            config.gpu_source, env, self.inventory, self._allocator, config.cgroup_paths
        )
        self.updates = StatusUpdates(config.update_retry_seconds)
        self.output = SandboxOutput(config.sandbox, config.output_to_stdio)
        self.executor_info: Mapping[str, Any] | None = None
        self.runs: dict[str, TaskRun] = {}
        self._on_ended = on_ended
        self._lock = threading.RLock()
        self._select_lock = threading.Lock()

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

    # ---- what the executor asks ----

    def start(self, driver: Any, task: Mapping[str, Any]) -> TaskRun | None:
        """Start running a task on its own thread; None (and nothing done) when it already runs here."""
        task_id = str(task["task_id"]["value"])
        grace = kill_grace_seconds(task.get("kill_policy"), self.config.shutdown_grace)
        with self._lock:
            if task_id in self.runs and not self.runs[task_id].terminal:
                log.warning("task %s is already running here: LAUNCH ignored", task_id)
                return None
            run = TaskRun(task_id, task, grace)
            self.runs[task_id] = run
        self.updates.restart(task_id)
        threading.Thread(target=self._run, args=(driver, run), name=f"task-{task_id}", daemon=True).start()
        return run

    def kill(self, driver: Any, task_id: str, killing: bool) -> bool:
        """Kill a task: TASK_KILLING first when `killing` (the framework's TASK_KILLING_STATE) and this
        is the first kill, then stop its container. False when the task is unknown or has ended."""
        with self._lock:
            run = self.runs.get(task_id)
            if run is None or run.terminal:
                log.info("kill of unknown or ended task %s ignored", task_id)
                return False
            first = not run.killed
            run.killed = True
        log.info("killing task %s (grace %.1fs)", task_id, run.grace)
        threading.Thread(
            target=self._kill, args=(driver, run, first and killing), name=f"kill-{task_id}", daemon=True
        ).start()
        return True

    def _kill(self, driver: Any, run: TaskRun, send_killing: bool) -> None:
        """TASK_KILLING (dropped when the task already ended), then stop its container if it has one yet
        (one still starting is stopped by its own thread, which sees `killed`)."""
        if send_killing:
            self.updates.send(driver, run.task_id, "TASK_KILLING", "Killing the container")
        with self._lock:
            container_id = run.container_id
        if container_id is not None:
            self._stop(container_id, run.grace)

    def stop_all(self, budget: float) -> None:
        """Stop every task's container within `budget` seconds (each its own grace, at most that) and
        wait that long for their terminal updates."""
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

    def all_ended(self) -> bool:
        with self._lock:
            return all(run.terminal for run in self.runs.values())

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

    # ---- one task ----

    def _run(self, driver: Any, run: TaskRun) -> None:
        try:
            self.updates.send(driver, run.task_id, "TASK_STARTING")
            ending = self._launch_and_wait(driver, run)
        except Exception as exc:  # a bug here must still end the task
            log.exception("task %s failed in the executor", run.task_id)
            ending = Ending("TASK_FAILED", f"Executor error: {exc}", REASON_LAUNCH_FAILED)
        finally:
            self._clean_up(run)
        with self._lock:
            run.terminal = True
        self.updates.send(
            driver, run.task_id, ending.state, ending.message, reason=ending.reason, labels=ending.labels
        )
        run.done.set()
        self._on_ended(driver)

    def _launch_and_wait(self, driver: Any, run: TaskRun) -> Ending:
        """Start the task's container and wait for it to end."""
        try:
            started = self._launch(run)
        except (PayloadError, GpuSelectionError, DockerLaunchError) as exc:
            log.warning("task %s cannot start: %s", run.task_id, exc)
            return Ending("TASK_FAILED", f"Failed to launch container: {exc}", REASON_LAUNCH_FAILED)
        if started is None:
            return Ending("TASK_KILLED", "Killed before the container started")
        launcher, container_id, grant = started
        follower = self.output.follow(launcher, container_id)
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
            message = f"Container {container_id[:12]} on GPUs {gpus}"
            labels = device_labels(self._named(grant.devices))
            self.updates.send(driver, run.task_id, "TASK_RUNNING", message, labels=labels)
        code = self._wait(launcher, container_id)
        self.output.finish(launcher, container_id, follower)
        ending = _ending(code, run.killed)
        if ending.reason == REASON_EXITED and code is not None:   # its stderr usually says why
            ending = dataclasses.replace(ending, message=self._with_stderr_tail(ending.message, launcher,
                                                                               container_id))
        return ending

    def _named(self, devices: tuple[str, ...]) -> list[tuple[int | None, str | None]]:
        """(NVML index, UUID) of each device id the container got (a UUID or a host index), None where
        the inventory does not say (no NVML: indices only)."""
        host = self.inventory.host()
        gpus = host.ordered() if host is not None else []
        index_of = {gpu.uuid: gpu.index for gpu in gpus}
        uuid_of = {str(gpu.index): gpu.uuid for gpu in gpus}
        return [(index_of.get(d), d) if not d.isdigit() else (int(d), uuid_of.get(d)) for d in devices]

    def _with_stderr_tail(self, message: str, launcher: DockerLauncher, container_id: str) -> str:
        """`message` and the last lines of the container's stderr (as the command executor's)."""
        try:
            _, err = launcher.logs(container_id)
        except (DockerLaunchError, OSError) as exc:
            log.warning("cannot read the stderr of %s: %s", container_id[:12], exc)
            return message
        tail = stderr_tail(err.decode("utf-8", errors="replace"))
        return f"{message}; last lines of stderr:\n{tail}" if tail else message

    def _launch(self, run: TaskRun) -> tuple[DockerLauncher, str, GpuGrant] | None:
        """Choose the task's GPUs and start its container; None when it was killed before it started."""
        payload = task_payload(run.task, self.executor_info)
        resources = task_resources(run.task.get("resources"))
        with self._select_lock:  # one selection at a time: two tasks never get the same probed GPU
            with self._lock:
                runs = list(self.runs.values())
            taken = {d for r in runs if r.grant and not r.terminal for d in r.grant.devices}
            grant = self.selector.select(resources.gpus, self.config.owner(run.task_id), taken)
            run.grant = grant
        log.info("task %s: GPUs %s (%s)", run.task_id, ",".join(grant.devices) or "none", grant.detail)
        if run.killed:
            return None
        launcher = self.launcher()
        return launcher, launcher.run(self._container_spec(run, payload, resources, grant)), grant

    def _container_spec(
        self, run: TaskRun, payload: Payload, resources: TaskResources, grant: GpuGrant
    ) -> ContainerSpec:
        executor = run.task.get("executor") or self.executor_info or {}
        env = command_environment(executor.get("command"), run.task.get("command"), resolved=self.env)
        env.update({"MESOS_TASK_ID": run.task_id, "MESOS_FRAMEWORK_ID": self.config.framework_id,
                    "MESOS_EXECUTOR_ID": self.config.executor_id})  # fmt: skip
        mounts, named_volumes = volume_mounts(payload.volumes, SANDBOX_MOUNT)
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
            mounts=mounts,
            named_volumes=named_volumes,
        )

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

    def _clean_up(self, run: TaskRun) -> None:
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


def stderr_tail(text: str, lines: int = STDERR_TAIL_LINES, limit: int = STDERR_TAIL_CHARS) -> str:
    """The last `lines` non-blank lines of `text`, at most `limit` characters (the end kept)."""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])[-limit:]


def _ending(code: int | None, killed: bool) -> Ending:
    """The terminal update of a container that exited with `code` (None: lost with the engine)."""
    labels = {"exit_code": str(code)} if code is not None else {}
    if killed:
        return Ending("TASK_KILLED", f"Container stopped (exit status {code})", None, labels)
    if code is None:
        return Ending("TASK_FAILED", "Lost the container: the Docker Engine no longer answers", REASON_EXITED)
    if code == 0:
        return Ending("TASK_FINISHED", "Command exited with status 0", None, labels)
    return Ending("TASK_FAILED", f"Command exited with status {code}", REASON_EXITED, labels)
