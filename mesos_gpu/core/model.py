"""Jobs as values: the validated job spec, its expansion into tasks, and job/task states (pure).

Public surface (stable; other modules import these names):

- `JobSpec`: a validated job (build one with `mesos_gpu.core.validation.validate_job(data)`; never
  construct one from unchecked input). `to_dict()` is canonical JSON with every default filled in, and
  `validate_job(spec.to_dict()) == spec`. `tasks(job_id)` expands it into one `TaskSpec` per member.
  A job has either `roles` (a distributed TF job) or, when `roles` is empty, a single task whose
  resources are `resources`.
- `RoleSpec`: one TF role (instances, resources, command / image / env overrides).
- `TaskSpec`: one member to place and launch: `name` "<job-id>.<role>-<index>", `role`, `index`,
  `resources` (`ResourceRequest`, incl. how many ports it needs), final `command`, `image`, `env`.
- `TaskKey(role, index)`: a member of a job; `str(key)` is "worker-0".
- `ResourceRequest`: cpus, mem (MB), disk (MB), gpus (whole, or a share below 1, or elastic
  `gpus_min`..`gpus`), `gpu_memory` (MB, shares), ports (count).
- Enums: `Role` (chief, worker, ps, evaluator; `TASK` for the member of a single-task job),
  `Containerizer`, `Isolation`, `RestartPolicyKind`, `SuccessPolicy`, `ConstraintOperator`,
  `JobState` (with `is_terminal`, `can_become`), `TaskState` (the Mesos task states, with
  `is_terminal`, `from_mesos`).
- `Constraint` (Marathon syntax `[field, OPERATOR, value?]`), `RestartPolicy`, `UriSpec` (a file Mesos fetches
  into every member's sandbox: Mesos CommandInfo.URI).
- `task_id_for(name, attempt)` / `parse_task_id(task_id)`: Mesos task ids of each launch attempt.

Field meanings beyond the obvious: `image` is optional with the mesos containerizer (the command then runs
on the agent host), required with docker; `deadline_seconds` counts from submission (waiting included);
`rendezvous_timeout_seconds` is how long TF members wait for each other; `isolation` is the level of the
job's GPU shares (EXCLUSIVE when it has none; whole-GPU members are always EXCLUSIVE: `isolation_of`);
`priority` and `tenant` are kept for the scheduler and API; `uris` (left out of `to_dict()` when empty) are
fetched by Mesos into every member's sandbox; `secrets` (name -> source in the cluster's secret store),
`secret_env` (variable -> secret name; `to_dict()` writes them in `env` as `{"secret": name}`) and
`volumes` (`VolumeSpec`, `core.mounts`) apply to every member and are left out of `to_dict()` when empty.
A job holds secret references only, never a secret's value.

Restart, backoff and success decisions live in `mesos_gpu.core.policy`; validation in
`mesos_gpu.core.validation`.
Mappings in these frozen values are plain dicts typed `Mapping`: treat them as read-only. JobSpec and
TaskSpec compare by value but are not hashable (they hold dicts); TaskKey and the enums are.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.jobenums import (
    TF_ROLES,
    ConstraintOperator,
    Containerizer,
    Isolation,
    JobState,
    RestartPolicyKind,
    Role,
    SuccessPolicy,
    TaskState,
)
from mesos_gpu.core.mounts import VolumeSpec

__all__ = [
    "DEFAULT_CPUS",
    "DEFAULT_DISK",
    "DEFAULT_GPUS",
    "DEFAULT_MEM",
    "TF_ROLES",
    "Constraint",
    "ConstraintOperator",
    "Containerizer",
    "Isolation",
    "JobSpec",
    "JobState",
    "ResourceRequest",
    "RestartPolicy",
    "RestartPolicyKind",
    "Role",
    "RoleSpec",
    "SuccessPolicy",
    "TaskKey",
    "TaskSpec",
    "TaskState",
    "UriSpec",
    "parse_task_id",
    "task_id_for",
]

DEFAULT_CPUS = 1.0
DEFAULT_MEM = 1024.0
DEFAULT_DISK = 0.0
DEFAULT_GPUS = 0
DEFAULT_TENANT = "default"
DEFAULT_RENDEZVOUS_TIMEOUT_SECONDS = 600.0
DEFAULT_BACKOFF_LIMIT = 3
DEFAULT_BACKOFF_SECONDS = 10.0
DEFAULT_MAX_BACKOFF_SECONDS = 300.0




@dataclass(frozen=True)
class TaskKey:
    """One member of a job: its role and index within the role. `str(key)` is "worker-0"."""

    role: Role
    index: int

    def __str__(self) -> str:
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = f"{self.role.value}-{self.index}"
            object.__setattr__(self, "_text", text)   # a cache, not a field: equality is unchanged
        return text

    @classmethod
    def parse(cls, text: str) -> TaskKey:
        """Inverse of `str()`: "worker-0" -> TaskKey(Role.WORKER, 0); ValueError when malformed."""
        role, sep, index = text.rpartition("-")
        if not sep or not index.isdigit() or (len(index) > 1 and index.startswith("0")):
            raise ValueError(f"not a task key: {text!r}")
        return cls(Role(role), int(index))


@dataclass(frozen=True)
class ResourceRequest:
    """What one task asks for: cpus, mem and disk (MB) as Mesos scalars, gpus, a count of ports.

    `gpus` is a whole number (exclusive GPUs, given by Mesos) or a GPU share: a multiple of 0.01 below 1,
    or an elastic share `gpus_min`..`gpus` (both in (0, 1]; placement gives the largest share that fits,
    never less than `gpus_min`). `gpu_memory` (MB) is the GPU memory a share asks for (None: not stated;
    placement then counts the share's fraction of the device's memory)."""

    cpus: float = DEFAULT_CPUS
    mem: float = DEFAULT_MEM
    disk: float = DEFAULT_DISK
    gpus: float = DEFAULT_GPUS
    ports: int = 0
    gpus_min: float | None = None  # set only for an elastic share ({"min": .., "max": ..}); gpus is max
    gpu_memory: int | None = None

    @property
    def is_share(self) -> bool:
        """Whether the task asks for a GPU share (a fraction of one GPU, fixed or elastic)."""
        return self.gpus_min is not None or 0 < self.gpus < 1

    @property
    def whole_gpus(self) -> int:
        """Whole GPUs taken from Mesos offers for this task itself (0 for a share)."""
        return 0 if self.is_share else int(self.gpus)

    def gpus_json(self) -> float | int | dict[str, float]:
        """`gpus` as the job JSON writes it: an integer, a fraction, or {"min", "max"}."""
        if self.gpus_min is not None:
            return {"min": self.gpus_min, "max": self.gpus}
        return int(self.gpus) if float(self.gpus).is_integer() else self.gpus

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cpus": self.cpus, "mem": self.mem, "disk": self.disk,
                               "gpus": self.gpus_json(), "ports": self.ports}
        if self.gpu_memory is not None:
            out["gpu_memory"] = self.gpu_memory
        return out


@dataclass(frozen=True)
class Constraint:
    """A Marathon placement constraint: `[field, OPERATOR]` or `[field, OPERATOR, value]`."""

    field: str
    operator: ConstraintOperator
    value: str | None = None

    def to_list(self) -> list[str]:
        head = [self.field, self.operator.value]
        return head if self.value is None else [*head, self.value]

    def __str__(self) -> str:
        return " ".join(self.to_list())


@dataclass(frozen=True)
class UriSpec:
    """A file Mesos fetches into a task's sandbox before it starts (Mesos CommandInfo.URI): `value` (a URL,
    or a path on the agent), `extract` archives (default true), make it `executable`, save it as
    `output_file` (a path relative to the sandbox; None: the URL's base name). `to_dict()` is the
    CommandInfo.URI JSON."""

    value: str
    extract: bool = True
    executable: bool = False
    output_file: str | None = None
    cache: bool = False     # Mesos' fetcher cache (CommandInfo.URI.cache); shown only when true

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "extract": self.extract, "executable": self.executable}
        if self.output_file is not None:
            out["output_file"] = self.output_file
        if self.cache:
            out["cache"] = True
        return out


@dataclass(frozen=True)
class RestartPolicy:
    """Restart policy of a job: kind, how many restarts in all (backoff_limit), exponential backoff."""

    policy: RestartPolicyKind = RestartPolicyKind.NEVER
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.value,
            "backoff_limit": self.backoff_limit,
            "backoff_seconds": self.backoff_seconds,
            "max_backoff_seconds": self.max_backoff_seconds,
        }


@dataclass(frozen=True)
class RoleSpec:
    """One TF role of a job: how many members and what each gets; command/image/env override the job's."""

    instances: int = 1
    cpus: float = DEFAULT_CPUS
    mem: float = DEFAULT_MEM
    disk: float = DEFAULT_DISK
    gpus: float = DEFAULT_GPUS  # whole GPUs, a share below 1, or the max of an elastic share
    command: str | None = None
    image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    gpus_min: float | None = None  # elastic share: the least it takes (see ResourceRequest)
    gpu_memory: int | None = None  # MB of GPU memory per member's share

    def resources(self) -> ResourceRequest:
        """What each member asks for (TF members need one port each)."""
        return ResourceRequest(self.cpus, self.mem, self.disk, self.gpus, ports=1, gpus_min=self.gpus_min,
                               gpu_memory=self.gpu_memory)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "instances": self.instances,
            "cpus": self.cpus,
            "mem": self.mem,
            "disk": self.disk,
            "gpus": self.resources().gpus_json(),
        }
        if self.gpu_memory is not None:
            out["gpu_memory"] = self.gpu_memory
        if self.command is not None:
            out["command"] = self.command
        if self.image is not None:
            out["image"] = self.image
        out["env"] = dict(self.env)
        return out


