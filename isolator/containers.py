"""Task containers, the engine-free side: what a container is asked to be (`ContainerSpec`), what is
found (`ContainerRef`), how it gets its GPUs (`GpuMode`, `GpuAccess`), the error tree, and the
engine's create arguments built from a spec (`create_arguments`). `isolator.docker` (the docker SDK's
only home) sends them.

GPU modes (explicit, chosen by the caller; `isolator.docker.detect_gpu_mode` suggests one):

* `GpuMode.DEVICE_REQUEST`: NVIDIA Container Toolkit present. HostConfig.DeviceRequests is
  `[{"Driver": "", "Count": 0, "DeviceIDs": [ids...], "Capabilities": [["gpu"]], "Options": {}}]`.
  On a host without the toolkit the engine answers 500 `could not select device driver "" with
  capabilities: [[gpu]]`, raised as `GpuRequestRejectedError`.
* `GpuMode.LEGACY`: no toolkit (nvidia-docker 1.0 style). Devices `/dev/nvidiactl`, `/dev/nvidia-uvm`,
  `/dev/nvidia-uvm-tools` (those present) and `/dev/nvidia<minor>` for each GPU (minors from
  `legacy_minors`, an id -> minor map built from NVML discovery; `device_dir` is the host's /dev),
  plus the driver volume read-only at `/usr/local/nvidia`, with `/usr/local/nvidia/bin` appended to PATH
  and the driver library dirs to LD_LIBRARY_PATH, as Mesos does.

Containers are never privileged. A container without GPUs gets `NVIDIA_VISIBLE_DEVICES=void`, so a
CUDA image cannot reach every GPU through a host whose default runtime is `nvidia`. Errors are
`DockerLaunchError` and its subclasses (`DockerUnavailableError`, `ImageNotFoundError`,
`GpuRequestRejectedError`, `ContainerNotFoundError`, `ContainerTimeoutError`).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SANDBOX_MOUNT = "/mnt/mesos/sandbox"
NVIDIA_DRIVER_MOUNT = "/usr/local/nvidia"
LABEL_MANAGED = "mesos-gpu.managed"
LABEL_FRAMEWORK_ID = "mesos-gpu.framework-id"
LABEL_TASK_ID = "mesos-gpu.task-id"
LABEL_EXECUTOR_ID = "mesos-gpu.executor-id"
LABEL_GPUS = "mesos-gpu.gpus"
LEGACY_CONTROL_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
LEGACY_LIBRARY_PATH = "/usr/local/cuda/compat:/usr/local/nvidia/lib:/usr/local/nvidia/lib64"


class GpuMode(enum.Enum):
    """How a container is given its GPUs."""

    DEVICE_REQUEST = "device-request"  # NVIDIA Container Toolkit: HostConfig.DeviceRequests
    LEGACY = "legacy"  # device mappings + driver volume (no toolkit)


class DockerLaunchError(Exception):
    """Base of every error raised by this module; `engine_message` and `status_code` hold the
    engine's own answer when there was one."""

    def __init__(self, message: str, engine_message: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.engine_message = engine_message
        self.status_code = status_code


class DockerUnavailableError(DockerLaunchError):
    """The Docker Engine cannot be reached."""


class ImageNotFoundError(DockerLaunchError):
    """The image is not present locally (and was not, or could not be, pulled)."""


class GpuRequestRejectedError(DockerLaunchError):
    """The engine refused the GPU device request (no NVIDIA Container Toolkit on this host)."""


class ContainerNotFoundError(DockerLaunchError):
    """No container with that id or name."""


class ContainerTimeoutError(DockerLaunchError):
    """The container did not exit within the time given to `wait`."""


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to start one task's container."""

    image: str
    command: str | Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    gpus: Sequence[str] = ()
    cpus: float | None = None
    mem_mb: int | None = None
    sandbox: str | None = None
    framework_id: str | None = None
    task_id: str | None = None
    executor_id: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    network_mode: str = "none"
    user: str | None = None
    working_dir: str | None = None
    pull: bool = False
    ipc_mode: str | None = None  # "host": the host's IPC namespace (CUDA MPS clients need it)
    binds: Mapping[str, str] = field(default_factory=dict)  # more host dirs -> container paths (rw)
    # Volumes of the task (Mesos ContainerInfo.volumes): (host path or volume name, container path, "ro"
    # or "rw"); the named volumes among them with their driver and options, created before the container.
    mounts: Sequence[tuple[str, str, str]] = ()
    named_volumes: Sequence[tuple[str, str, Mapping[str, str]]] = ()

    def all_labels(self) -> dict[str, str]:
        """The labels put on the container: the caller's, plus the mesos-gpu ones."""
        labels = dict(self.labels)
        labels[LABEL_MANAGED] = "true"
        if self.framework_id is not None:
            labels[LABEL_FRAMEWORK_ID] = self.framework_id
        if self.task_id is not None:
            labels[LABEL_TASK_ID] = self.task_id
        if self.executor_id is not None:
            labels[LABEL_EXECUTOR_ID] = self.executor_id
        labels[LABEL_GPUS] = ",".join(self.gpus)
        return labels


@dataclass(frozen=True)
class ContainerRef:
    """A container found by `list_by_label`."""

    id: str
    name: str
    status: str
    labels: Mapping[str, str]

    @property
    def gpus(self) -> tuple[str, ...]:
        """The GPU ids this container was started with (from its label)."""
        value = self.labels.get(LABEL_GPUS, "")
        return tuple(g for g in value.split(",") if g)


@dataclass(frozen=True)
class EngineStatus:
    """What the Docker Engine said: reachable, and whether it has the `nvidia` runtime."""

    reachable: bool
    nvidia_runtime: bool
    error: str = ""


@dataclass(frozen=True)
class GpuAccess:
    """How containers get their GPUs: the mode and, for LEGACY, each GPU id's device minor (from NVML
    discovery), the host's driver volume and the host directory of the device files."""

    mode: GpuMode = GpuMode.DEVICE_REQUEST
    legacy_minors: Mapping[str, int] = field(default_factory=dict)
    legacy_driver_volume: str | None = None
    device_dir: str = "/dev"


ImageEnv = Callable[[str], Sequence[str]]  # an image's own environment, "NAME=value" items


def create_arguments(spec: ContainerSpec, gpus: GpuAccess, image_env: ImageEnv) -> dict[str, Any]:
    """The keyword arguments of the SDK's `containers.create` for this spec. `image_env` is asked only
    in LEGACY mode with GPUs and a driver volume (PATH and LD_LIBRARY_PATH extend the image's)."""
    env = dict(spec.env)
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "labels": spec.all_labels(),
        "network_mode": spec.network_mode,
        "privileged": False,
        "detach": True,
    }
    kwargs.update(_command_arguments(spec))
    volumes: dict[str, dict[str, str]] = {}
    if spec.sandbox is not None:
        volumes[os.path.abspath(spec.sandbox)] = {"bind": SANDBOX_MOUNT, "mode": "rw"}
        env.setdefault("MESOS_SANDBOX", SANDBOX_MOUNT)
    if not spec.gpus:
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    elif gpus.mode is GpuMode.DEVICE_REQUEST:
        kwargs["device_requests"] = [device_request(spec.gpus)]
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(spec.gpus)
    else:
        kwargs["devices"] = legacy_devices(spec.gpus, gpus.legacy_minors, gpus.device_dir)
        if gpus.legacy_driver_volume is not None:
            volumes[gpus.legacy_driver_volume] = {"bind": NVIDIA_DRIVER_MOUNT, "mode": "ro"}
            env.update(legacy_env(image_env(spec.image), env))
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    for source, target in spec.binds.items():
        volumes[os.path.abspath(source)] = {"bind": target, "mode": "rw"}
    for source, target, mode in spec.mounts:
        key = os.path.abspath(source) if source.startswith("/") else source  # else a named volume
        volumes[key] = {"bind": target, "mode": mode}
    if spec.ipc_mode is not None:
        kwargs["ipc_mode"] = spec.ipc_mode
    if volumes:
        kwargs["volumes"] = volumes
    kwargs["environment"] = env
    return kwargs


