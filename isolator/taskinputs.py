"""What the executor reads from a TaskInfo (pure): the payload the scheduler wrote, the resource limits,
the command environment, the shutdown grace period and a container name. The Mesos wire forms
(Duration text, DurationInfo, the Resource JSON) are read through `mesos_gpu.core.wire`."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core.resources import Resources, ResourcesError
from mesos_gpu.core.wire import parse_duration, resources_from_mesos_by_role

DEFAULT_SHUTDOWN_GRACE = 5.0  # Mesos' --executor_shutdown_grace_period default


class PayloadError(ValueError):
    """The executor's payload (ExecutorInfo.data / TaskInfo.data) is missing or malformed."""


@dataclass(frozen=True)
class Payload:
    """What the scheduler asks the executor to run (mesos_gpu/core/taskinfo.py writes it)."""

    image: str
    command: str | tuple[str, ...] | None = None
    uris: tuple[Mapping[str, Any], ...] = ()
    network: str | None = None
    volumes: tuple[Mapping[str, Any], ...] = ()  # Mesos Volume JSON (HOST_PATH, DOCKER_VOLUME sources)


def decode_payload(data: str | bytes | None) -> Payload:
    """Decode the base64 JSON payload `{"image", "command", "uris", ["network"], ["volumes"]}`."""
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
    volumes = doc.get("volumes")
    volumes = [] if volumes is None else volumes
    if not isinstance(volumes, list) or not all(isinstance(v, dict) for v in volumes):
        raise PayloadError("the payload's volumes must be a list of Mesos Volume objects")
    return Payload(image=image, command=command, uris=tuple(uris), network=network, volumes=tuple(volumes))


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
    """cpus, mem (MB) and gpus summed over a Mesos Resource list, whatever their roles (missing ones:
    no limit / no GPU). A malformed Resource list is a `PayloadError`."""
    try:
        total = Resources.sum(resources_from_mesos_by_role(resources or []).values())
    except ResourcesError as exc:
        raise PayloadError(f"the task's resources are malformed: {exc}") from exc
    gpus = total.gpus
    if gpus != int(gpus):
        raise PayloadError("The 'gpus' resource must be an unsigned integer")
    return TaskResources(
        cpus=total.cpus if total.cpus else None,
        mem_mb=int(total.mem) if total.mem else None,
        gpus=int(gpus),
    )


def command_environment(*commands: Mapping[str, Any] | None, resolved: Mapping[str, str] | None = None
                        ) -> dict[str, str]:
    """CommandInfo.environment variables of these CommandInfos, later ones winning: VALUE ones, and SECRET
    ones from `resolved` (the executor's own environment, where the agent put their values; one the agent
    did not resolve is left out)."""
    env: dict[str, str] = {}
    for command in commands:
        variables = ((command or {}).get("environment") or {}).get("variables") or []
        for variable in variables:
            name = variable.get("name")
            if not isinstance(name, str):
                continue
            if variable.get("type", "VALUE") == "VALUE":
                env[name] = str(variable.get("value", ""))
            elif variable.get("type") == "SECRET" and resolved is not None and name in resolved:
                env[name] = resolved[name]
    return env


class VolumeError(PayloadError):
    """A volume of the payload the executor cannot mount (its text names the volume, nothing secret)."""


def volume_mounts(volumes: Sequence[Mapping[str, Any]], sandbox_mount: str
                  ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, dict[str, str]]]]:
    """The container's mounts for the payload's Mesos volumes: (host path or volume name, container path,
    "ro"/"rw"), a relative container path being in the sandbox mount; and the named volumes to create
    (name, driver, options). A SECRET or other source cannot be mounted here: VolumeError."""
    mounts: list[tuple[str, str, str]] = []
    named: list[tuple[str, str, dict[str, str]]] = []
    for volume in volumes:
        path = str(volume.get("container_path", ""))
        if not path or ".." in path.split("/"):
            raise VolumeError(f"volume container path {path!r} is not valid")
        target = path if path.startswith("/") else f"{sandbox_mount}/{path}"
        mode = "ro" if volume.get("mode") == "RO" else "rw"
        source = volume.get("source") or {}
        if source.get("type") == "HOST_PATH":
            host = str((source.get("host_path") or {}).get("path", ""))
            if not host.startswith("/"):
                raise VolumeError(f"volume '{path}': host path {host!r} is not absolute")
            mounts.append((host, target, mode))
        elif source.get("type") == "DOCKER_VOLUME":
            docker = source.get("docker_volume") or {}
            options = {p.get("key", ""): p.get("value", "")
                       for p in (docker.get("driver_options") or {}).get("parameter", [])}
            name = str(docker.get("name", ""))
            mounts.append((name, target, mode))
            named.append((name, str(docker.get("driver") or "local"), options))
        else:
            raise VolumeError(f"volume '{path}': source type {source.get('type')!r} is not supported here")
    return mounts, named


def shutdown_grace(env: Mapping[str, str]) -> float:
    """MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD (Duration text) in seconds, never negative; Mesos' 5 s
    when absent or unreadable."""
    try:
        return max(0.0, parse_duration(env.get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "")))
    except ValueError:
        return DEFAULT_SHUTDOWN_GRACE


def container_name(task_id: str) -> str:
    """A Docker container name for a task: `mesos-gpu-<task id, sanitised>-<8 hex>`."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", task_id)[:100]
    return f"mesos-gpu-{safe}-{uuid.uuid4().hex[:8]}"
