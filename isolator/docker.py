"""The Docker Engine launcher for GPU tasks (the docker SDK's only home): one container per task, on
exactly the task's GPUs, with CPU and memory limits, a sandbox mount and Mesos labels.

Public API (stable; `mesos_gpu.local` reuses it to run task images)::

    from isolator.docker import ContainerSpec, DockerLauncher, GpuMode, connect

    launcher = DockerLauncher(connect(), gpu_mode=GpuMode.DEVICE_REQUEST)
    spec = ContainerSpec(
        image="busybox:local",                 # must exist locally (no pull unless pull=True)
        command="echo $GREETING",              # str: run by /bin/sh -c; list: argv; None: image default
        env={"GREETING": "hi"},
        gpus=("GPU-8d0e...", "1"),             # NVIDIA device ids: UUIDs or indices; () for none
        cpus=1.5, mem_mb=512,                  # nano_cpus and a hard memory limit (swap included)
        sandbox="/var/lib/mesos/.../runs/X",   # host dir, mounted read-write at /mnt/mesos/sandbox
        framework_id="fw-1", task_id="task-1", # become labels (see LABEL_*)
        name=None, network_mode="none",
    )
    cid = launcher.run(spec)                   # create + start; returns the container id
    code = launcher.wait(cid, timeout=60)      # exit code (ContainerTimeoutError when it runs longer)
    launcher.stop(cid, grace=5)                # SIGTERM, SIGKILL after `grace` seconds
    follower = launcher.follow_logs(cid, write)  # write("stdout"|"stderr", chunk) as the container writes
    launcher.copy_logs(cid, sandbox)           # container stdout/stderr -> <sandbox>/stdout, /stderr
    launcher.remove(cid)                       # force-remove; a missing container is not an error
    launcher.list_by_label({LABEL_FRAMEWORK_ID: "fw-1"})   # -> [ContainerRef], for orphan clean-up
    engine_status("unix:///var/run/docker.sock")   # -> EngineStatus(reachable, nvidia_runtime, error)
    connect(base_url=None, timeout=10)         # -> docker.DockerClient; DockerUnavailableError if none

The engine-free half lives in `isolator.containers`: the spec and result types, the GPU modes, the
error tree, and the create arguments built from a spec; this module sends them to the engine and
re-exports those names. docker SDK exceptions never escape this module (they become
`DockerLaunchError`s). The test fixture plugin `tests.fixtures.docker` starts a real dockerd.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import docker
import docker.errors
import requests.exceptions

from isolator.containers import (
    LABEL_EXECUTOR_ID,
    LABEL_FRAMEWORK_ID,
    LABEL_GPUS,
    LABEL_MANAGED,
    LABEL_TASK_ID,
    SANDBOX_MOUNT,
    ContainerNotFoundError,
    ContainerRef,
    ContainerSpec,
    ContainerTimeoutError,
    DockerLaunchError,
    DockerUnavailableError,
    EngineStatus,
    GpuAccess,
    GpuMode,
    GpuRequestRejectedError,
    ImageNotFoundError,
    create_arguments,
)

# The public API of the Docker launcher, including the engine-free names it re-exports from
# isolator.containers (mesos_gpu.local and the integration tests import them from here).
__all__ = [
    "LABEL_EXECUTOR_ID",
    "LABEL_FRAMEWORK_ID",
    "LABEL_GPUS",
    "LABEL_MANAGED",
    "LABEL_TASK_ID",
    "SANDBOX_MOUNT",
    "ContainerNotFoundError",
    "ContainerRef",
    "ContainerSpec",
    "ContainerTimeoutError",
    "DockerLaunchError",
    "DockerLauncher",
    "DockerUnavailableError",
    "EngineStatus",
    "GpuMode",
    "GpuRequestRejectedError",
    "ImageNotFoundError",
    "LogFollower",
    "connect",
    "detect_gpu_mode",
    "engine_status",
]


def detect_gpu_mode(client: docker.DockerClient) -> GpuMode:
    """DEVICE_REQUEST when the engine lists the `nvidia` runtime (NVIDIA Container Toolkit), else LEGACY."""
    try:
        info = client.info()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise DockerUnavailableError(f"cannot reach the Docker Engine: {exc}") from exc
    runtimes = info.get("Runtimes") or {}
    return GpuMode.DEVICE_REQUEST if "nvidia" in runtimes else GpuMode.LEGACY


#: The API version used to ask an engine for its own: every engine since Docker 20.10 speaks it.
PROBE_API_VERSION = "1.41"


def connect(base_url: str | None = None, timeout: float = 10.0) -> docker.DockerClient:
    """A client for the engine at `base_url` (else DOCKER_HOST, else the default socket), speaking the
    engine's own API version; `DockerUnavailableError` when no engine answers.

    The SDK leaks its socket when a connection fails (its constructor asks the engine for its
    version; its unix adapter never closes a socket whose connect failed). So a unix socket is tried
    first with a plain socket that is always closed, and the engine's version is asked with a fixed
    API version on a probe client that is always closed.
    """
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        _check_unix_socket(url.removeprefix("unix://"), timeout)
    try:
        probe = docker.DockerClient(base_url=url, version=PROBE_API_VERSION, timeout=timeout)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise DockerUnavailableError(f"cannot set up a Docker client for {url}: {exc}") from exc
    try:
        version = str(probe.version()["ApiVersion"])
    except (docker.errors.DockerException, requests.exceptions.RequestException, KeyError) as exc:
        raise DockerUnavailableError(f"no Docker engine answers at {url}: {exc}") from exc
    finally:
        probe.close()
    return docker.DockerClient(base_url=url, version=version, timeout=timeout)


def _check_unix_socket(path: str, timeout: float) -> None:
    if not os.path.exists(path):
        raise DockerUnavailableError(f"no Docker engine: {path} does not exist")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            raise DockerUnavailableError(f"no Docker engine answers at unix://{path}: {exc}") from exc


def engine_status(base_url: str | None = None, timeout: float = 10.0) -> EngineStatus:
    """Ask the engine at `base_url` (default: DOCKER_HOST) whether it answers and has the toolkit."""
    try:
        client = connect(base_url, timeout)
    except DockerUnavailableError as exc:
        return EngineStatus(reachable=False, nvidia_runtime=False, error=str(exc))
    try:
        if not DockerLauncher(client).available():
            return EngineStatus(
                reachable=False, nvidia_runtime=False, error=f"no answer from {client.api.base_url}"
            )
        try:
            mode = detect_gpu_mode(client)
        except DockerLaunchError as exc:
            return EngineStatus(reachable=False, nvidia_runtime=False, error=str(exc))
        return EngineStatus(reachable=True, nvidia_runtime=mode is GpuMode.DEVICE_REQUEST)
    finally:
        client.close()


STREAMS = ("stdout", "stderr")


class LogFollower:
    """Follows one container's stdout and stderr (a thread each) into `write(stream, chunk)`.

    The threads end when the container exits (the engine closes the streams). `received` counts the
    bytes of each stream; `failed` says why a stream stopped early (an engine error), so a caller can
    fall back to reading the whole logs of a stream that delivered nothing."""

    def __init__(
        self, client: docker.DockerClient, container_id: str, write: Callable[[str, bytes], None]
    ) -> None:
        self.container_id = container_id
        self.received = dict.fromkeys(STREAMS, 0)
        self.failed: dict[str, str] = {}
        self._client = client
        self._write = write
        self._threads = [
            threading.Thread(
                target=self._follow, args=(name,), daemon=True, name=f"logs-{name}-{container_id[:12]}"
            )
            for name in STREAMS
        ]

    def start(self) -> LogFollower:
        for thread in self._threads:
            thread.start()
        return self

    def _follow(self, name: str) -> None:
        try:
            chunks = self._client.api.logs(
                self.container_id, stdout=name == "stdout", stderr=name == "stderr", stream=True, follow=True
            )
            for chunk in chunks:
                self._write(name, bytes(chunk))
                self.received[name] += len(chunk)
        except Exception as exc:  # the engine, or the writer (a closed file): say why the stream stopped
            self.failed[name] = f"{type(exc).__name__}: {exc}"

    def join(self, timeout: float) -> bool:
        """Wait for both streams to end (the container exited); False if one still runs at `timeout`."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def finish(self, timeout: float) -> list[str]:
        """After the container exited: wait for the streams to end, and copy whole a stream that could
        not be followed at all (nothing received). Returns what went wrong, as sentences to log."""
        cid = self.container_id[:12]
        problems = [] if self.join(timeout) else [f"the output of {cid} was still streaming at the end"]
        for name in STREAMS:
            why = self.failed.get(name)
            if why is None:
                continue
            if self.received[name]:
                problems.append(f"lost the end of the {name} of {cid}: {why}")
                continue
            try:
                data = self._client.api.logs(
                    self.container_id, stdout=name == "stdout", stderr=name == "stderr", stream=False
                )
                if data:
                    self._write(name, bytes(data))
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                problems.append(f"cannot copy the {name} of {cid}: {exc}")
        return problems


