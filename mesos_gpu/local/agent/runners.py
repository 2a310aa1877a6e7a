"""How a local agent runs a container's process: on the host in a new session, or in Docker.

A runner starts a process and reports its raw wait status back on the agent's IOLoop thread. Signals go
to the whole process group, so a task's children are covered and the agent itself never is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)
OUTPUT_DRAIN_SECONDS = 10.0  # how long an exited container's output may take to arrive in full

ExitCallback = Callable[[int], None]  # raw wait status (exit 1 -> 256, SIGKILL -> 9)


class Loop(Protocol):
    """The part of tornado's IOLoop a runner uses to hand results back to the agent's thread."""

    def add_callback(self, callback: Callable[..., object], *args: object) -> None: ...


@dataclass
class LaunchSpec:
    """What to run: argv (already resolved from shell/arguments), environment, cwd and log files."""

    argv: Sequence[str]
    env: dict[str, str]
    cwd: Path
    stdout: Path
    stderr: Path
    executable: str | None = None  # execvp target when argv[0] is not it (CommandInfo shell=false)
    image: str | None = None  # a Docker image; host runners ignore it
    gpus: list[int] = field(default_factory=list)
    name: str = ""
    task_id: str | None = None
    cpus: float | None = None
    mem_mb: float | None = None
    binds: list[Any] = field(default_factory=list)  # `mounts.Bind`s: Docker only (host runs get symlinks)


class RunningProcess(Protocol):
    """A started container process."""

    @property
    def pid(self) -> int | None: ...

    @property
    def exited(self) -> bool: ...

    def signal(self, signum: int) -> None: ...


class Runner(Protocol):
    """Starts container processes."""

    def start(self, spec: LaunchSpec, on_exit: ExitCallback) -> RunningProcess: ...


def wait_status_from_returncode(returncode: int) -> int:
    """Rebuild the raw wait status from subprocess' returncode (negative = killed by that signal)."""
    return -returncode if returncode < 0 else (returncode & 0xFF) << 8