def _command_arguments(spec: ContainerSpec) -> dict[str, Any]:
    """Command, name, user, working directory and the CPU and memory limits."""
    kwargs: dict[str, Any] = {}
    if isinstance(spec.command, str):
        kwargs["entrypoint"] = ["/bin/sh", "-c"]
        kwargs["command"] = [spec.command]
    elif spec.command is not None:
        kwargs["command"] = list(spec.command)
    if spec.name is not None:
        kwargs["name"] = spec.name
    if spec.user is not None:
        kwargs["user"] = spec.user
    if spec.working_dir is not None:
        kwargs["working_dir"] = spec.working_dir
    if spec.cpus is not None:
        kwargs["nano_cpus"] = round(spec.cpus * 1e9)
    if spec.mem_mb is not None:
        kwargs["mem_limit"] = f"{spec.mem_mb}m"
        kwargs["memswap_limit"] = f"{spec.mem_mb}m"
    return kwargs


def device_request(gpus: Sequence[str]) -> dict[str, Any]:
    """The device request for exactly these NVIDIA devices (ids: indices or UUIDs), as the SDK's
    `DeviceRequest` keywords: the engine gets Driver "", Count 0, these DeviceIDs, [["gpu"]]."""
    return {"device_ids": [str(g) for g in gpus], "capabilities": [["gpu"]]}


def legacy_devices(gpus: Sequence[str], minors: Mapping[str, int], device_dir: str) -> list[str]:
    """`host:container:rwm` mappings: the control devices present under `device_dir` (normally /dev),
    then `nvidia<minor>` of each GPU."""
    devices = []
    for name in LEGACY_CONTROL_DEVICES:
        host = os.path.join(device_dir, os.path.basename(name))
        if os.path.exists(host):
            devices.append(f"{host}:{name}:rwm")
    for gpu in gpus:
        if gpu not in minors:
            raise DockerLaunchError(
                f"legacy GPU mode needs the minor number of device {gpu!r}: "
                "pass legacy_minors (id -> minor) from NVML discovery"
            )
        name = f"nvidia{minors[gpu]}"
        devices.append(f"{os.path.join(device_dir, name)}:/dev/{name}:rwm")
    return devices


def legacy_env(image_env: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """PATH and LD_LIBRARY_PATH of the image (`env` winning), extended with the driver volume's."""
    merged = dict(item.split("=", 1) for item in image_env if "=" in item)
    merged.update(env)
    path = merged.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    ld = merged.get("LD_LIBRARY_PATH", "")
    return {
        "PATH": f"{path}:{NVIDIA_DRIVER_MOUNT}/bin",
        "LD_LIBRARY_PATH": f"{ld}:{LEGACY_LIBRARY_PATH}" if ld else LEGACY_LIBRARY_PATH,
    }
