"""Job validation: `validate_job(data)` turns a parsed JSON document into a `JobSpec`, or raises
`ValidationError` listing every problem with its JSON Pointer path (and nothing else, whatever the input).

The rules match the published schema (`JOB_SCHEMA_PATH` inside the `mesos_gpu` package; load it with
`importlib.resources.files("mesos_gpu") / JOB_SCHEMA_PATH`). A few need code and are checked here only:
the total number of tasks, LIKE/UNLIKE regular expressions that compile, restart.max_backoff_seconds >=
backoff_seconds, finite numbers, valid Unicode text in every string and key (a lone surrogate "\\ud800",
which the store could not encode, is reported at its path; a bad key at its object's). Limits: `joblimits`.
Every member needs a command (the job's, or its role's); an image is needed only with the docker
containerizer (without one, a mesos-containerizer task runs its command on the agent host). The GPU parts
(gpus as whole GPUs, a share or an elastic share; gpu_memory; the isolation level resolved against the
members; uris) are checked by `sharevalidation`, the generic JSON shapes by `checker`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

from mesos_gpu.core import joblimits as limits
from mesos_gpu.core.checker import Path
from mesos_gpu.core.errors import FieldError, ValidationError, json_pointer
from mesos_gpu.core.joblimits import JOB_FIELDS, JOB_SCHEMA_PATH, RESTART_FIELDS, ROLE_FIELDS
from mesos_gpu.core.model import (
    DEFAULT_BACKOFF_LIMIT,
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_CPUS,
    DEFAULT_DISK,
    DEFAULT_MAX_BACKOFF_SECONDS,
    DEFAULT_MEM,
    DEFAULT_RENDEZVOUS_TIMEOUT_SECONDS,
    DEFAULT_TENANT,
    TF_ROLES,
    Constraint,
    ConstraintOperator,
    Containerizer,
    JobSpec,
    ResourceRequest,
    RestartPolicy,
    RestartPolicyKind,
    Role,
    RoleSpec,
    SuccessPolicy,
)
from mesos_gpu.core.mounts import MountChecker, VolumeSpec
from mesos_gpu.core.sharevalidation import ShareChecker

__all__ = ["JOB_FIELDS", "JOB_SCHEMA_PATH", "RESTART_FIELDS", "ROLE_FIELDS", "validate_job"]


def validate_job(data: object, default_containerizer: Containerizer = Containerizer.MESOS) -> JobSpec:
    """Validate a parsed JSON job document; return its `JobSpec` with defaults applied.

    `default_containerizer` is the containerizer of a job that names none (the scheduler passes its
    `MESOS_GPU_DEFAULT_CONTAINERIZER`). Raises `ValidationError` whose `errors` lists every problem
    (path + message), and nothing else: strings that are not valid Unicode text first.
    """
    checker = _JobChecker(default_containerizer)
    spec = checker.job(data)
    text = [FieldError(json_pointer(path), message) for path, message in limits.unicode_problems(data)]
    if text or checker.errors or spec is None:  # a bad string's own error says it all: drop the others
        bad = {error.path for error in text}
        rest = [e for e in checker.errors if e.path not in bad and limits.unicode_problem(e.path) is None]
        raise ValidationError([*text, *rest] or [FieldError("", "invalid job")])
    return spec


class _JobChecker(ShareChecker, MountChecker):
    """Walks one job document, collecting FieldErrors; each method returns the parsed value or None."""

    def __init__(self, default_containerizer: Containerizer = Containerizer.MESOS) -> None:
        super().__init__()
        self.default_containerizer = default_containerizer

    def command(self, path: Path, value: object) -> str | None:
        if (
            not isinstance(value, str)
            or not value.strip()
            or len(value) > limits.MAX_COMMAND_LENGTH
            or "\x00" in value
        ):
            self.error(path, limits.COMMAND_MESSAGE)
            return None
        return value

    def image(self, path: Path, value: object) -> str | None:
        return self.text(path, value, limits.IMAGE, limits.MAX_IMAGE_LENGTH, limits.IMAGE_MESSAGE)

    def env(self, path: Path, value: object, secrets: Mapping[str, str] | None = None,
            secret_env: dict[str, str] | None = None) -> dict[str, str]:
        """The plain variables; with `secret_env` (the job's env), a `{"secret": NAME}` value (one of
        `secrets`) goes there instead."""
        raw = self.mapping(path, value, None)
        if raw is None:
            return {}
        if len(raw) > limits.MAX_ENV_ENTRIES:
            self.error(path, f"at most {limits.MAX_ENV_ENTRIES} variables")
            return {}
        out: dict[str, str] = {}
        for key, item in raw.items():
            if len(key) > limits.MAX_ENV_NAME_LENGTH or not limits.ENV_NAME.fullmatch(key):
                self.error(
                    (*path, key), "not a valid variable name (letters, digits and '_', no leading digit)"
                )
            elif key in limits.RESERVED_ENV or key.startswith(limits.RESERVED_ENV_PREFIX):
                self.error((*path, key), "reserved: mesos-gpu sets it")
            elif isinstance(item, dict) and secret_env is not None:
                secret = self.secret_reference((*path, key), item, secrets)
                if secret is not None:
                    secret_env[key] = secret
            elif isinstance(item, dict) and "secret" in item:
                self.error((*path, key), "a secret goes in the job's env (every task gets it), not a "
                                         "role's: set it in the top-level `env`")
            elif not isinstance(item, str) or len(item) > limits.MAX_ENV_VALUE_LENGTH or "\x00" in item:
                self.error(
                    (*path, key), f"must be a string of at most {limits.MAX_ENV_VALUE_LENGTH} characters"
                )
            else:
                out[key] = item
        return out

    def labels(self, path: Path, value: object) -> dict[str, str]:
        raw = self.mapping(path, value, None)
        if raw is None:
            return {}
        if len(raw) > limits.MAX_LABELS:
            self.error(path, f"at most {limits.MAX_LABELS} labels")
            return {}
        out: dict[str, str] = {}
        for key, item in raw.items():
            if not limits.LABEL_KEY.fullmatch(key):
                self.error(
                    (*path, key),
                    "not a valid label key (1 to 63 letters, digits, '_', '.', '/' or '-', "
                    "starting and ending with a letter or digit)",
                )
            elif not isinstance(item, str) or len(item) > limits.MAX_LABEL_VALUE_LENGTH:
                self.error(
                    (*path, key), f"must be a string of at most {limits.MAX_LABEL_VALUE_LENGTH} characters"
                )
            else:
                out[key] = item
        return out

    # -- the job -----------------------------------------------------------------------------------------

    def job(self, data: object) -> JobSpec | None:
        doc = self.mapping((), data, limits.JOB_FIELDS)
        if doc is None:
            return None
        name = None
        if "name" not in doc:
            self.error(("name",), "required")
        else:
            name = self.text(
                ("name",), doc["name"], limits.DNS_LABEL, limits.MAX_NAME_LENGTH, limits.DNS_LABEL_MESSAGE
            )
        image = None if doc.get("image") is None else self.image(("image",), doc["image"])
        containerizer = self.choice(
            ("containerizer",),
            doc.get("containerizer", self.default_containerizer.value),
            Containerizer,
            'must be "mesos" or "docker"',
        )
        command = None if doc.get("command") is None else self.command(("command",), doc["command"])
        roles, resources = self.workload(doc)
        secrets = self.secrets(("secrets",), doc.get("secrets", {}))
        secret_env: dict[str, str] = {}
        env = self.env(("env",), doc.get("env", {}), secrets, secret_env)
        volumes = self.job_mounts(doc, containerizer, roles, resources, secret_env=secret_env,
                                  secrets=secrets)
        constraints = self.constraints(("constraints",), doc.get("constraints", []))
        restart = self.restart(("restart",), doc.get("restart", {}))
        success_policy = self.success_policy(doc)
        queueing = self.queueing(doc)
        labels = self.labels(("labels",), doc.get("labels", {}))
        uris = self.uris(("uris",), doc.get("uris", []))
        self.command_and_image(doc, containerizer)
        isolation = self.isolation(doc)
        if self.errors:
            return None
        assert name is not None and restart is not None and roles is not None and constraints is not None
        assert isolation is not None and uris is not None and secrets is not None and volumes is not None
        return JobSpec(
            name=name,
            command=command,
            image=image,
            containerizer=containerizer,
            roles=roles,
            resources=resources,
            env=env,
            constraints=constraints,
            restart=restart,
            success_policy=success_policy,
            isolation=isolation,
            labels=labels,
            uris=uris,
            secrets=secrets,
            secret_env=secret_env,
            volumes=volumes,
            **queueing,
        )

    def job_mounts(self, doc: Mapping[str, Any], containerizer: Containerizer | None,
                   roles: Mapping[Role, RoleSpec] | None, resources: ResourceRequest | None, *,
                   secret_env: Mapping[str, str], secrets: Mapping[str, str] | None,
                   ) -> tuple[VolumeSpec, ...] | None:
        """The job's volumes, once checked that its secrets and volumes can reach its tasks, and that no
        role's env sets a variable the job's env takes from a secret."""
        self.mounts_supported(doc, containerizer, roles, resources)
        self.uri_credentials(doc.get("uris"))
        for role, spec in (roles or {}).items():
            for key in spec.env.keys() & secret_env.keys():
                self.error(("roles", role.value, "env", key), "the job's env sets it from a secret")
        return self.job_volumes(doc, secrets)

    def mounts_supported(self, doc: Mapping[str, Any], containerizer: Containerizer | None,
                         roles: Mapping[Role, RoleSpec] | None, resources: ResourceRequest | None) -> None:
        """Secrets and volumes reach a task through Mesos' containerizer or the docker executor (which
        cannot place a secret file); a share host starts its tasks itself and would drop them."""
        shares = (resources is not None and resources.is_share) or any(
            spec.resources().is_share for spec in (roles or {}).values()
        )
        for key in ("secrets", "volumes"):
            if doc.get(key) and shares:
                self.error((key,), "not supported for a job with GPU shares yet: its share host starts the "
                                   "tasks itself")
        volumes = doc.get("volumes")
        if containerizer is Containerizer.DOCKER and isinstance(volumes, list):
            for index, volume in enumerate(volumes):
                if isinstance(volume, dict) and "secret" in volume:
                    self.error(("volumes", index, "secret"), 'a secret file is not supported with the docker '
                               'containerizer yet: use "mesos" (with an image, the task runs in it all the '
                               "same) or an env secret")

    def workload(self, doc: Mapping[str, Any]) -> tuple[dict[Role, RoleSpec] | None, ResourceRequest | None]:
        """The job's roles (a TF job) or, for a single-task job, its resources."""
        if "roles" not in doc:
            return {}, self.resources((), doc)
        for key in limits.RESOURCE_FIELDS:
            if key in doc:
                self.error((key,), "not allowed in a job with roles (set it in each role)")
        return self.roles(doc["roles"]), None

    def queueing(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """How the job waits and runs: deadline, priority, tenant, rendezvous timeout (JobSpec keywords;
        only meaningful when no error was recorded)."""
        deadline = doc.get("deadline_seconds")
        if deadline is not None:
            deadline = self.number(("deadline_seconds",), deadline, limits.DEADLINE_SECONDS_RANGE)
        priority = self.number(("priority",), doc.get("priority", 0), limits.PRIORITY_RANGE)
        tenant = self.text(
            ("tenant",),
            doc.get("tenant", DEFAULT_TENANT),
            limits.DNS_LABEL,
            limits.MAX_NAME_LENGTH,
            limits.DNS_LABEL_MESSAGE,
        )
        rendezvous = self.number(
            ("rendezvous_timeout_seconds",),
            doc.get("rendezvous_timeout_seconds", DEFAULT_RENDEZVOUS_TIMEOUT_SECONDS),
            limits.RENDEZVOUS_TIMEOUT_RANGE,
        )
        return {
            "deadline_seconds": None if deadline is None else int(deadline),
            "priority": int(priority or 0),
            "tenant": tenant,
            "rendezvous_timeout_seconds": float(rendezvous or 0.0),
        }

    def resources(self, path: Path, doc: Mapping[str, Any]) -> ResourceRequest | None:
        cpus = self.number((*path, "cpus"), doc.get("cpus", DEFAULT_CPUS), limits.CPUS_RANGE)
        mem = self.number((*path, "mem"), doc.get("mem", DEFAULT_MEM), limits.MEM_RANGE)
        disk = self.number((*path, "disk"), doc.get("disk", DEFAULT_DISK), limits.DISK_RANGE)
        ask = self.gpus((*path, "gpus"), doc.get("gpus", 0))
        gpu_memory = self.gpu_memory(path, doc, ask)
        if cpus is None or mem is None or disk is None or ask is None:
            return None
        return ResourceRequest(
            cpus=float(cpus), mem=float(mem), disk=float(disk), gpus=ask.gpus, gpus_min=ask.gpus_min,
            gpu_memory=gpu_memory,
        )

    def roles(self, value: object) -> dict[Role, RoleSpec] | None:
        raw = self.mapping(("roles",), value, None)
        if raw is None:
            self.asks_complete = False
            return None
        names = {role.value for role in TF_ROLES}
        for key in raw:
            if key not in names:
                self.error(("roles", key), "unknown role (expected chief, worker, ps or evaluator)")
        if not ({Role.CHIEF.value, Role.WORKER.value} & raw.keys()):
            self.error(("roles",), "needs a chief or a worker")
        out: dict[Role, RoleSpec] = {}
        ok = True
        for role in TF_ROLES:
            if role.value in raw:
                spec = self.role(("roles", role.value), role, raw[role.value])
                ok = ok and spec is not None
                if spec is not None:
                    out[role] = spec
        total = sum(spec.instances for spec in out.values())
        if total > limits.MAX_TASKS_PER_JOB:
            self.error(("roles",), f"too many tasks: {total} (at most {limits.MAX_TASKS_PER_JOB} per job)")
        return out if ok else None

    def role(self, path: Path, role: Role, value: object) -> RoleSpec | None:
        raw = self.mapping(path, value, limits.ROLE_FIELDS)
        if raw is None:
            self.asks_complete = False
            return None
        before = len(self.errors)
        instances: float | int | None
        if role in limits.SINGLE_INSTANCE_ROLES:
            instances = raw.get("instances", 1)
            if instances != 1 or isinstance(instances, bool):
                self.error((*path, "instances"), f"must be 1 ({limits.SINGLE_INSTANCE_ROLES[role]})")
                instances = None
        else:
            instances = self.number((*path, "instances"), raw.get("instances", 1), limits.INSTANCES_RANGE)
        resources = self.resources(path, raw)
        command = None if raw.get("command") is None else self.command((*path, "command"), raw["command"])
        image = None if raw.get("image") is None else self.image((*path, "image"), raw["image"])
        env = self.env((*path, "env"), raw.get("env", {}))
        if len(self.errors) > before or resources is None or instances is None:
            return None
        return RoleSpec(
            instances=int(instances),
            cpus=resources.cpus,
            mem=resources.mem,
            disk=resources.disk,
            gpus=resources.gpus,
            command=command,
            image=image,
            env=env,
            gpus_min=resources.gpus_min,
            gpu_memory=resources.gpu_memory,
        )

    def constraints(self, path: Path, value: object) -> tuple[Constraint, ...] | None:
        if not isinstance(value, list):
            self.error(path, "must be a list of constraints")
            return None
        if len(value) > limits.MAX_CONSTRAINTS:
            self.error(path, f"at most {limits.MAX_CONSTRAINTS} constraints")
            return None
        out: list[Constraint] = []
        for index, item in enumerate(value):
            constraint = self.constraint((*path, index), item)
            if constraint is not None:
                out.append(constraint)
        return tuple(out) if len(out) == len(value) else None

    def constraint(self, path: Path, value: object) -> Constraint | None:
        if not isinstance(value, list) or not 2 <= len(value) <= 3:
            self.error(path, limits.CONSTRAINT_SHAPE_MESSAGE)
            return None
        before = len(self.errors)
        attribute = value[0]
        if (
            not isinstance(attribute, str)
            or not attribute
            or len(attribute) > limits.MAX_CONSTRAINT_FIELD_LENGTH
        ):
            self.error((*path, 0), limits.CONSTRAINT_FIELD_MESSAGE)
        operator = self.choice(
            (*path, 1), value[1], ConstraintOperator, f"must be one of {limits.OPERATORS_TEXT}"
        )
        argument = value[2] if len(value) == 3 else None
        if len(value) == 3 and (
            not isinstance(argument, str) or len(argument) > limits.MAX_CONSTRAINT_VALUE_LENGTH
        ):
            self.error(
                (*path, 2), f"must be a string of at most {limits.MAX_CONSTRAINT_VALUE_LENGTH} characters"
            )
        elif operator in limits.VALUE_FORBIDDEN and argument is not None:
            self.error((*path, 2), f"{operator.value} takes no value")
        elif operator in limits.VALUE_REQUIRED and argument is None:
            self.error(path, f"{operator.value} needs a value")
        elif (
            operator in limits.VALUE_COUNT
            and argument is not None
            and not limits.POSITIVE_INTEGER_TEXT.fullmatch(argument)
        ):
            self.error((*path, 2), 'must be a whole number from 1 to 999999, as a string ("2")')
        elif operator in (ConstraintOperator.LIKE, ConstraintOperator.UNLIKE) and argument is not None:
            problem = _regex_problem(argument)
            if problem:
                self.error((*path, 2), f"not a valid regular expression: {problem}")
        if len(self.errors) > before:
            return None
        return Constraint(field=str(attribute), operator=operator, value=argument)

    def restart(self, path: Path, value: object) -> RestartPolicy | None:
        raw = self.mapping(path, value, limits.RESTART_FIELDS)
        if raw is None:
            return None
        policy = self.choice(
            (*path, "policy"),
            raw.get("policy", RestartPolicyKind.NEVER.value),
            RestartPolicyKind,
            'must be one of "Never", "OnFailure", "ExitCode"',
        )
        limit = self.number(
            (*path, "backoff_limit"),
            raw.get("backoff_limit", DEFAULT_BACKOFF_LIMIT),
            limits.BACKOFF_LIMIT_RANGE,
        )
        base = self.number(
            (*path, "backoff_seconds"),
            raw.get("backoff_seconds", DEFAULT_BACKOFF_SECONDS),
            limits.BACKOFF_SECONDS_RANGE,
        )
        default_cap = max(DEFAULT_MAX_BACKOFF_SECONDS, base or 0.0)
        cap = self.number(
            (*path, "max_backoff_seconds"),
            raw.get("max_backoff_seconds", default_cap),
            limits.MAX_BACKOFF_SECONDS_RANGE,
        )
        if base is not None and cap is not None and cap < base:
            self.error((*path, "max_backoff_seconds"), "must be at least backoff_seconds")
            return None
        if policy is None or limit is None or base is None or cap is None:
            return None
        return RestartPolicy(
            policy=policy,
            backoff_limit=int(limit),
            backoff_seconds=float(base),
            max_backoff_seconds=float(cap),
        )

    def success_policy(self, doc: Mapping[str, Any]) -> SuccessPolicy | None:
        """The success policy, defaulting to chief when the job has one, else worker 0."""
        path: Path = ("success_policy",)
        roles = doc.get("roles")
        present = roles.keys() if isinstance(roles, dict) else set()
        if "success_policy" not in doc:
            if "roles" not in doc:
                return None
            return SuccessPolicy.CHIEF if Role.CHIEF.value in present else SuccessPolicy.WORKER0
        if "roles" not in doc:
            self.error(path, "only for jobs with roles")
            return None
        policy: SuccessPolicy | None = self.choice(
            path, doc["success_policy"], SuccessPolicy, 'must be one of "chief", "worker0", "AllWorkers"'
        )
        needed = Role.CHIEF if policy is SuccessPolicy.CHIEF else Role.WORKER
        if policy is not None and present and needed.value not in present:
            self.error(path, f'"{policy.value}" needs a {needed.value} role')
        return policy

    def command_and_image(self, doc: Mapping[str, Any], containerizer: Containerizer | None) -> None:
        """Every member needs a command; with the docker containerizer every member needs an image."""
        needs = [("command", "required")]
        if containerizer is Containerizer.DOCKER:
            needs.append(("image", "required with the docker containerizer"))
        roles = doc.get("roles")
        if "roles" not in doc:
            for key, message in needs:
                if doc.get(key) is None:
                    self.error((key,), message)
            return
        if not isinstance(roles, dict):
            return
        names = {role.value for role in TF_ROLES}
        members = {name: item for name, item in roles.items() if name in names and isinstance(item, dict)}
        for key, message in needs:
            if doc.get(key) is not None or not members:
                continue
            missing = [name for name, item in members.items() if item.get(key) is None]
            if len(missing) == len(members):
                self.error((key,), message)
            else:
                for name in missing:
                    self.error(("roles", name, key), f"{message}: the job sets no {key}")


def _regex_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable regular expression, or None when it compiles cleanly.

    A pattern Python only warns about (FutureWarning "Possible nested set", ...) is refused too: it means
    something else in Marathon's Java regular expressions, and a warning turned into an error (pytest's
    `-W error`) must not escape as an exception. (catch_warnings touches the process-wide filters
    briefly; harmless here, as nothing else changes filters at run time.)
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            re.compile(pattern)
    except (re.error, Warning, OverflowError, RecursionError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None
