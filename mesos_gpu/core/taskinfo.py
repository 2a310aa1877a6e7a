"""Build the Mesos v1 `TaskInfo` JSON of one job member (pure).

Two isolation paths (DESIGN section 2): `containerizer: "mesos"` puts the docker image in a MESOS
container (the agent's `gpu/nvidia` isolator picks the GPUs); `containerizer: "docker"` runs the
isolator's executor (`python3 -m isolator.executor`), which starts the image through the Docker Engine
on exactly the devices Mesos accounted. TF members run the launcher bundle, fetched into the sandbox
from the scheduler's HTTP server, which rendezvouses through ZooKeeper and then runs the user's command.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.model import Containerizer, JobSpec, Role, TaskSpec, task_id_for
from mesos_gpu.core.wire import duration_info

# Environment every task gets (besides the TF launcher's), so plain scripts can tell where they are.
ENV_TASK_ROLE = "MESOS_GPU_ROLE"
ENV_TASK_INDEX = "MESOS_GPU_INDEX"
ENV_ATTEMPT = "MESOS_GPU_ATTEMPT"

DOCKER_EXECUTOR_COMMAND = "python3 -m isolator.executor"
# What the isolator's executor itself is given by Mesos (the container's own limits come from the task).
EXECUTOR_RESOURCES = {"cpus": 0.1, "mem": 32.0}


@dataclass(frozen=True)
class LaunchSettings:
    """Framework-wide settings that shape every TaskInfo.

    `zk_url` is the framework's chroot URL (`zk://host:port/mesos-gpu/<name>`) used for TF rendezvous;
    `launcher_uri` is where agents fetch the launcher bundle (the scheduler's HTTP server); `role` is
    the framework's Mesos role (the task's own resources are labelled as its offer's).
    """

    framework_name: str = "mesos-gpu"
    zk_url: str = ""
    launcher_uri: str = ""
    role: str = "*"
    python: str = "python3"
    kill_grace_seconds: float = 10.0
    docker_executor_command: str = DOCKER_EXECUTOR_COMMAND


@dataclass(frozen=True)
class Placed:
    """Where a member goes and what it takes there, as placement decided: the agent and hostname of its
    offer, the concrete ports, and its resources as Mesos `Resource` JSON labelled like the offer's
    (role or reservations, allocation_info; see `placement.TaskPlacement.to_mesos`)."""

    agent_id: str
    hostname: str
    ports: tuple[int, ...] = ()
    resources: Sequence[Mapping[str, Any]] = ()


#: The fields of a Mesos `Resource` that say whose it is; the executor's resources repeat its task's.
_LABEL_FIELDS = ("role", "reservation", "reservations", "allocation_info")


def _labels(items: Mapping[str, str]) -> dict[str, Any]:
    return {"labels": [{"key": key, "value": value} for key, value in items.items()]}


def _environment(env: Mapping[str, str]) -> dict[str, Any]:
    return {"variables": [{"name": name, "value": value} for name, value in sorted(env.items())]}


def member_environment(
    spec: JobSpec, task: TaskSpec, attempt: int, placed: Placed, settings: LaunchSettings
) -> dict[str, str]:
    """The environment of one member: the job's env, where it runs, and the TF launcher's contract."""
    env = dict(task.env)
    env[ENV_TASK_ROLE] = task.role.value
    env[ENV_TASK_INDEX] = str(task.index)
    env[ENV_ATTEMPT] = str(attempt)
    if placed.ports:
        env["PORT0"] = str(placed.ports[0])
        env["PORTS"] = ",".join(str(port) for port in placed.ports)
    if task.role is not Role.TASK:
        counts = {role.value: role_spec.instances for role, role_spec in spec.roles.items()}
        env.update(
            tfc.launcher_environment(
                settings.zk_url,
                task.job_id,
                tfc.Member(task.role.value, task.index),
                counts,
                host=placed.hostname,
                port=placed.ports[0],
                timeout=spec.rendezvous_timeout_seconds,
            )
        )
    return env


def build_task_info(
    spec: JobSpec, task: TaskSpec, attempt: int, placed: Placed, settings: LaunchSettings
) -> dict[str, Any]:
    """The TaskInfo JSON for launch `attempt` of `task` on the agent in `placed`."""
    task_id = task_id_for(task.name, attempt)
    env = member_environment(spec, task, attempt, placed, settings)
    is_tf = task.role is not Role.TASK
    command: dict[str, Any] = {
        "shell": True,
        "value": tfc.launcher_command(task.command, settings.python) if is_tf else task.command,
        "environment": _environment(env),
    }
    if is_tf and settings.launcher_uri:
        command["uris"] = [
            {"value": settings.launcher_uri, "executable": False, "extract": False, "cache": False,
             "output_file": tfc.BUNDLE_NAME}
        ]
    info: dict[str, Any] = {
        "name": task.name,
        "task_id": {"value": task_id},
        "agent_id": {"value": placed.agent_id},
        "resources": list(placed.resources),
        "kill_policy": {"grace_period": duration_info(settings.kill_grace_seconds)},
        "labels": _labels(
            {
                "mesos-gpu/job": task.job_id,
                "mesos-gpu/role": task.role.value,
                "mesos-gpu/index": str(task.index),
                "mesos-gpu/attempt": str(attempt),
                "mesos-gpu/isolation": task.isolation.value,
            }
        ),
    }
    if task.containerizer is Containerizer.DOCKER:
        info["executor"] = _docker_executor(task, task_id, command, placed, settings)
    else:
        info["command"] = command
        if task.image:
            info["container"] = {
                "type": "MESOS",
                "mesos": {"image": {"type": "DOCKER", "docker": {"name": task.image}}},
            }
    return info


def _docker_executor(
    task: TaskSpec, task_id: str, command: Mapping[str, Any], placed: Placed, settings: LaunchSettings
) -> dict[str, Any]:
    """ExecutorInfo of the isolator's nvidia-docker executor; the task's image and command ride in `data`."""
    payload = {"image": task.image, "command": command["value"], "uris": command.get("uris", [])}
    return {
        "type": "CUSTOM",
        "executor_id": {"value": task_id},
        "name": f"mesos-gpu docker executor for {task.name}",
        "command": {
            "shell": True,
            "value": settings.docker_executor_command,
            "environment": command["environment"],
            "uris": list(command.get("uris", [])),
        },
        "resources": _executor_resources(placed, settings),
        "data": base64.b64encode(json.dumps(payload, sort_keys=True).encode()).decode("ascii"),
        "labels": _labels({"mesos-gpu/job": task.job_id}),
    }


def _executor_resources(placed: Placed, settings: LaunchSettings) -> list[dict[str, Any]]:
    """The executor's own cpus and mem, labelled as its task's resources (the same offer's), or with
    the framework's role when the task has none."""
    labels: dict[str, Any] = {"role": settings.role}
    if placed.resources:
        first = placed.resources[0]
        labels = {field: first[field] for field in _LABEL_FIELDS if field in first}
    return [
        {"name": name, "type": "SCALAR", "scalar": {"value": value}, **labels}
        for name, value in EXECUTOR_RESOURCES.items()
    ]