@dataclass(frozen=True)
class TaskSpec:
    """One member of a job, ready for placement and launch (all overrides applied)."""

    job_id: str
    role: Role
    index: int
    resources: ResourceRequest
    command: str
    image: str | None
    env: Mapping[str, str]
    containerizer: Containerizer
    isolation: Isolation
    constraints: tuple[Constraint, ...]  # the job's constraints (they apply across the job's members)

    @functools.cached_property
    def key(self) -> TaskKey:
        return TaskKey(self.role, self.index)

    @functools.cached_property
    def name(self) -> str:
        """The task's name, "<job-id>.<role>-<index>" (e.g. "mnist-1a2b.worker-0"); unique per framework."""
        return f"{self.job_id}.{self.key}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "job_id": self.job_id,
            "role": self.role.value,
            "index": self.index,
            "resources": self.resources.to_dict(),
            "command": self.command,
            "env": dict(self.env),
            "containerizer": self.containerizer.value,
            "isolation": self.isolation.value,
            "constraints": [c.to_list() for c in self.constraints],
        }
        if self.image is not None:
            out["image"] = self.image
        return out


@dataclass(frozen=True)
class JobSpec:
    """A validated job. Either `roles` (distributed TF) or, when `roles` is empty, one task (`resources`).

    Fields hold their defaults already resolved: `success_policy` is set for every job with roles (None
    for a single-task job), `restart` is complete, `roles` is in canonical order (chief, worker, ps,
    evaluator). Build with `validate_job`, which checks every rule.
    """

    name: str
    command: str | None = None  # job-level command; a role may override it (every member ends up with one)
    image: str | None = None
    containerizer: Containerizer = Containerizer.MESOS
    roles: Mapping[Role, RoleSpec] = field(default_factory=dict)
    resources: ResourceRequest | None = None  # single-task jobs only (ports is 0)
    env: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    success_policy: SuccessPolicy | None = None
    deadline_seconds: int | None = None
    priority: int = 0
    tenant: str = DEFAULT_TENANT
    rendezvous_timeout_seconds: float = DEFAULT_RENDEZVOUS_TIMEOUT_SECONDS
    isolation: Isolation = Isolation.EXCLUSIVE
    labels: Mapping[str, str] = field(default_factory=dict)
    uris: tuple[UriSpec, ...] = ()  # fetched into every member's sandbox
    secrets: Mapping[str, str] = field(default_factory=dict)  # name -> source in the secret store
    secret_env: Mapping[str, str] = field(default_factory=dict)  # variable -> secret name (every member)
    volumes: tuple[VolumeSpec, ...] = ()  # every member's (`core.mounts`)

    # -- shape ---------------------------------------------------------------------------------------

    @property
    def is_distributed(self) -> bool:
        """True for a job with TF roles, False for a single-task job."""
        return bool(self.roles)

    def members(self) -> tuple[TaskKey, ...]:
        """Every member, in canonical order (roles in TF_ROLES order, then index)."""
        if not self.roles:
            return (TaskKey(Role.TASK, 0),)
        return tuple(TaskKey(role, i) for role, spec in self.roles.items() for i in range(spec.instances))

    @property
    def task_count(self) -> int:
        return sum(spec.instances for spec in self.roles.values()) if self.roles else 1

    @property
    def total_gpus(self) -> float:
        """GPUs the job asks for in all (a share counts its fraction; an elastic one its max)."""
        if not self.roles:
            return self.resources.gpus if self.resources else 0
        return sum(spec.instances * spec.gpus for spec in self.roles.values())

    @property
    def has_shares(self) -> bool:
        """Whether any member asks for a GPU share."""
        if not self.roles:
            return self.resources is not None and self.resources.is_share
        return any(spec.resources().is_share for spec in self.roles.values())

    def isolation_of(self, resources: ResourceRequest) -> Isolation:
        """A member's isolation: the job's level for a GPU share, EXCLUSIVE otherwise (whole GPUs or none)."""
        return self.isolation if resources.is_share else Isolation.EXCLUSIVE

    def tasks(self, job_id: str) -> tuple[TaskSpec, ...]:
        """Expand into one TaskSpec per member (canonical order), overrides and env merged.

        TF members need one port each (their gRPC address); a single task needs none. A role's env is
        laid over the job's env.
        """
        constraints = self.constraints
        if not self.roles:
            return (
                TaskSpec(
                    job_id=job_id,
                    role=Role.TASK,
                    index=0,
                    resources=self.resources or ResourceRequest(),
                    command=self.command or "",
                    image=self.image,
                    env=dict(self.env),
                    containerizer=self.containerizer,
                    isolation=self.isolation_of(self.resources or ResourceRequest()),
                    constraints=constraints,
                ),
            )
        out: list[TaskSpec] = []
        for role, spec in self.roles.items():
            resources = spec.resources()
            env = {**self.env, **spec.env}
            command = spec.command if spec.command is not None else self.command or ""
            image = spec.image if spec.image is not None else self.image
            for index in range(spec.instances):
                out.append(
                    TaskSpec(
                        job_id=job_id,
                        role=role,
                        index=index,
                        resources=resources,
                        command=command,
                        image=image,
                        env=dict(env),
                        containerizer=self.containerizer,
                        isolation=self.isolation_of(resources),
                        constraints=constraints,
                    )
                )
        return tuple(out)

    # -- JSON ----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-ready dict, every default filled in; None-valued optional fields are left out."""
        out: dict[str, Any] = {"name": self.name}
        if self.image is not None:
            out["image"] = self.image
        out["containerizer"] = self.containerizer.value
        if self.command is not None:
            out["command"] = self.command
        if self.roles:
            out["roles"] = {role.value: spec.to_dict() for role, spec in self.roles.items()}
        else:
            resources = self.resources or ResourceRequest()
            out.update(
                cpus=resources.cpus, mem=resources.mem, disk=resources.disk, gpus=resources.gpus_json()
            )
            if resources.gpu_memory is not None:
                out["gpu_memory"] = resources.gpu_memory
        out["env"] = {**self.env, **{name: {"secret": secret} for name, secret in self.secret_env.items()}}
        out["constraints"] = [c.to_list() for c in self.constraints]
        out["restart"] = self.restart.to_dict()
        if self.success_policy is not None:
            out["success_policy"] = self.success_policy.value
        if self.deadline_seconds is not None:
            out["deadline_seconds"] = self.deadline_seconds
        out["priority"] = self.priority
        out["tenant"] = self.tenant
        out["rendezvous_timeout_seconds"] = self.rendezvous_timeout_seconds
        out["isolation"] = self.isolation.value
        out["labels"] = dict(self.labels)
        if self.uris:
            out["uris"] = [uri.to_dict() for uri in self.uris]
        if self.secrets:
            out["secrets"] = {name: {"source": source} for name, source in self.secrets.items()}
        if self.volumes:
            out["volumes"] = [volume.to_dict() for volume in self.volumes]
        return out


def task_id_for(name: str, attempt: int) -> str:
    """Mesos task id of launch `attempt` (0 for the first) of task `name`: "<job-id>.<role>-<index>.<n>"."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    return f"{name}.{attempt}"


def parse_task_id(task_id: str) -> tuple[str, TaskKey, int]:
    """Inverse of `task_id_for`: (job_id, TaskKey, attempt). ValueError when it is not one of ours."""
    parts = task_id.rsplit(".", 2)
    if len(parts) != 3 or not parts[0] or not parts[2].isdigit():
        raise ValueError(f"not a mesos-gpu task id: {task_id!r}")
    job_id, key, attempt = parts
    return job_id, TaskKey.parse(key), int(attempt)
