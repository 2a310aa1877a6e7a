"""Build the Mesos v1 `TaskInfo` JSON of one job member (pure).

Two isolation paths (DESIGN section 2): `containerizer: "mesos"` puts the docker image in a MESOS
container (the agent's `gpu/nvidia` isolator picks the GPUs); `containerizer: "docker"` runs the
isolator's executor (`python3 -m isolator.executor`), which starts the image through the Docker Engine
on exactly the devices Mesos accounted. TF members run the launcher bundle, fetched into the sandbox
from the scheduler's HTTP server, which rendezvouses through ZooKeeper and then runs the user's command.

A GPU share (`mesos_gpu.core.sharing`) runs on a share host: `share_executor_info` is the host's
ExecutorInfo (its one whole GPU and its own cpus/mem), built once when the host is opened and repeated
unchanged in every share TaskInfo sent to it; `build_share_task_info` is such a TaskInfo (no command:
what to run rides in `data` as JSON, see `share_payload`).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.model import Containerizer, Isolation, JobSpec, Role, TaskSpec, task_id_for
from mesos_gpu.core.mounts import secret_variable, volume_json
from mesos_gpu.core.sharing import (
    DEFAULT_LINGER_SECONDS,
    ENV_GPU_MEMORY_LIMIT,
    ENV_GPU_SHARE,
    ENV_ISOLATION,
    LABEL_ISOLATION,
    LABEL_SHARE_HOST,
    SHARE_HOST_COMMAND,
    ShareGrant,
)
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
    share_host_command: str = SHARE_HOST_COMMAND  # the share host executor (`mesos_gpu.core.sharing`)
    share_linger_seconds: float = DEFAULT_LINGER_SECONDS  # how long an empty share host waits to exit


class Placed(NamedTuple):
    """Where a member goes and what it takes there, as placement decided: the agent and hostname of its
    offer, the concrete ports, and its resources as Mesos `Resource` JSON labelled like the offer's
    (role or reservations, allocation_info; see `placement.TaskPlacement.to_mesos`). A named tuple: an
    offer cycle makes one per task launched."""

    agent_id: str
    hostname: str
    ports: tuple[int, ...] = ()
    resources: Sequence[Mapping[str, Any]] = ()


#: The fields of a Mesos `Resource` that say whose it is; the executor's resources repeat its task's.
_LABEL_FIELDS = ("role", "reservation", "reservations", "allocation_info")


def _labels(items: Mapping[str, str]) -> dict[str, Any]:
    return {"labels": [{"key": key, "value": value} for key, value in items.items()]}


def _environment(env: Mapping[str, str], secrets: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Environment JSON: the plain variables by name, then the secret ones (`secret_variables`)."""
    variables = [{"name": name, "value": value} for name, value in sorted(env.items())]
    return {"variables": variables + [dict(variable) for variable in secrets]}


def secret_variables(spec: JobSpec) -> list[dict[str, Any]]:
    """The job's env variables taken from its secrets: Environment.Variable of type SECRET, each a
    REFERENCE to the secret's source (the value is the agent's secret resolver's to find), by name."""
    secret_env = getattr(spec, "secret_env", None) or {}
    return [secret_variable(name, spec.secrets[secret]) for name, secret in sorted(secret_env.items())]


def mesos_container(spec: JobSpec, image: str | None) -> dict[str, Any] | None:
    """The ContainerInfo of a mesos-containerizer member: type MESOS with its image (if any) and the job's
    volumes (if any); None when it has neither (the command runs on the agent host, as before)."""
    volumes = getattr(spec, "volumes", ()) or ()
    if not image and not volumes:
        return None
    container: dict[str, Any] = {"type": "MESOS"}
    if image:
        container["mesos"] = {"image": {"type": "DOCKER", "docker": {"name": image}}}
    if volumes:
        container["volumes"] = [volume_json(volume, spec.secrets) for volume in volumes]
    return container


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
        "environment": _environment(env, secret_variables(spec)),
    }
    uris = task_uris(spec, task, settings)
    if uris:
        command["uris"] = uris
    info: dict[str, Any] = {
        "name": task.name,
        "task_id": {"value": task_id},
        "agent_id": {"value": placed.agent_id},
        "resources": list(placed.resources),
        "kill_policy": {"grace_period": duration_info(settings.kill_grace_seconds)},
        "labels": _labels(_task_labels(task, attempt)),
    }
    if task.containerizer is Containerizer.DOCKER:
        container = mesos_container(spec, None)
        volumes = list(container["volumes"]) if container else []
        info["executor"] = _docker_executor(task, task_id, command, placed, settings, volumes=volumes)
    else:
        info["command"] = command
        container = mesos_container(spec, task.image)
        if container is not None:
            info["container"] = container
    return info


def _task_labels(task: TaskSpec, attempt: int) -> dict[str, str]:
    return {
        "mesos-gpu/job": task.job_id,
        "mesos-gpu/role": task.role.value,
        "mesos-gpu/index": str(task.index),
        "mesos-gpu/attempt": str(attempt),
        LABEL_ISOLATION: task.isolation.value,
    }


#: The fields of a Mesos `CommandInfo.URI`.
_URI_FIELDS = ("value", "executable", "extract", "cache", "output_file")


def uri_json(uri: Any) -> dict[str, Any]:
    """One of a job's `uris` as a Mesos `CommandInfo.URI`: a URL string (extracted, as Mesos does by
    default), or an object with `value`, `extract`, `executable`, `output_file` (a mapping, or a value
    with those attributes or a `to_dict()`); unset fields are left out."""
    if isinstance(uri, str):
        return {"value": uri, "extract": True}
    if isinstance(uri, Mapping):
        data: Mapping[str, Any] = uri
    elif callable(getattr(uri, "to_dict", None)):
        data = uri.to_dict()
    else:
        data = {name: getattr(uri, name) for name in _URI_FIELDS if hasattr(uri, name)}
    return {name: data[name] for name in _URI_FIELDS if data.get(name) is not None}


