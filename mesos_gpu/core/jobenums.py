"""The enumerations of the job model (pure): roles, containerizers, isolation levels, restart and
success policies, constraint operators, and the job and task states with their rules.

`mesos_gpu.core.model` re-exports every name here; import them from there.
"""

from __future__ import annotations

import enum

from mesos_gpu.core.wire import TERMINAL_TASK_STATES


class Role(enum.StrEnum):
    """A member's role. The four TF roles appear in job JSON; TASK is the lone task of a single-task job."""

    CHIEF = "chief"
    WORKER = "worker"
    PS = "ps"
    EVALUATOR = "evaluator"
    TASK = "task"


TF_ROLES: tuple[Role, ...] = (Role.CHIEF, Role.WORKER, Role.PS, Role.EVALUATOR)
"""The roles a job may name, in canonical order (the order of `JobSpec.roles` and `JobSpec.tasks`)."""


class Containerizer(enum.StrEnum):
    """How a task is contained (DESIGN section 2)."""

    MESOS = "mesos"  # Mesos containerizer, docker image via the unified containerizer, gpus isolator
    DOCKER = "docker"  # the project's executor runs the image through the Docker engine


class Isolation(enum.StrEnum):
    """How a task's GPUs are isolated (what each level enforces: `mesos_gpu.core.sharing.STATEMENTS`).

    EXCLUSIVE is for whole GPUs only; the other four are levels of a GPU share (a fraction of one GPU
    run by a share host)."""

    EXCLUSIVE = "exclusive"  # whole GPUs, no other task may use them (Mesos devices cgroup)
    MIG = "mig"  # a MIG instance: hardware memory, compute and fault isolation, fixed sizes
    MPS = "mps"  # CUDA MPS: compute percentage and pinned memory limit; one client's fatal fault hits all
    CAPPED = "capped"  # time-sliced; memory cap by the share host's NVML watchdog, no compute isolation
    SHARED = "shared"  # time-sliced, nothing enforced

    @property
    def is_share(self) -> bool:
        """Whether this level is one of a GPU share (everything but EXCLUSIVE)."""
        return self is not Isolation.EXCLUSIVE


class RestartPolicyKind(enum.StrEnum):
    """When a failed member is relaunched (Kubeflow TFJob semantics)."""

    NEVER = "Never"
    ON_FAILURE = "OnFailure"
    EXIT_CODE = "ExitCode"  # exit codes >= 128 (signals) are retryable, 1-127 permanent


class SuccessPolicy(enum.StrEnum):
    """Which members decide that a distributed job succeeded (Kubeflow TFJob semantics)."""

    CHIEF = "chief"  # the chief finished successfully (default when the job has a chief)
    WORKER0 = "worker0"  # worker 0 finished successfully (default without a chief)
    ALL_WORKERS = "AllWorkers"  # every worker (and the chief, if any) finished successfully


class ConstraintOperator(enum.StrEnum):
    """Marathon placement constraint operators."""

    UNIQUE = "UNIQUE"  # [field, UNIQUE]: each member on a distinct value of field
    CLUSTER = "CLUSTER"  # [field, CLUSTER, value?]: all members on one value (the given one, if any)
    LIKE = "LIKE"  # [field, LIKE, regex]: field's value fully matches regex
    UNLIKE = "UNLIKE"  # [field, UNLIKE, regex]: field's value does not fully match regex
    GROUP_BY = "GROUP_BY"  # [field, GROUP_BY, n?]: spread evenly across (n) values of field
    MAX_PER = "MAX_PER"  # [field, MAX_PER, n]: at most n members per value of field


class JobState(enum.StrEnum):
    """A job's lifecycle: PENDING -> STAGING -> RUNNING -> SUCCEEDED | FAILED | KILLED, plus RESTARTING."""

    PENDING = "PENDING"  # accepted and persisted, waiting for offers that fit every member
    STAGING = "STAGING"  # launched, not every member reported running yet
    RUNNING = "RUNNING"  # every member running (or some already finished)
    RESTARTING = "RESTARTING"  # a member failed and is waiting for its backoff before relaunch
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_JOB_STATES

    def can_become(self, other: JobState) -> bool:
        """Whether a job may move from this state to `other` (never to itself, never out of terminal)."""
        return other in _JOB_TRANSITIONS[self]


_TERMINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED})
_FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED)
_JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # PENDING -> RUNNING: reconciliation after a failover may find members already running.
    JobState.PENDING: frozenset({JobState.STAGING, JobState.RUNNING, JobState.FAILED, JobState.KILLED}),
    # STAGING -> PENDING: the launch was dropped before anything ran; place again.
    JobState.STAGING: frozenset({JobState.PENDING, JobState.RUNNING, JobState.RESTARTING, *_FINAL}),
    JobState.RUNNING: frozenset({JobState.RESTARTING, *_FINAL}),
    JobState.RESTARTING: frozenset({JobState.PENDING, JobState.STAGING, JobState.RUNNING, *_FINAL}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.KILLED: frozenset(),
}


class TaskState(enum.StrEnum):
    """The Mesos task states, valued by their Mesos names ("TASK_RUNNING")."""

    STAGING = "TASK_STAGING"
    STARTING = "TASK_STARTING"
    RUNNING = "TASK_RUNNING"
    KILLING = "TASK_KILLING"
    FINISHED = "TASK_FINISHED"
    FAILED = "TASK_FAILED"
    KILLED = "TASK_KILLED"
    ERROR = "TASK_ERROR"
    LOST = "TASK_LOST"
    DROPPED = "TASK_DROPPED"
    UNREACHABLE = "TASK_UNREACHABLE"
    GONE = "TASK_GONE"
    GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
    UNKNOWN = "TASK_UNKNOWN"

    @classmethod
    def from_mesos(cls, name: str) -> TaskState:
        """The state named by a Mesos TaskStatus `state` ("TASK_RUNNING"); ValueError when unknown."""
        return cls(name)

    @property
    def is_terminal(self) -> bool:
        """Terminal per Mesos: the task will not run again (TASK_UNREACHABLE and TASK_UNKNOWN are not)."""
        return self in _TERMINAL_TASK_STATES

    @property
    def is_active(self) -> bool:
        """Launched and possibly running: not terminal."""
        return not self.is_terminal


# The enum members of Mesos' terminal states (`wire.TERMINAL_TASK_STATES`, the one list); a set of
# members, not names, because an Enum hashes by its member name.
_TERMINAL_TASK_STATES = frozenset(TaskState(name) for name in TERMINAL_TASK_STATES)
