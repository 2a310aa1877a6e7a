"""The share host's work (no pymesos here; `isolator.sharehost` holds the callbacks): its one GPU, and
each share task on it from STARTING to its terminal update, one thread per task.

Per task: STARTING; decode the payload (`isolator.shares`); a sandbox of its own,
`<executor sandbox>/tasks/<task id>` (stdout, stderr, working directory, MESOS_SANDBOX), as Mesos gives
the tasks of a task group; fetch its uris there (`isolator.fetcher`); the environment of its level (mig:
its MIG instance; mps: the GPU's MPS daemon, started at the first mps share; capped: a memory cap the
NVML watchdog enforces); a plain command runs as its own process group (`/bin/sh -c`; it stays in the
host's session, so an agent can find what a dead host left by session id) with an environment built
from a clean base (`isolator.shareenv`: nothing only the executor should see), an image through
`isolator.docker` with a device request for this GPU (or MIG instance) only (mps: with the host's IPC
namespace and the daemon's pipe directory mounted); RUNNING with the share's
labels and data (and LABEL_ENFORCEMENT: what actually holds for this task here); then FINISHED / FAILED
("Command exited with status N", label exit_code) / KILLED, or FAILED "GPU memory X MiB used, Y MiB
allowed (capped share)" when the watchdog killed it. A kill sends SIGTERM to every process of the task
(`isolator.proctrack`: its group, the sessions and groups it made, every descendant seen; or stops its
container) and SIGKILL after the task's grace; when a task ends, whatever of it is left is killed, as
Mesos destroys a whole container. The host lingers `linger_seconds` after its last task ended and then
asks to stop (`on_idle`); before its first task it waits at least FIRST_TASK_WAIT_SECONDS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from isolator.containers import SANDBOX_MOUNT, ContainerSpec, DockerLaunchError
from isolator.devices import GpuInventory
from isolator.discovery import NvmlError
from isolator.docker import DockerLauncher
from isolator.executorconfig import ExecutorConfig, connect_launcher
from isolator.fakenvml import PROCESSES_ENV
from isolator.fetcher import FetchError, fetch_uris
from isolator.mps import MpsDaemon, MpsError
from isolator.proctrack import ProcessTracker
from isolator.sandboxoutput import SandboxOutput
from isolator.sharedevice import ShareDevice, find_device
from isolator.shareenv import enforcement, task_environment
from isolator.sharenvml import MigInstance, ShareNvml
from isolator.shares import (
    HostSettings,
    ShareError,
    ShareTask,
    decode_share_task,
    memory_cap,
    mig_instance,
    running_data,
    running_report,
    share_environment,
)
from isolator.statusupdates import StatusUpdates
from isolator.taskinputs import container_name
from isolator.taskrunner import REASON_EXITED, REASON_LAUNCH_FAILED, Ending
from isolator.watchdog import MemoryWatchdog, over_message, process_tree
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import LABEL_ENFORCEMENT
from mesos_gpu.core.wire import kill_grace_seconds

log = logging.getLogger("isolator.sharehost")

REASON_MEMORY = "REASON_CONTAINER_LIMITATION_MEMORY"
MPS_PIPE_MOUNT = "/run/mesos-gpu-mps"  # where an image's MPS client finds the daemon's pipe directory
FIRST_TASK_WAIT_SECONDS = 60.0  # a new host waits at least this long for its first task
TRACK_INTERVAL = 0.5  # seconds between two walks of /proc for the tasks' processes


@dataclass
class ShareRun:
    """One share task's life on this host."""

    task_id: str
    task: Mapping[str, Any]
    directory: str
    grace: float
    process: subprocess.Popen[bytes] | None = None
    container_id: str | None = None
    killed: bool = False
    over: str | None = None  # the watchdog's verdict
    terminal: bool = False
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Started:
    """What `_start` launched: the run's device label, memory cap and its process or container."""

    device: str
    cap: int
    pid: int | None


