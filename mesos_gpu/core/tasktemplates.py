"""TaskInfo templates (pure): what `build_task_info` gives every launch of alike members, worked out once
per member shape so that an offer cycle launching thousands of tasks builds each TaskInfo from a few
shared parts (`mesos_gpu.core.taskinfo` builds one TaskInfo from scratch; the two are held equal by
tests, key order included)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.model import Containerizer, JobSpec, Role, TaskSpec, task_id_for
from mesos_gpu.core.sharing import LABEL_ISOLATION
from mesos_gpu.core.taskinfo import (
    ENV_ATTEMPT,
    ENV_TASK_INDEX,
    ENV_TASK_ROLE,
    LaunchSettings,
    Placed,
    build_task_info,
    mesos_container,
    secret_variables,
    task_uris,
)
from mesos_gpu.core.wire import duration_info


class TaskInfoTemplate:
    """What `build_task_info` gives every launch of members alike (same command, image, env, role, index,
    isolation, uris: `template_key`), worked out once and shared by every job of that shape: `build`
    makes the TaskInfo of one launch, equal to `build_task_info`'s, key order included (a test holds
    them equal). A docker member, whose ExecutorInfo repeats the command, is built by `build_task_info`
    itself.

    TaskInfos are values: nothing changes one after it is built (the driver serialises them, the event
    log and the replay read them). So the parts alike launches have in common are made once and shared
    between their TaskInfos: the kill policy, the role/index/isolation labels, and, for a member without
    ports or TF rendezvous, its whole `command` per attempt (an offer cycle builds thousands of
    TaskInfos; most of them first attempts of alike members)."""

    __slots__ = (
        "_attempt_labels", "_base_env", "_command", "_commands", "_container", "_docker", "_fixed_labels",
        "_isolation_label", "_kill_policy", "_order", "_order_ports", "_secrets", "_tf", "_uris", "settings",
    )

    #: Attempts whose `command` (members without ports or TF) and attempt label are kept per template.
    KEPT_ATTEMPTS = 8

    def __init__(self, spec: JobSpec, task: TaskSpec, settings: LaunchSettings) -> None:
        self.settings = settings
        self._docker = task.containerizer is Containerizer.DOCKER
        is_tf = task.role is not Role.TASK
        self._tf = is_tf
        self._command = tfc.launcher_command(task.command, settings.python) if is_tf else task.command
        env = dict(task.env)
        env[ENV_TASK_ROLE] = task.role.value
        env[ENV_TASK_INDEX] = str(task.index)
        self._base_env = env
        # The variables in name order, for a launch without ports and one with: (name, value), the value
        # None for those each launch sets (its attempt, its ports).
        self._order = _variable_order(env, (ENV_ATTEMPT,))
        self._order_ports = tuple(
            (name, None if value is None else {"name": name, "value": value})
            for name, value in _variable_order(env, (ENV_ATTEMPT, "PORT0", "PORTS"))
        )
        self._uris = task_uris(spec, task, settings)
        self._kill_policy = {"grace_period": duration_info(settings.kill_grace_seconds)}
        self._fixed_labels = (
            {"key": "mesos-gpu/role", "value": task.role.value},
            {"key": "mesos-gpu/index", "value": str(task.index)},
        )
        self._attempt_labels: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
        self._commands: dict[int, dict[str, Any]] = {}
        self._container = mesos_container(spec, task.image)
        self._secrets = secret_variables(spec)
        self._isolation_label = task.isolation.value

    def build(self, spec: JobSpec, task: TaskSpec, attempt: int, placed: Placed) -> dict[str, Any]:
        """The TaskInfo JSON for launch `attempt` of `task` (of this template's shape: `template_key`) on
        the agent in `placed`: `build_task_info(spec, task, attempt, placed, settings)`."""
        if self._docker:
            return build_task_info(spec, task, attempt, placed, self.settings)
        name = task.name
        ports = placed.ports
        alike = not (self._tf or ports)     # the command of this attempt is every such launch's
        kept = self._commands.get(attempt) if alike else None
        if kept is not None:
            command = kept
        else:
            command = self._command_for(spec, task, attempt, placed)
            if alike and attempt < self.KEPT_ATTEMPTS:
                self._commands[attempt] = command
        labels = self._attempt_labels.get(attempt)
        if labels is None:
            labels = ({"key": "mesos-gpu/attempt", "value": str(attempt)},
                      {"key": LABEL_ISOLATION, "value": self._isolation_label})
            if attempt < self.KEPT_ATTEMPTS:
                self._attempt_labels[attempt] = labels
        info: dict[str, Any] = {
            "name": name,
            "task_id": {"value": task_id_for(name, attempt)},
            "agent_id": {"value": placed.agent_id},
            "resources": list(placed.resources),
            "kill_policy": self._kill_policy,
            "labels": {"labels": [{"key": "mesos-gpu/job", "value": task.job_id}, *self._fixed_labels,
                                  *labels]},
            "command": command,
        }
        if self._container is not None:
            info["container"] = self._container
        return info

    def _command_for(self, spec: JobSpec, task: TaskSpec, attempt: int, placed: Placed) -> dict[str, Any]:
        """The `command` of launch `attempt` on `placed` (its variables in name order)."""
        count = str(attempt)
        ports = placed.ports
        if self._tf:
            env = self._base_env.copy()
            env[ENV_ATTEMPT] = count
            if ports:
                env["PORT0"] = str(ports[0])
                env["PORTS"] = ",".join([str(port) for port in ports])
            env.update(_tf_environment(spec, task, placed, self.settings))
            variables = [{"name": key, "value": env[key]} for key in sorted(env)]
        elif ports:
            each = {ENV_ATTEMPT: count, "PORT0": str(ports[0]),
                    "PORTS": ",".join([str(port) for port in ports])}
            variables = [{"name": key, "value": each[key]} if fixed is None else fixed
                         for key, fixed in self._order_ports]
        else:
            variables = [{"name": key, "value": count if value is None else value}
                         for key, value in self._order]
        variables.extend(self._secrets)
        command: dict[str, Any] = {
            "shell": True, "value": self._command, "environment": {"variables": variables},
        }
        if self._uris:
            command["uris"] = self._uris
        return command


def _variable_order(env: Mapping[str, str], each: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """`env` plus the variables `each` launch sets (their value None: theirs win), in name order."""
    merged: dict[str, str | None] = {**env, **dict.fromkeys(each)}
    return tuple((name, merged[name]) for name in sorted(merged))


#: Where `TaskInfoTemplates.get` keeps a member's template on its `TaskSpec` (with the spec it is of).
_KEPT = "_taskinfo_template"


def template_key(spec: JobSpec, task: TaskSpec) -> tuple[Any, ...]:
    """What a `TaskInfoTemplate` depends on besides the settings: members with equal keys share one."""
    env = task.env
    secret_env = getattr(spec, "secret_env", None)
    secrets = getattr(spec, "secrets", None)
    return (task.command, task.image, task.containerizer, task.role, task.index, task.isolation,
            tuple(env.items()) if env else (), getattr(spec, "uris", ()), getattr(spec, "volumes", ()),
            tuple(sorted(secret_env.items())) if secret_env else (),
            tuple(sorted(secrets.items())) if secrets else ())


class TaskInfoTemplates:
    """The templates of the members launched, by `template_key` (at most `limit`: past that, all are
    dropped and made again on demand)."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._by_key: dict[tuple[Any, ...], TaskInfoTemplate] = {}

    def get(self, spec: JobSpec, task: TaskSpec, settings: LaunchSettings) -> TaskInfoTemplate:
        """The template of members like `task` of `spec` under `settings` (one `SchedulerState` has
        one `settings`: it is not part of the key, and a change of it empties the cache)."""
        kept: tuple[JobSpec, TaskInfoTemplate] | None = task.__dict__.get(_KEPT)
        if kept is not None and kept[0] is spec and kept[1].settings is settings:
            return kept[1]
        template = self._get(spec, task, settings)
        task.__dict__[_KEPT] = (spec, template)     # a cache on the member, not a field (see `prepare`)
        return template

    def prepare(self, spec: JobSpec, tasks: Iterable[TaskSpec], settings: LaunchSettings) -> None:
        """Find the templates of `spec`'s whole-GPU and CPU `tasks` now (a job waiting to be placed), so
        that the offer cycle that launches them only reads them off the members."""
        for task in tasks:
            if not task.resources.is_share:
                self.get(spec, task, settings)

    @staticmethod
    def release(tasks: Iterable[TaskSpec]) -> None:
        """Drop the templates kept on `tasks` (their job no longer waits: a template per member of every
        job ever placed would otherwise live as long as its record)."""
        for task in tasks:
            task.__dict__.pop(_KEPT, None)

    def _get(self, spec: JobSpec, task: TaskSpec, settings: LaunchSettings) -> TaskInfoTemplate:
        templates = self._by_key
        key = template_key(spec, task)
        try:
            template = templates[key]
        except KeyError:
            if len(templates) >= self.limit:
                templates.clear()
            template = templates[key] = TaskInfoTemplate(spec, task, settings)
        except TypeError:   # a part that cannot be hashed: not shared
            return TaskInfoTemplate(spec, task, settings)
        if template.settings is not settings:
            templates.clear()
            template = templates[key] = TaskInfoTemplate(spec, task, settings)
        return template

    def __len__(self) -> int:
        return len(self._by_key)


def _tf_environment(
    spec: JobSpec, task: TaskSpec, placed: Placed, settings: LaunchSettings
) -> dict[str, str]:
    """The TF launcher's part of a member's environment (see `member_environment`)."""
    counts = {role.value: role_spec.instances for role, role_spec in spec.roles.items()}
    member = tfc.Member(task.role.value, task.index)
    return tfc.launcher_environment(settings.zk_url, task.job_id, member, counts, host=placed.hostname,
                                    port=placed.ports[0], timeout=spec.rendezvous_timeout_seconds)