class DockerLauncher:
    """Starts, waits for, stops and removes task containers through the Docker Engine API."""

    def __init__(
        self,
        client: docker.DockerClient,
        gpu_mode: GpuMode = GpuMode.DEVICE_REQUEST,
        legacy_minors: Mapping[str, int] | None = None,
        legacy_driver_volume: str | None = None,
        device_dir: str = "/dev",
    ) -> None:
        self.client = client
        self.gpu_access = GpuAccess(gpu_mode, dict(legacy_minors or {}), legacy_driver_volume, device_dir)

    def close(self) -> None:
        """Close the engine connection (the client's pooled sockets)."""
        self.client.close()

    def available(self) -> bool:
        """True when the engine answers a ping."""
        try:
            return bool(self.client.ping())
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False

    def create_kwargs(self, spec: ContainerSpec) -> dict[str, Any]:
        """The keyword arguments given to `containers.create` for this spec (no engine call
        except, in LEGACY mode with GPUs, reading the image's environment)."""
        return create_arguments(spec, self.gpu_access, self._image_env)

    def _image_env(self, image: str) -> list[str]:
        try:
            attrs = self.client.images.get(image).attrs
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFoundError(f"image {image!r} is not present on this host") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot inspect image {image!r}: {exc}") from exc
        return list((attrs.get("Config") or {}).get("Env") or [])

    def run(self, spec: ContainerSpec) -> str:
        """Create and start the container; return its id. A container that fails to start is removed."""
        kwargs = self.create_kwargs(spec)
        if spec.pull:
            self._pull(spec.image)
        try:
            for name, driver, options in spec.named_volumes:  # an existing one is kept (same driver)
                self.client.volumes.create(name=name, driver=driver, driver_opts=dict(options))
            container = self.client.containers.create(**kwargs)
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFoundError(
                f"image {spec.image!r} is not present on this host: {_explain(exc)}"
            ) from exc
        except docker.errors.APIError as exc:
            raise _api_error(exc, "create") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot reach the Docker Engine: {exc}") from exc
        try:
            container.start()
        except docker.errors.APIError as exc:
            self.remove(container.id)
            raise _api_error(exc, "start") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot reach the Docker Engine: {exc}") from exc
        return str(container.id)

    def _pull(self, image: str) -> None:
        try:
            self.client.images.pull(image)
        except docker.errors.APIError as exc:
            raise ImageNotFoundError(f"cannot pull image {image!r}: {_explain(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot reach the Docker Engine: {exc}") from exc

    def _container(self, container_id: str) -> Any:
        try:
            return self.client.containers.get(container_id)
        except docker.errors.NotFound as exc:
            raise ContainerNotFoundError(f"no container {container_id!r}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot reach the Docker Engine: {exc}") from exc

    def wait(self, container_id: str, timeout: float | None = None) -> int:
        """Block until the container exits and return its exit code."""
        container = self._container(container_id)
        try:
            result = container.wait(timeout=timeout)
        except requests.exceptions.ConnectionError as exc:
            # A read timeout surfaces as ConnectionError(ReadTimeoutError) through the unix adapter.
            if timeout is not None and "timed out" in str(exc).lower():
                raise ContainerTimeoutError(
                    f"container {container_id[:12]} still running after {timeout}s"
                ) from exc
            raise DockerUnavailableError(f"lost the Docker Engine while waiting: {exc}") from exc
        except requests.exceptions.ReadTimeout as exc:
            raise ContainerTimeoutError(
                f"container {container_id[:12]} still running after {timeout}s"
            ) from exc
        except docker.errors.NotFound as exc:
            raise ContainerNotFoundError(f"no container {container_id!r}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"lost the Docker Engine while waiting: {exc}") from exc
        return int(result.get("StatusCode", -1))

    def stop(self, container_id: str, grace: float = 10.0) -> None:
        """SIGTERM the container, SIGKILL it after `grace` seconds. Stopping a stopped one is a no-op."""
        container = self._container(container_id)
        try:
            container.stop(timeout=max(0, round(grace)))
        except docker.errors.NotFound as exc:
            raise ContainerNotFoundError(f"no container {container_id!r}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot stop container {container_id[:12]}: {exc}") from exc

    def status(self, container_id: str) -> str:
        """The engine's state: created, running, exited, ..."""
        container = self._container(container_id)
        return str(container.status)

    def pid(self, container_id: str) -> int | None:
        """The host pid of the container's main process, None when it is not running."""
        state = self._container(container_id).attrs.get("State") or {}
        return int(state["Pid"]) if state.get("Running") and state.get("Pid") else None

    def exit_code(self, container_id: str) -> int | None:
        """The exit code of an exited container, None while it has not exited."""
        container = self._container(container_id)
        state = container.attrs.get("State") or {}
        if state.get("Running") or state.get("Status") in ("created", "running", "restarting", "paused"):
            return None
        return int(state.get("ExitCode", -1))

    def logs(self, container_id: str) -> tuple[bytes, bytes]:
        """The container's whole stdout and stderr."""
        container = self._container(container_id)
        try:
            out = container.logs(stdout=True, stderr=False)
            err = container.logs(stdout=False, stderr=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot read logs of {container_id[:12]}: {exc}") from exc
        return bytes(out), bytes(err)

    def follow_logs(self, container_id: str, write: Callable[[str, bytes], None]) -> LogFollower:
        """Start copying the container's output as it is written (`docker logs --follow`): `write`
        gets ("stdout" or "stderr", bytes) from one thread per stream, until the container exits."""
        return LogFollower(self.client, container_id, write).start()

    def copy_logs(self, container_id: str, sandbox: str) -> None:
        """Append the container's stdout and stderr to `<sandbox>/stdout` and `<sandbox>/stderr`."""
        out, err = self.logs(container_id)
        os.makedirs(sandbox, exist_ok=True)
        for name, data in (("stdout", out), ("stderr", err)):
            with open(os.path.join(sandbox, name), "ab") as handle:
                handle.write(data)

    def remove(self, container_id: str) -> None:
        """Force-remove the container (killing it if it runs). An absent container is fine."""
        try:
            self.client.api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.response is not None and exc.response.status_code == 409 and "in progress" in str(exc):
                return  # removal already under way
            raise DockerLaunchError(f"cannot remove container {container_id[:12]}: {_explain(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot remove container {container_id[:12]}: {exc}") from exc

    def list_by_label(self, labels: Mapping[str, str] | None = None) -> list[ContainerRef]:
        """Every container (running or not) managed by mesos-gpu carrying all of these labels."""
        wanted = {LABEL_MANAGED: "true", **(labels or {})}
        filters = {"label": [f"{k}={v}" for k, v in wanted.items()]}
        try:
            found = self.client.containers.list(all=True, filters=filters, ignore_removed=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailableError(f"cannot list containers: {exc}") from exc
        return [
            ContainerRef(id=str(c.id), name=str(c.name), status=str(c.status), labels=dict(c.labels))
            for c in found
        ]

    def remove_all(self, refs: Iterable[ContainerRef]) -> list[str]:
        """Force-remove these containers; return their ids."""
        removed = []
        for ref in refs:
            self.remove(ref.id)
            removed.append(ref.id)
        return removed


def _explain(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc)


def _api_error(exc: docker.errors.APIError, action: str) -> DockerLaunchError:
    message = _explain(exc)
    status = exc.response.status_code if exc.response is not None else None
    if "could not select device driver" in message:
        return GpuRequestRejectedError(
            f"the engine refused the GPU request ({message}): install the NVIDIA Container Toolkit "
            "and restart dockerd, or use the legacy GPU mode",
            engine_message=message,
            status_code=status,
        )
    if status == 404:
        return ImageNotFoundError(message, engine_message=message, status_code=status)
    return DockerLaunchError(
        f"container {action} failed: {message}", engine_message=message, status_code=status
    )
