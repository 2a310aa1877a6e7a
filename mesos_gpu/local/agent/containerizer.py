"""How the local agent starts a container's process, as Mesos' containerizer and fetcher do: the command,
the GPU and command environment, the image, the runner (host or Docker) and the URI fetch before it.

    host = HostRunner(loop)
    containerizer = Containerizer(loop, host, None, docker="off", docker_host=None, real_gpus=True)
    spec, runner, warnings = containerizer.launch_spec(task_info, [0], sandbox, env, name="mesos-C1")
    fetch_then(sandbox, uris, then=lambda: runner.start(spec, on_exit), failed=..., wanted=...)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from tornado.ioloop import IOLoop

from mesos_gpu.local.agent.command_executor import command_argv, command_environment
from mesos_gpu.local.agent.gpus import visible_devices_env
from mesos_gpu.local.agent.runners import DockerRunner, LaunchSpec, Runner
from mesos_gpu.local.agent.sandbox import FetchError, Sandbox, fetch_uris

log = logging.getLogger(__name__)

# How long "no Docker engine" is believed before an image task looks for one again (seconds): short,
# so an engine started after the first image task is used; a found engine is kept.
DOCKER_RECHECK_SECONDS = 5.0


def scalar_resource(resources: list[dict[str, Any]], name: str) -> float:
    """The sum of the scalar resources called `name` in a Resource JSON list."""
    return sum(float(r.get("scalar", {}).get("value", 0)) for r in resources if r.get("name") == name)


def container_image(container: dict[str, Any] | None, gpus: list[int]) -> tuple[str | None, list[str]]:
    """The Docker image a ContainerInfo names (MESOS+mesos.image.docker.name or DOCKER+docker.image), and
    the warnings for the task's status."""
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


_fetches: set[asyncio.Future[None]] = set()  # in flight: asyncio keeps only weak references to tasks


def fetch_then(
    sandbox: Sandbox,
    uris: list[dict[str, Any]],
    *,
    then: Callable[[], None],
    failed: Callable[[FetchError], None],
    wanted: Callable[[], bool],
) -> asyncio.Future[None]:
    """Fetch `uris` into the sandbox in a worker thread, then, back on the loop, call `then()`; on a
    fetch error write it to the sandbox's stderr and call `failed(error)`. Each only while `wanted()`
    holds: a container killed meanwhile is not fetched for, started or failed (a kill before the
    process starts has ended it already). Call on the loop thread; the future is done once the
    completion has been handled."""

    async def run() -> None:
        if not wanted():
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, fetch_uris, sandbox, uris)
        except FetchError as exc:
            sandbox.append_stderr(str(exc))
            if wanted():
                failed(exc)
            return
        if wanted():
            then()

    future = asyncio.ensure_future(run())
    _fetches.add(future)
    future.add_done_callback(_fetch_done)
    return future


def _fetch_done(future: asyncio.Future[None]) -> None:
    _fetches.discard(future)
    if not future.cancelled() and future.exception() is not None:
        log.error("URI fetch completion failed", exc_info=future.exception())


class Containerizer:
    """Turns a TaskInfo or ExecutorInfo into a LaunchSpec and the runner to start it with: the host
    runner, or a Docker runner (connected on first use unless `docker="off"`) for image tasks."""

    def __init__(
        self,
        loop: IOLoop,
        runner: Runner,
        docker_runner: Runner | None,
        *,
        docker: str,
        docker_host: str | None,
        real_gpus: bool,
        gpu_env: dict[str, str] | None = None,
    ) -> None:
        self.loop = loop
        self.runner = runner
        self.real_gpus = real_gpus
        self.gpu_env = dict(gpu_env or {})  # what a process holding GPUs also gets (the fake NVML's)
        self._docker_runner = docker_runner
        self._docker_host = docker_host
        self._docker_off = docker == "off"
        self._docker_missing_at: float | None = None  # when an engine was last looked for and not found
        self._owns_docker_runner = docker_runner is None  # one it connected itself: closed by close()

    def launch_spec(
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
        env.update(visible_devices_env(gpus, real=self.real_gpus))
        if gpus:
            env.update(self.gpu_env)
        env.update(command_environment(command))
        image, warnings = container_image(info.get("container"), gpus)
        runner, warnings = self._choose_runner(image, warnings, sandbox)
        resources = info.get("resources", []) if task_id is not None else []
        spec = LaunchSpec(
            argv=argv,
            executable=executable,
            env=env,
            cwd=sandbox.directory,
            stdout=sandbox.stdout,
            stderr=sandbox.stderr,
            image=image if runner is not self.runner else None,
            gpus=gpus,
            name=name,
            task_id=task_id,
            cpus=scalar_resource(resources, "cpus") or None,
            mem_mb=scalar_resource(resources, "mem") or None,
        )
        return spec, runner, warnings

    def close(self) -> None:
        """Close the Docker client this containerizer connected itself."""
        if self._owns_docker_runner and isinstance(self._docker_runner, DockerRunner):
            self._docker_runner.close()

    def _choose_runner(
        self, image: str | None, warnings: list[str], sandbox: Sandbox
    ) -> tuple[Runner, list[str]]:
        if image is None:
            return self.runner, warnings
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
        return self.runner, [warning, *warnings]

    def _docker(self) -> Runner | None:
        """The Docker runner: a connected engine is kept; a missing one is looked for again at the next
        image task once DOCKER_RECHECK_SECONDS have passed, so an engine started later is used."""
        if self._docker_runner is not None or self._docker_off:
            return self._docker_runner
        now = time.monotonic()
        if self._docker_missing_at is not None and now - self._docker_missing_at < DOCKER_RECHECK_SECONDS:
            return None
        try:
            from mesos_gpu.local.agent import runners

            self._docker_runner = runners.docker_runner(self.loop, self._docker_host)
            self._docker_missing_at = None
        except Exception as exc:
            log.info("no Docker engine for image tasks: %s", exc)
            self._docker_missing_at = now
        return self._docker_runner