class ShareHost:
    """Runs a share host's tasks on its one GPU."""

    def __init__(
        self,
        config: ExecutorConfig,
        env: Mapping[str, str],
        backend: ShareNvml | None,
        launcher_factory: Callable[[], DockerLauncher] | None = None,
        on_idle: Callable[[Any], None] = lambda driver: None,
    ) -> None:
        self.config = config
        self.env = dict(env)
        self.backend = backend
        self.inventory = GpuInventory(config.fake_gpus)
        self._launcher_factory = launcher_factory or (lambda: connect_launcher(config, self.inventory))
        self._launcher: DockerLauncher | None = None
        self.updates = StatusUpdates(config.update_retry_seconds)
        self.settings: HostSettings | None = None
        self.device: ShareDevice | None = None
        self.device_error = ""
        self.mps: MpsDaemon | None = None
        self.watchdog: MemoryWatchdog | None = None
        self.runs: dict[str, ShareRun] = {}
        self.on_idle = on_idle
        self.idle_since = time.monotonic()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._nvml_open = False
        self._ended_one = False  # the linger clock runs once a first task has ended
        self.tracker = ProcessTracker()

    # ---- the host's GPU ----

    def open(self, settings: HostSettings, driver: Any, error: str = "") -> None:
        """At registration: find the GPU, start the watchdog and the linger clock. With `error` (the
        ExecutorInfo.data could not be read) every task fails with it."""
        self.settings = settings
        if error:
            self.device, self.device_error = None, error
        else:
            self.device, self.device_error, self._nvml_open = find_device(
                self.config, self.env, self.inventory, self.backend, settings.device_memory
            )
        if self.device is not None:
            log.info("share host %s (%s) on GPU %s, %d MiB", settings.host, settings.isolation.value,
                     self.device.id, self.device.memory_mib)  # fmt: skip
            mps_root = os.path.join(self.config.sandbox, "mps")
            control = self.backend.mps_control() if self.backend is not None and self._nvml_open else None
            self.mps = MpsDaemon(control, self.device.id, mps_root, self.env)
            if self.backend is None:  # "not on PATH" only when NVML answered and found no binary
                self.mps.missing = "NVML is not available on this host (no pynvml), so MPS cannot be used"
            elif not self._nvml_open:
                self.mps.missing = "NVML could not be opened on this host, so MPS cannot be used"
            if self.device.nvml and self.device.index is not None and self.backend is not None:
                self.watchdog = MemoryWatchdog(self.backend, self.device.index, self._over, tree=self._tree)
                self.watchdog.start()
        else:
            log.error("share host %s cannot run shares: %s", settings.host, self.device_error)
        self.idle_since = time.monotonic()
        threading.Thread(target=self._linger, args=(driver,), name="linger", daemon=True).start()
        threading.Thread(target=self._track, name="process-tracker", daemon=True).start()

    @property
    def simulated(self) -> bool:
        """The host runs on the fake NVML (or a simulated MPS daemon): nothing holds on a real GPU."""
        return bool(self.config.fake_gpus) or (self.mps is not None and self.mps.simulated)

    def _tree(self, root: int) -> set[int]:
        """The processes the watchdog counts for a task: all the tracker knows of, else `root`'s tree
        (an image share's container)."""
        tracked = self.tracker.pids_of_root(root)
        return tracked if tracked is not None else process_tree(root)

    def _track(self) -> None:
        while not self._stopping.wait(TRACK_INTERVAL):
            if self.tracker.tracking():
                try:
                    self.tracker.refresh()
                except Exception:
                    log.exception("cannot walk /proc for the tasks' processes")

    def close(self) -> None:
        """After the driver stopped: kill what still runs, stop the watchdog and the MPS daemon."""
        self._stopping.set()
        with self._lock:
            left = [run for run in self.runs.values() if not run.done.is_set()]
        for run in left:
            self._signal(run, signal.SIGKILL)
            run.done.wait(5.0)
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.mps is not None:
            self.mps.stop()
        if self._nvml_open and self.backend is not None:
            with contextlib.suppress(NvmlError):
                self.backend.shutdown()
            self._nvml_open = False

    # ---- what the executor asks ----

    def start(self, driver: Any, task: Mapping[str, Any]) -> ShareRun | None:
        """Run a share task on its own thread; None when it already runs here."""
        task_id = str(task["task_id"]["value"])
        grace = kill_grace_seconds(task.get("kill_policy"), self.config.shutdown_grace)
        directory = os.path.join(self.config.sandbox, "tasks", task_id.replace("/", "_"))
        with self._lock:
            if task_id in self.runs and not self.runs[task_id].terminal:
                log.warning("task %s is already running here: LAUNCH ignored", task_id)
                return None
            run = ShareRun(task_id, task, directory, grace)
            self.runs[task_id] = run
        self.updates.restart(task_id)
        threading.Thread(target=self._run, args=(driver, run), name=f"task-{task_id}", daemon=True).start()
        return run

    def kill(self, driver: Any, task_id: str, killing: bool) -> bool:
        """TASK_KILLING (when the framework takes it), then SIGTERM, SIGKILL after the grace."""
        with self._lock:
            run = self.runs.get(task_id)
            if run is None or run.terminal:
                return False
            first, run.killed = not run.killed, True
        if first and killing:
            self.updates.send_async(driver, task_id, "TASK_KILLING", "Killing the task")
        threading.Thread(
            target=self._stop, args=(run, run.grace), name=f"kill-{task_id}", daemon=True
        ).start()
        return True

    def stop_all(self, budget: float) -> None:
        """SHUTDOWN: stop every task within `budget` seconds and wait for their terminal updates."""
        with self._lock:
            active = [run for run in self.runs.values() if not run.terminal]
            for run in active:
                run.killed = True
        for run in active:
            threading.Thread(target=self._stop, args=(run, min(run.grace, budget)), daemon=True).start()
        deadline = time.monotonic() + budget + 0.5
        for run in active:
            run.done.wait(max(0.0, deadline - time.monotonic()))

    def active(self) -> int:
        """Tasks not ended yet (a task counts until its terminal update was sent)."""
        with self._lock:
            return sum(not run.done.is_set() for run in self.runs.values())

    # ---- one task ----

    def _run(self, driver: Any, run: ShareRun) -> None:
        try:
            self.updates.send(driver, run.task_id, "TASK_STARTING")
            ending = self._launch_and_wait(driver, run)
        except Exception as exc:  # a bug here must still end the task
            log.exception("task %s failed in the share host", run.task_id)
            ending = Ending("TASK_FAILED", f"Executor error: {exc}", REASON_LAUNCH_FAILED)
        if self.watchdog is not None:
            self.watchdog.forget(run.task_id)
        self._sweep(run)
        with self._lock:
            run.terminal = True
        self.updates.send(driver, run.task_id, ending.state, ending.message, reason=ending.reason,
                          labels=ending.labels)  # fmt: skip
        with self._lock:
            run.done.set()
            self._ended_one = True
            if self.active() == 0:
                self.idle_since = time.monotonic()

    def _launch_and_wait(self, driver: Any, run: ShareRun) -> Ending:
        try:
            task = decode_share_task(run.task.get("data"))
            if task.kill_grace is not None:
                run.grace = task.kill_grace
            started = self._start(run, task)
        except (ShareError, MpsError, FetchError, DockerLaunchError, OSError) as exc:
            log.warning("task %s cannot start: %s", run.task_id, exc)
            return Ending("TASK_FAILED", f"Failed to launch the share: {exc}", REASON_LAUNCH_FAILED)
        if started is None:
            return Ending("TASK_KILLED", "Killed before the task started")
        assert self.settings is not None
        labels = running_report(task, started.device, started.cap, self.settings.host)
        labels[LABEL_ENFORCEMENT] = self._enforcement(task, started)
        message = f"{task.isolation.value} share {task.share_text} of GPU {started.device}"
        self.updates.send(
            driver, run.task_id, "TASK_RUNNING", message, labels=labels, data=running_data(labels)
        )
        if task.isolation is Isolation.CAPPED and self.watchdog is not None and started.pid is not None:
            self.watchdog.watch(run.task_id, started.pid, started.cap)
        with self._lock:
            killed = run.killed
        if killed:  # a kill that came while it started
            self._stop(run, run.grace)
        return self._ending(run, self._wait(run))

    def _start(self, run: ShareRun, task: ShareTask) -> Started | None:
        """Check the share against this host, make its sandbox, fetch, then start it."""
        settings, device = self.settings, self.device
        if settings is None or device is None:
            raise ShareError(self.device_error or "the share host has not registered yet")
        if task.isolation is not settings.isolation:
            raise ShareError(
                f"this share host runs {settings.isolation.value} shares, not {task.isolation.value}"
            )
        env, label, cap = self._level(task, device)
        os.makedirs(run.directory, exist_ok=True)
        for name in ("stdout", "stderr"):
            open(os.path.join(run.directory, name), "ab").close()
        fetch_uris(task.uris, run.directory, lambda line: self._note(run, line))
        with self._lock:
            if run.killed:
                return None
            if task.image is None:
                run.process = self._popen(run, task, env)
                return Started(label, cap, run.process.pid)
        return Started(label, cap, self._run_container(run, task, env, label))

    def _enforcement(self, task: ShareTask, started: Started) -> str:
        process_memory = self.device.process_memory if self.device is not None else False
        return enforcement(task.isolation, started.device, started.cap, image=task.image is not None,
                           simulated=self.simulated, process_memory=process_memory)  # fmt: skip

    def _level(self, task: ShareTask, device: ShareDevice) -> tuple[dict[str, str], str, int]:
        """The task's environment of its level, the device it is labelled with, and its memory."""
        mig: MigInstance | None = None
        mps_dirs = None
        cap = memory_cap(task, device.memory_mib or (self.settings.device_memory if self.settings else 0))
        if task.isolation is Isolation.MIG:
            mig = mig_instance(device.mig, task)
            cap = mig.memory_mib
        elif task.isolation is Isolation.MPS:
            if self.mps is None:
                raise MpsError("MPS is not available: the share host has no GPU")
            mps_dirs = self.mps.ensure_started()
        elif task.isolation is Isolation.CAPPED:
            if self.watchdog is None:
                raise ShareError(f"NVML does not answer for GPU {device.id}, so the memory watchdog cannot "
                                 "enforce a capped share; the task is not run unenforced")  # fmt: skip
            if cap <= 0:
                raise ShareError(
                    "a capped share needs a memory cap: neither gpu_memory nor the GPU's memory is known"
                )
        env = share_environment(task, device.id, cap, mig.uuid if mig else None, mps_dirs)
        return env, mig.uuid if mig else device.id, cap

    def _popen(self, run: ShareRun, task: ShareTask, level_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start a plain command (called under the lock) and track its processes from now on."""
        # MESOS_GPU_FAKE_GPU_PROCESSES only on the fake NVML: a test task declares its GPU memory there.
        fake_dir = (getattr(self.backend, "processes_dir", None) or self.env.get(PROCESSES_ENV)
                    if self.config.fake_gpus else None)  # fmt: skip
        env = task_environment(self.env, level_env, run.task_id, run.directory, fake_dir)
        out_path, err_path = (os.path.join(run.directory, name) for name in ("stdout", "stderr"))
        with open(out_path, "ab") as out, open(err_path, "ab") as err:
            process = subprocess.Popen(
                ["/bin/sh", "-c", task.command or ""], cwd=run.directory, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, process_group=0,
            )  # fmt: skip
        marker = {"MESOS_TASK_ID": run.task_id, "MESOS_SANDBOX": run.directory}
        self.tracker.track(run.task_id, process.pid, marker)
        return process

    def _run_container(self, run: ShareRun, task: ShareTask, env: dict[str, str], device: str) -> int | None:
        assert task.image is not None
        env["MESOS_TASK_ID"] = run.task_id  # MESOS_SANDBOX: the container's mount; nothing of the executor's
        host_dir = self._host_path(run.directory)
        ipc_mode, binds = None, {}
        if task.isolation is Isolation.MPS:  # the client reaches the daemon through its pipe directory
            ipc_mode, binds = "host", {self._host_path(env["CUDA_MPS_PIPE_DIRECTORY"]): MPS_PIPE_MOUNT}
            env["CUDA_MPS_PIPE_DIRECTORY"] = MPS_PIPE_MOUNT
            env.pop("CUDA_MPS_LOG_DIRECTORY", None)  # the daemon's, not the client's
        spec = ContainerSpec(
            image=task.image, command=task.command, env=env, gpus=(device,), cpus=task.cpus,
            mem_mb=int(task.mem) if task.mem else None, sandbox=host_dir,
            framework_id=self.config.framework_id, task_id=run.task_id,
            executor_id=self.config.executor_id, name=container_name(run.task_id),
            network_mode=self.config.network, working_dir=SANDBOX_MOUNT, ipc_mode=ipc_mode, binds=binds,
        )  # fmt: skip
        launcher = self.launcher()
        run.container_id = launcher.run(spec)
        return launcher.pid(run.container_id)

    def _host_path(self, path: str) -> str:
        """A path of this process's sandbox as the engine's host sees it (MESOS_DIRECTORY)."""
        relative = os.path.relpath(path, self.config.sandbox)
        if relative.startswith(".."):
            return path  # outside the sandbox (a short MPS pipe directory): the same on the host
        return os.path.join(self.config.host_sandbox, relative)

    def launcher(self) -> DockerLauncher:
        with self._lock:
            if self._launcher is None:
                self._launcher = self._launcher_factory()
            return self._launcher

    def _wait(self, run: ShareRun) -> int | None:
        """The exit status (negative: the signal) of the task's process or container."""
        if run.process is not None:
            return run.process.wait()
        assert run.container_id is not None
        launcher, output = self.launcher(), SandboxOutput(run.directory, to_stdio=False)
        follower = output.follow(launcher, run.container_id)
        try:
            code: int | None = launcher.wait(run.container_id)
        except DockerLaunchError as exc:
            log.error("lost container %s: %s", run.container_id[:12], exc)
            code = None
        output.finish(launcher, run.container_id, follower)
        try:
            launcher.remove(run.container_id)
        except DockerLaunchError as exc:
            log.warning("cannot remove container %s: %s", run.container_id[:12], exc)
        return code

    def _ending(self, run: ShareRun, code: int | None) -> Ending:
        labels = {"exit_code": str(code)} if code is not None else {}
        if run.over is not None:
            return Ending("TASK_FAILED", run.over, REASON_MEMORY, labels)
        if code is not None and code < 0:
            text = f"Command terminated with signal {signal.strsignal(-code) or -code}"
            return Ending(
                "TASK_KILLED" if run.killed else "TASK_FAILED", text, None if run.killed else REASON_EXITED
            )
        if run.killed:
            return Ending("TASK_KILLED", f"Command stopped (exit status {code})", None, labels)
        if code == 0:
            return Ending("TASK_FINISHED", "Command exited with status 0", None, labels)
        if code is None:
            return Ending("TASK_FAILED", "Lost the task's container", REASON_EXITED)
        return Ending("TASK_FAILED", f"Command exited with status {code}", REASON_EXITED, labels)

    # ---- stopping ----

    def _signal(self, run: ShareRun, signum: int) -> None:
        """Signal every process of a plain share (even once its root has exited), or stop its container."""
        if run.process is not None:
            self.tracker.kill(run.task_id, signum)
        elif run.container_id is not None:
            try:
                self.launcher().stop(run.container_id, grace=0 if signum == signal.SIGKILL else 1)
            except DockerLaunchError as exc:
                log.warning("cannot stop container %s: %s", run.container_id[:12], exc)

    def _sweep(self, run: ShareRun) -> None:
        """At a task's end: SIGKILL whatever is left of it (background, setsid'd, double-forked)."""
        if run.process is None:
            return
        left = self.tracker.kill(run.task_id, signal.SIGKILL, final=True)
        if left:
            log.info("task %s ended: killed %d process(es) it left: %s", run.task_id, len(left), sorted(left))
        self.tracker.forget(run.task_id)

    def _stop(self, run: ShareRun, grace: float) -> None:
        """SIGTERM the task's process group (or stop its container), SIGKILL after `grace`."""
        if run.container_id is not None:
            try:
                self.launcher().stop(run.container_id, grace=grace)
            except DockerLaunchError as exc:
                log.warning("cannot stop container %s: %s", run.container_id[:12], exc)
            return
        self._signal(run, signal.SIGTERM)
        if run.process is not None:
            try:
                run.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(run, signal.SIGKILL)

    def _over(self, task_id: str, used: int, allowed: int) -> None:
        """The watchdog's verdict: kill the task at once."""
        with self._lock:
            run = self.runs.get(task_id)
            if run is None or run.terminal:
                return
            run.over = over_message(used, allowed)
        self._signal(run, signal.SIGKILL)

    def _note(self, run: ShareRun, line: str) -> None:
        with open(os.path.join(run.directory, "stderr"), "a") as handle:
            handle.write(line + "\n")

    def _linger(self, driver: Any) -> None:
        """Ask to stop once no task has run for `linger_seconds` after one ended (before the first task:
        at least FIRST_TASK_WAIT_SECONDS, since the scheduler launches it with the host's ExecutorInfo)."""
        linger = self.settings.linger_seconds if self.settings else 0.0
        while not self._stopping.wait(min(0.2, max(0.02, linger / 10))):
            with self._lock:
                wait = linger if self._ended_one else max(linger, FIRST_TASK_WAIT_SECONDS)
                idle = self.active() == 0 and time.monotonic() - self.idle_since >= wait
            if idle:
                log.info("no task for %.1fs: the share host exits", linger)
                self._stopping.set()
                self.on_idle(driver)
                return