class HostProcess:
    """A process group started by HostRunner."""

    def __init__(self, popen: subprocess.Popen[bytes], loop: Loop, on_exit: ExitCallback) -> None:
        self._popen = popen
        self._loop = loop
        self._on_exit = on_exit
        self._exited = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"reaper-{popen.pid}", daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int | None:
        return self._popen.pid

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    def signal(self, signum: int) -> None:
        """Send `signum` to the process group (still alive members only)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)

    def join(self, timeout: float | None = None) -> None:
        self._watcher.join(timeout)

    def _watch(self) -> None:
        returncode = self._popen.wait()
        # The leader is gone; like a destroyed container (its cgroup), nothing of its session survives
        # it: its own group, and the groups it made (a share host runs each task in one).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        kill_session(self._popen.pid)
        self._exited.set()
        try:
            self._loop.add_callback(self._on_exit, wait_status_from_returncode(returncode))
        except RuntimeError:  # the loop is closed: the agent is gone
            log.debug("process %s exited after its agent stopped", self._popen.pid)


def kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (Linux /proc; nothing elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state, ppid, pgrp, session, ...
        if len(fields) > 3 and fields[3] == str(sid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


class HostRunner:
    """Runs the command directly on the host, in a new session (a pymesos executor's killpg(0) is safe)."""

    def __init__(self, loop: Loop) -> None:
        self._loop = loop

    def start(self, spec: LaunchSpec, on_exit: ExitCallback) -> HostProcess:
        with spec.stdout.open("ab") as out, spec.stderr.open("ab") as err:
            popen = subprocess.Popen(
                list(spec.argv),
                executable=spec.executable,
                cwd=str(spec.cwd),
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        return HostProcess(popen, self._loop, on_exit)


# Variables a host process gets from the agent that make no sense inside an image: the container sees
# its GPUs renumbered from 0 (the device request), and its sandbox at the mount point.
_HOST_ONLY_ENV = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "MESOS_SANDBOX",
    "PWD",
)


class DockerProcess:
    """A task container started by DockerRunner; its output is streamed into the sandbox's stdout and
    stderr; a watcher thread waits for it, removes it and reports `exit code << 8`."""

    def __init__(
        self, launcher: Any, container_id: str, spec: LaunchSpec, loop: Loop, on_exit: ExitCallback
    ) -> None:
        self._launcher = launcher
        self.container_id = container_id
        self._spec = spec
        self._loop = loop
        self._on_exit = on_exit
        self._exited = threading.Event()
        self._follower: Any = None
        try:  # the output reaches the sandbox while the container runs, as a host process's does
            self._follower = launcher.follow_logs(container_id, self._write)
        except Exception as exc:
            log.warning("cannot follow the output of container %s: %s", container_id[:12], exc)
        self._watcher = threading.Thread(target=self._watch, name=f"docker-{container_id[:12]}", daemon=True)
        self._watcher.start()

    def _write(self, stream: str, data: bytes) -> None:
        with open(self._spec.cwd / stream, "ab") as handle:
            handle.write(data)

    @property
    def pid(self) -> int | None:
        return None

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    def signal(self, signum: int) -> None:
        """Deliver `signum` to the container's main process (asynchronously: engine calls block)."""

        def kill() -> None:
            try:
                self._launcher.client.api.kill(self.container_id, signal=int(signum))
            except Exception as exc:  # already gone, or the engine is
                log.debug("signal %s to container %s: %s", signum, self.container_id[:12], exc)

        if not self.exited:
            threading.Thread(target=kill, daemon=True).start()

    def join(self, timeout: float | None = None) -> None:
        self._watcher.join(timeout)

    def _watch(self) -> None:
        try:
            code = self._launcher.wait(self.container_id)
        except Exception as exc:
            log.warning("lost container %s: %s", self.container_id[:12], exc)
            code = 255
        try:
            if self._follower is not None:
                for problem in self._follower.finish(OUTPUT_DRAIN_SECONDS):
                    log.warning("%s", problem)
            else:
                self._launcher.copy_logs(self.container_id, str(self._spec.cwd))
            self._launcher.remove(self.container_id)
        except Exception as exc:
            log.warning("cleaning up container %s: %s", self.container_id[:12], exc)
        self._exited.set()
        try:
            self._loop.add_callback(self._on_exit, (code & 0xFF) << 8)
        except RuntimeError:
            log.debug("container %s exited after its agent stopped", self.container_id[:12])


class DockerRunner:
    """Runs a task's image through the Docker Engine (isolator.docker's launcher), with a GPU device
    request for exactly the task's GPU indices, the sandbox mounted at /mnt/mesos/sandbox (the working
    directory) and host networking (tasks bind ports from their offers, as on a Mesos agent)."""

    def __init__(self, loop: Loop, launcher: Any, network_mode: str = "host") -> None:
        self._loop = loop
        self.launcher = launcher
        self.network_mode = network_mode

    def close(self) -> None:
        """Close the engine connection; containers still running are left to their kill."""
        self.launcher.close()

    def start(self, spec: LaunchSpec, on_exit: ExitCallback) -> DockerProcess:
        from isolator import docker as isolator_docker

        if spec.image is None:
            raise ValueError("DockerRunner needs an image")
        argv = list(spec.argv)
        command: str | list[str]
        if argv[:2] == ["/bin/sh", "-c"] and spec.executable is None:
            command = argv[2] if len(argv) > 2 else ""
        else:
            command = [spec.executable or argv[0], *argv[1:]]
        host_env = os.environ
        env = {
            k: v
            for k, v in spec.env.items()
            if k not in _HOST_ONLY_ENV and (k.startswith("MESOS_") or host_env.get(k) != v)
        }
        container = isolator_docker.ContainerSpec(
            image=spec.image,
            command=command,
            env=env,
            gpus=tuple(str(i) for i in spec.gpus),
            cpus=spec.cpus,
            mem_mb=int(spec.mem_mb) if spec.mem_mb else None,
            sandbox=str(spec.cwd),
            framework_id=spec.env.get("MESOS_FRAMEWORK_ID"),
            task_id=spec.task_id,
            executor_id=spec.env.get("MESOS_EXECUTOR_ID"),
            name=spec.name or None,
            network_mode=self.network_mode,
            working_dir=isolator_docker.SANDBOX_MOUNT,
            mounts=tuple((b.source, b.target, "ro" if b.read_only else "rw") for b in spec.binds),
            named_volumes=tuple((b.source, b.driver, dict(b.options)) for b in spec.binds if b.driver),
        )
        container_id = self.launcher.run(container)
        return DockerProcess(self.launcher, container_id, spec, self._loop, on_exit)


def docker_runner(loop: Loop, docker_host: str | None = None, timeout: float = 5.0) -> DockerRunner:
    """A DockerRunner on a reachable engine (`docker_host`, else DOCKER_HOST or the default socket);
    raises when none answers."""
    from isolator import docker as isolator_docker

    client = isolator_docker.connect(docker_host, timeout)
    launcher = isolator_docker.DockerLauncher(client, gpu_mode=isolator_docker.GpuMode.DEVICE_REQUEST)
    if not launcher.available():
        client.close()
        raise RuntimeError(f"no Docker engine answers at {docker_host or 'the default address'}")
    return DockerRunner(loop, launcher)