def task_uris(spec: JobSpec, task: TaskSpec, settings: LaunchSettings) -> list[dict[str, Any]]:
    """What Mesos (or the share host) fetches into a member's sandbox: the TF launcher bundle for TF
    members, then the job's own `uris`."""
    uris: list[dict[str, Any]] = []
    if task.role is not Role.TASK and settings.launcher_uri:
        uris.append({"value": settings.launcher_uri, "executable": False, "extract": False, "cache": False,
                     "output_file": tfc.BUNDLE_NAME})
    uris.extend(uri_json(uri) for uri in getattr(spec, "uris", ()) or ())
    return uris


def _b64json(payload: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, sort_keys=True).encode()).decode("ascii")


def _docker_executor(
    task: TaskSpec, task_id: str, command: Mapping[str, Any], placed: Placed, settings: LaunchSettings, *,
    volumes: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """ExecutorInfo of the isolator's nvidia-docker executor; the task's image, command and volumes (Mesos
    Volume JSON: the executor binds them) ride in `data`; its environment holds the SECRET variables,
    which the agent resolves for the executor's process and the executor passes on."""
    payload: dict[str, Any] = {"image": task.image, "command": command["value"],
                               "uris": command.get("uris", [])}
    if volumes:
        payload["volumes"] = list(volumes)
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
        "data": _b64json(payload),
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


# ------------------------------------------------------------------------------------------ GPU shares
def share_host_params(resources: Sequence[Mapping[str, Any]], settings: LaunchSettings,
                      mig_layout: str = "") -> dict[str, Any]:
    """What a share host's ExecutorInfo is built from besides its id, level and device memory: the
    command, its resources (one whole GPU and `SHARE_HOST_RESOURCES`, labelled like the offer's), the
    linger and the agent's MIG layout. Kept in every share member's record, so that a recovered leader
    builds the very same ExecutorInfo again (`share_executor_info`)."""
    return {
        "command": settings.share_host_command,
        "resources": [dict(resource) for resource in resources],
        "linger_seconds": settings.share_linger_seconds,
        "mig_layout": mig_layout,
    }


def share_executor_info(host_id: str, isolation: Isolation, device_memory: int,
                        params: Mapping[str, Any]) -> dict[str, Any]:
    """The ExecutorInfo of share host `host_id` (a pure function of its arguments: every share task
    sent to the host repeats it exactly, or Mesos refuses the task as an incompatible executor)."""
    data = {
        "host": host_id,
        "isolation": isolation.value,
        "linger_seconds": params["linger_seconds"],
        "device_memory": device_memory,
        "mig_layout": params.get("mig_layout", ""),
    }
    return {
        "type": "CUSTOM",
        "executor_id": {"value": host_id},
        "name": f"mesos-gpu share host {host_id}",
        "command": {"shell": True, "value": params["command"]},
        "resources": [dict(resource) for resource in params["resources"]],
        "data": _b64json(data),
        "labels": _labels({LABEL_SHARE_HOST: host_id, LABEL_ISOLATION: isolation.value}),
    }


def share_environment(grant: ShareGrant) -> dict[str, str]:
    """What a share task is told of its share: the level, the fraction, the memory granted (MB; left out
    when none is known: the device's memory is unknown and the task stated none)."""
    env = {ENV_ISOLATION: grant.isolation.value, ENV_GPU_SHARE: f"{grant.gpus / 1000:g}"}
    if grant.memory > 0:
        env[ENV_GPU_MEMORY_LIMIT] = str(grant.memory)
    return env


def share_payload(spec: JobSpec, task: TaskSpec, attempt: int, placed: Placed, settings: LaunchSettings, *,
                  grant: ShareGrant) -> dict[str, Any]:
    """The JSON a share task carries in `TaskInfo.data` for its share host: what to run (a shell command,
    TF members wrapped by the launcher), the image (or null), what to fetch, the environment, the grant
    (with the host's real id), its own cpus/mem, and the kill grace."""
    env = member_environment(spec, task, attempt, placed, settings)
    env.update(share_environment(grant))
    is_tf = task.role is not Role.TASK
    return {
        "command": tfc.launcher_command(task.command, settings.python) if is_tf else task.command,
        "image": task.image,
        "uris": task_uris(spec, task, settings),
        "env": env,
        "share": grant.to_dict(),
        "resources": {"cpus": task.resources.cpus, "mem": task.resources.mem},
        "kill_grace_seconds": settings.kill_grace_seconds,
    }


def build_share_task_info(spec: JobSpec, task: TaskSpec, attempt: int, placed: Placed,
                          settings: LaunchSettings, *, grant: ShareGrant,
                          executor: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskInfo of a share task: launched to its share host's `executor` (repeated unchanged), with
    its own cpus/mem/disk/ports only (the host's ExecutorInfo holds the GPU), and no command: what to run
    is `share_payload`, base64 JSON in `data`."""
    task_id = task_id_for(task.name, attempt)
    labels = {**_task_labels(task, attempt), LABEL_SHARE_HOST: grant.host_id}
    return {
        "name": task.name,
        "task_id": {"value": task_id},
        "agent_id": {"value": placed.agent_id},
        "resources": [dict(resource) for resource in placed.resources if resource.get("name") != "gpus"],
        "kill_policy": {"grace_period": duration_info(settings.kill_grace_seconds)},
        "executor": copy.deepcopy(dict(executor)),
        "data": _b64json(share_payload(spec, task, attempt, placed, settings, grant=grant)),
        "labels": _labels(labels),
    }
