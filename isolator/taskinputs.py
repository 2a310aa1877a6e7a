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


def command_environment(*commands: Mapping[str, Any] | None) -> dict[str, str]:
    """CommandInfo.environment variables (VALUE type) of these CommandInfos, later ones winning."""
    env: dict[str, str] = {}
    for command in commands:
        variables = ((command or {}).get("environment") or {}).get("variables") or []
        for variable in variables:
            if variable.get("type", "VALUE") == "VALUE" and isinstance(variable.get("name"), str):
                env[variable["name"]] = str(variable.get("value", ""))
    return env


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
