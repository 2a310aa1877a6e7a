"""Share tasks (pure): what the share host reads from its ExecutorInfo.data and from each share task's
TaskInfo.data (the payload `mesos_gpu.core.taskinfo` writes; names in `mesos_gpu.core.sharing`), the MIG
instance a `mig` share gets, the memory cap it is held to, and the environment of each isolation level:

    level    CUDA_/NVIDIA_VISIBLE_DEVICES   also
    mig      MIG-<uuid> of instance mig_index   -
    mps      the GPU's uuid              CUDA_MPS_PIPE_DIRECTORY, CUDA_MPS_LOG_DIRECTORY,
                                         CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=round(100*share),
                                         CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=<MB>M, MESOS_GPU_MEMORY_LIMIT_MB
    capped   the GPU's uuid              MESOS_GPU_MEMORY_LIMIT_MB (the NVML watchdog enforces it)
    shared   the GPU's uuid              -

Every level also gets MESOS_GPU_ISOLATION and MESOS_GPU_SHARE. The MPS memory limit names device ordinal 0:
the client sees only its GPU (CUDA_VISIBLE_DEVICES), so ordinal 0 is that GPU.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from isolator.sharenvml import MigInstance
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import (
    DEFAULT_LINGER_SECONDS,
    ENV_GPU_MEMORY_LIMIT,
    ENV_GPU_SHARE,
    ENV_ISOLATION,
    LABEL_DEVICE,
    LABEL_ENFORCEMENT,
    LABEL_GPU_MEMORY,
    LABEL_ISOLATION,
    LABEL_SHARE,
    LABEL_SHARE_HOST,
)

SHARE_LEVELS = (Isolation.MIG, Isolation.MPS, Isolation.CAPPED, Isolation.SHARED)


class ShareError(ValueError):
    """A share task that cannot run as asked; the message says why (it becomes the TASK_FAILED text)."""


def _document(data: str | bytes | None, what: str) -> dict[str, Any]:
    if not data:
        raise ShareError(f"no {what}: the data field is empty")
    try:
        doc = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ShareError(f"the {what} is not base64 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ShareError(f"the {what} must be a JSON object")
    return doc


def _level(value: Any, what: str) -> Isolation:
    try:
        level = Isolation(value)
    except ValueError:
        raise ShareError(f"{what}: unknown isolation level {value!r}") from None
    if level not in SHARE_LEVELS:
        raise ShareError(f"{what}: {level.value} is not a share level (mig, mps, capped, shared)")
    return level


@dataclass(frozen=True)
class HostSettings:
    """ExecutorInfo.data of a share host."""

    host: str
    isolation: Isolation
    linger_seconds: float = DEFAULT_LINGER_SECONDS
    device_memory: int = 0  # MB, from the agent's attribute (0: unknown)
    mig_layout: str = ""


def decode_host_settings(data: str | bytes | None, executor_id: str = "") -> HostSettings:
    doc = _document(data, "share host settings (ExecutorInfo.data)")
    try:
        return HostSettings(
            host=str(doc.get("host") or executor_id),
            isolation=_level(doc.get("isolation"), "ExecutorInfo.data"),
            linger_seconds=max(0.0, float(doc.get("linger_seconds", DEFAULT_LINGER_SECONDS))),
            device_memory=int(doc.get("device_memory") or 0),
            mig_layout=str(doc.get("mig_layout") or ""),
        )
    except (TypeError, ValueError) as exc:
        raise ShareError(f"ExecutorInfo.data: {exc}") from exc


@dataclass(frozen=True)
class ShareTask:
    """One share task's payload (TaskInfo.data)."""

    command: str | None
    image: str | None
    isolation: Isolation
    gpus: float  # the fraction granted (0.25)
    memory: int  # MB granted (0: not known)
    device_memory: int = 0
    host: str = ""
    mig_index: int | None = None
    mig_profile: str | None = None
    uris: tuple[Mapping[str, Any], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cpus: float | None = None
    mem: float | None = None
    kill_grace: float | None = None

    @property
    def share_text(self) -> str:
        """The fraction as the env and labels show it ("0.25")."""
        return f"{self.gpus:g}"


def decode_share_task(data: str | bytes | None) -> ShareTask:
    """The payload {"command", "image", "uris", "env", "share", "resources", "kill_grace_seconds"}."""
    doc = _document(data, "share task payload (TaskInfo.data)")
    share = doc.get("share")
    if not isinstance(share, dict):
        raise ShareError('the share task payload has no "share" object')
    command, image = doc.get("command"), doc.get("image")
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    if command is not None and not isinstance(command, str):
        raise ShareError("the share task's command must be a shell string")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise ShareError("the share task's image must be a non-empty string or null")
    if command is None and image is None:
        raise ShareError("the share task names neither a command nor an image")
    uris, env = doc.get("uris") or [], doc.get("env") or {}
    if not isinstance(uris, list) or not all(isinstance(u, dict) for u in uris):
        raise ShareError("the share task's uris must be a list of CommandInfo.URI objects")
    if not isinstance(env, dict):
        raise ShareError("the share task's env must be an object")
    resources = doc.get("resources") or {}
    grace = doc.get("kill_grace_seconds")
    try:
        return ShareTask(
            command=command,
            image=image,
            isolation=_level(share.get("isolation"), "share"),
            gpus=float(share.get("gpus") or 0),
            memory=int(share.get("gpu_memory") or 0),
            device_memory=int(share.get("device_memory") or 0),
            host=str(share.get("host") or ""),
            mig_index=None if share.get("mig_index") is None else int(share["mig_index"]),
            mig_profile=share.get("mig_profile"),
            uris=tuple(uris),
            env={str(k): str(v) for k, v in env.items()},
            cpus=float(resources["cpus"]) if resources.get("cpus") else None,
            mem=float(resources["mem"]) if resources.get("mem") else None,
            kill_grace=None if grace is None else max(0.0, float(grace)),
        )
    except (TypeError, ValueError) as exc:
        raise ShareError(f"the share task payload: {exc}") from exc


def mig_instance(instances: tuple[MigInstance, ...], task: ShareTask) -> MigInstance:
    """The MIG instance `mig_index` of the share host's GPU, checked against the profile granted."""
    if task.mig_index is None:
        raise ShareError("a mig share needs a mig_index (the instance placement granted)")
    if not instances:
        raise ShareError("the share host's GPU has no MIG instances (MIG mode off, or none created)")
    if not 0 <= task.mig_index < len(instances):
        raise ShareError(f"MIG instance {task.mig_index} does not exist: the GPU has {len(instances)} "
                         f"({'/'.join(i.profile for i in instances)})")  # fmt: skip
    instance = instances[task.mig_index]
    if task.mig_profile and instance.profile != task.mig_profile:
        raise ShareError(f"MIG instance {task.mig_index} is a {instance.profile}, not the {task.mig_profile} "
                         "granted: the agent's gpu_mig attribute does not match its GPUs")  # fmt: skip
    return instance


def memory_cap(task: ShareTask, device_memory_mib: int) -> int:
    """The MB a capped or mps share is held to: the grant, else its fraction of the device (0: unknown)."""
    if task.memory > 0:
        return task.memory
    return int(task.gpus * device_memory_mib) if device_memory_mib > 0 else 0


def share_environment(
    task: ShareTask,
    device: str,
    cap: int,
    mig_uuid: str | None = None,
    mps_dirs: tuple[str, str] | None = None,
) -> dict[str, str]:
    """The variables of the task's level, on top of its payload env (see the module's table). `device`:
    the GPU's uuid; `cap`: `memory_cap`; `mps_dirs`: (pipe, log) directories of the MPS daemon."""
    env = dict(task.env)
    env[ENV_ISOLATION] = task.isolation.value
    env[ENV_GPU_SHARE] = task.share_text
    visible = device
    if task.isolation is Isolation.MIG:
        if mig_uuid is None:
            raise ShareError("a mig share needs its MIG instance")
        visible = mig_uuid
    elif task.isolation is Isolation.MPS:
        if mps_dirs is None:
            raise ShareError("an mps share needs the MPS daemon's directories")
        env["CUDA_MPS_PIPE_DIRECTORY"], env["CUDA_MPS_LOG_DIRECTORY"] = mps_dirs
        env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(max(1, min(100, round(100 * task.gpus))))
        if cap > 0:
            env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = f"0={cap}M"
            env[ENV_GPU_MEMORY_LIMIT] = str(cap)
    elif task.isolation is Isolation.CAPPED:
        env[ENV_GPU_MEMORY_LIMIT] = str(cap)
    env["CUDA_VISIBLE_DEVICES"] = visible
    env["NVIDIA_VISIBLE_DEVICES"] = visible
    return env


def running_report(task: ShareTask, device: str, cap: int, host_id: str) -> dict[str, str]:
    """The TASK_RUNNING labels (LABEL_*) of a share: device, share, memory, level, host."""
    return {
        LABEL_DEVICE: device,
        LABEL_SHARE: task.share_text,
        LABEL_GPU_MEMORY: str(cap),
        LABEL_ISOLATION: task.isolation.value,
        LABEL_SHARE_HOST: host_id,
    }


def running_data(labels: Mapping[str, str]) -> str:
    """TASK_RUNNING's data: base64 JSON {"device", "share", "gpu_memory", "isolation", "share_host"} and
    "enforcement" (what actually holds for the task) when the labels carry it."""
    doc: dict[str, Any] = {
        "device": labels[LABEL_DEVICE],
        "share": float(labels[LABEL_SHARE]),
        "gpu_memory": int(labels[LABEL_GPU_MEMORY]),
        "isolation": labels[LABEL_ISOLATION],
        "share_host": labels[LABEL_SHARE_HOST],
    }
    if LABEL_ENFORCEMENT in labels:
        doc["enforcement"] = labels[LABEL_ENFORCEMENT]
    return base64.b64encode(json.dumps(doc, sort_keys=True).encode()).decode()
