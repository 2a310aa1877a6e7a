"""Pure job policy (Kubeflow TFJob semantics): restart or not, backoff delay, success, cleanup after success.

Nothing here reads a clock or a random source: time and the jitter draw arrive as arguments.

- `failure_kind(state)`: which kind of failure a terminal Mesos state is (None when it is not a failure).
- `exit_code_from_message(message)`: the exit code in a Mesos status message ("Command exited with
  status 3" -> 3, "Command terminated with signal Killed" -> 137), or None.
- `should_restart(policy, exit_code, restarts_so_far, reason)` -> `RestartDecision` (truthy when the
  member should be relaunched; `.reason` says why in words fit for the job's message).
- `backoff_delay(policy, restarts_so_far, jitter)`: seconds to wait before that relaunch.
- `job_succeeded(spec, finished)`, `members_to_kill_after_success(spec, active)`.
- `deadline_at(spec, submitted_at)`: when the job's deadline passes, or None.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass

from mesos_gpu.core.model import (
    JobSpec,
    RestartPolicy,
    RestartPolicyKind,
    Role,
    SuccessPolicy,
    TaskKey,
    TaskState,
)

__all__ = [
    "JITTER_FRACTION",
    "FailureKind",
    "RestartDecision",
    "backoff_delay",
    "deadline_at",
    "exit_code_from_message",
    "failure_kind",
    "job_succeeded",
    "members_to_kill_after_success",
    "should_restart",
]

JITTER_FRACTION = 0.2
"""A backoff delay is its nominal value reduced by up to this fraction: nominal * (1 - 0.2 * jitter)."""

FIRST_RETRYABLE_EXIT_CODE = 128
"""Under ExitCode, codes from 128 (killed by a signal: 128 + n) are retryable; 1 to 127 are permanent."""


class FailureKind(enum.StrEnum):
    """How a member failed, as far as restarting is concerned."""

    EXITED = "exited"  # the command ended with a non-zero status (TASK_FAILED)
    KILLED = "killed"  # killed without the scheduler asking (TASK_KILLED it did not request)
    LOST = "lost"  # the agent or its container went away (TASK_LOST, DROPPED, GONE, UNREACHABLE, ...)
    INVALID = "invalid"  # Mesos rejected the task description (TASK_ERROR): a relaunch fails the same way


_FAILURE_KINDS = {
    TaskState.FAILED: FailureKind.EXITED,
    TaskState.KILLED: FailureKind.KILLED,
    TaskState.ERROR: FailureKind.INVALID,
    TaskState.LOST: FailureKind.LOST,
    TaskState.DROPPED: FailureKind.LOST,
    TaskState.GONE: FailureKind.LOST,
    TaskState.GONE_BY_OPERATOR: FailureKind.LOST,
    TaskState.UNREACHABLE: FailureKind.LOST,
}


def failure_kind(state: TaskState) -> FailureKind | None:
    """The failure a Mesos state reports, or None (running, finished, unknown: not a failure yet).

    TASK_UNREACHABLE counts as LOST: the caller decides when an unreachable member is given up on.
    A TASK_KILLED the scheduler asked for is not a failure; the caller must not pass it here.
    """
    return _FAILURE_KINDS.get(state)


_EXITED = re.compile(r"exited with status (-?\d+)")
_SIGNALLED = re.compile(r"terminated with signal ([A-Za-z0-9/ ]+)")
_SIGNALS = {
    "Hangup": 1,
    "Interrupt": 2,
    "Quit": 3,
    "Illegal instruction": 4,
    "Trace/breakpoint trap": 5,
    "Aborted": 6,
    "Bus error": 7,
    "Floating point exception": 8,
    "Killed": 9,
    "User defined signal 1": 10,
    "Segmentation fault": 11,
    "User defined signal 2": 12,
    "Broken pipe": 13,
    "Alarm clock": 14,
    "Terminated": 15,
}


def exit_code_from_message(message: str | None) -> int | None:
    """The exit code a Mesos command-executor message reports, or None when it reports none.

    "Command exited with status 3" -> 3; "Command terminated with signal Killed" -> 128 + 9 = 137
    (the shell convention); a signal named by number ("signal 9") works too; an unrecognised signal
    name gives 128 (still "killed by a signal", so retryable under ExitCode).
    """
    if not message:
        return None
    exited = _EXITED.search(message)
    if exited:
        return int(exited.group(1))
    signalled = _SIGNALLED.search(message)
    if signalled:
        name = signalled.group(1).strip()
        number = int(name) if name.isdigit() else _SIGNALS.get(name, 0)
        return FIRST_RETRYABLE_EXIT_CODE + number
    return None


@dataclass(frozen=True)
class RestartDecision:
    """Whether to relaunch a failed member, and why (a sentence for the job's message). Truthy if restart."""

    restart: bool
    reason: str

    def __bool__(self) -> bool:
        return self.restart


def should_restart(
    policy: RestartPolicy, exit_code: int | None, restarts_so_far: int, reason: FailureKind
) -> RestartDecision:
    """Decide whether a failed member is relaunched (TFJob semantics).

    - TASK_ERROR (INVALID) is never retried: the same task description would be rejected again.
    - Never: no restart. OnFailure: any failure is retried.
    - ExitCode: an EXITED member with code 1-127 is a permanent failure; 128 and above (killed by a
      signal), negative codes (a signal, Python style), an unknown code, KILLED and LOST are retried.
    - Every retry counts against `backoff_limit`, the number of restarts of the whole job.
    An exit code of 0 is not a failure: no restart.
    """
    if restarts_so_far < 0:
        raise ValueError(f"restarts_so_far must be >= 0, not {restarts_so_far}")
    code_text = "" if exit_code is None else f" (exit code {exit_code})"
    if reason is FailureKind.INVALID:
        return RestartDecision(False, "Mesos rejected the task description; a restart cannot help")
    if reason is FailureKind.EXITED and exit_code == 0:
        return RestartDecision(False, "exit code 0 is not a failure")
    if policy.policy is RestartPolicyKind.NEVER:
        return RestartDecision(False, f"task {reason.value}{code_text}; restart policy is Never")
    if (
        policy.policy is RestartPolicyKind.EXIT_CODE
        and reason is FailureKind.EXITED
        and exit_code is not None
        and 0 < exit_code < FIRST_RETRYABLE_EXIT_CODE
    ):
        return RestartDecision(
            False, f"exit code {exit_code} is a permanent failure under the ExitCode policy (1-127)"
        )
    if restarts_so_far >= policy.backoff_limit:
        return RestartDecision(
            False, f"task {reason.value}{code_text}; backoff limit reached ({policy.backoff_limit} restarts)"
        )
    return RestartDecision(
        True,
        f"task {reason.value}{code_text}; restart {restarts_so_far + 1} of {policy.backoff_limit}"
        f" under the {policy.policy.value} policy",
    )


def backoff_delay(policy: RestartPolicy, restarts_so_far: int, jitter: float) -> float:
    """Seconds to wait before restart number `restarts_so_far + 1`.

    Nominal delay: backoff_seconds * 2**restarts_so_far, capped at max_backoff_seconds. `jitter` is a
    uniform draw from [0, 1] made by the caller; the delay is nominal * (1 - JITTER_FRACTION * jitter),
    so it never exceeds the cap and, for a fixed jitter, never decreases as restarts grow.
    """
    if restarts_so_far < 0:
        raise ValueError(f"restarts_so_far must be >= 0, not {restarts_so_far}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within [0, 1], not {jitter}")
    nominal = min(policy.max_backoff_seconds, policy.backoff_seconds * 2.0 ** min(restarts_so_far, 1000))
    return nominal * (1.0 - JITTER_FRACTION * jitter)


def job_succeeded(spec: JobSpec, finished: Collection[TaskKey]) -> bool:
    """Whether the job succeeded, given the members that finished successfully (TASK_FINISHED).

    Single-task job: its task finished. chief: the chief finished. worker0: worker 0 finished.
    AllWorkers: every worker finished, and the chief too when the job has one.
    """
    if not spec.roles:
        return TaskKey(Role.TASK, 0) in finished
    policy = spec.success_policy
    if policy is SuccessPolicy.CHIEF:
        return TaskKey(Role.CHIEF, 0) in finished
    if policy is SuccessPolicy.ALL_WORKERS:
        deciders = [key for key in spec.members() if key.role in (Role.CHIEF, Role.WORKER)]
        return all(key in finished for key in deciders)
    return TaskKey(Role.WORKER, 0) in finished


def members_to_kill_after_success(spec: JobSpec, active: Collection[TaskKey]) -> tuple[TaskKey, ...]:
    """Members still active once the job has succeeded, which must be killed (canonical order).

    ps and evaluator members never end on their own; under the chief and worker0 policies other workers
    may still run too. As TFJob's default clean-up, every member still active is killed: a succeeded
    job leaves nothing running. ps and evaluator members come first, so servers stop before workers.
    """
    order = {Role.PS: 0, Role.EVALUATOR: 1, Role.WORKER: 2, Role.CHIEF: 3, Role.TASK: 4}
    members = [key for key in spec.members() if key in active]
    return tuple(sorted(members, key=lambda key: order[key.role]))


def deadline_at(spec: JobSpec, submitted_at: float) -> float | None:
    """When the job's deadline passes (seconds, same clock as `submitted_at`), or None without a deadline.

    The deadline counts from submission, waiting time included (like Kubernetes' activeDeadlineSeconds);
    a job still not terminal by then is killed and FAILED.
    """
    return None if spec.deadline_seconds is None else submitted_at + spec.deadline_seconds
