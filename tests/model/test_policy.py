"""Restart decisions, backoff delays, success evaluation and clean-up after success (pure policy)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.model import RestartPolicy, RestartPolicyKind, Role, TaskKey, TaskState
from mesos_gpu.core.policy import (
    JITTER_FRACTION,
    FailureKind,
    backoff_delay,
    deadline_at,
    exit_code_from_message,
    failure_kind,
    job_succeeded,
    members_to_kill_after_success,
    should_restart,
)
from mesos_gpu.core.validation import validate_job
from tests.model.cases import dist, single
from tests.strategies import restart_policies

NEVER = RestartPolicy(RestartPolicyKind.NEVER, backoff_limit=3)
ON_FAILURE = RestartPolicy(RestartPolicyKind.ON_FAILURE, backoff_limit=3)
EXIT_CODE = RestartPolicy(RestartPolicyKind.EXIT_CODE, backoff_limit=3)
LIMIT_ZERO = RestartPolicy(RestartPolicyKind.ON_FAILURE, backoff_limit=0)
EXITED, KILLED, LOST, INVALID = FailureKind.EXITED, FailureKind.KILLED, FailureKind.LOST, FailureKind.INVALID
PERMANENT = "exit code {} is a permanent failure under the ExitCode policy (1-127)"
LIMIT = "backoff limit reached ({} restarts)"
RETRY = "restart {} of 3 under the {} policy"

# id: (policy, exit code, restarts so far, failure kind, restart?, reason)
RESTART_TABLE = {
    "never-exit": (NEVER, 1, 0, EXITED, False, "task exited (exit code 1); restart policy is Never"),
    "never-agent-lost": (NEVER, None, 0, LOST, False, "task lost; restart policy is Never"),
    "on-failure-exit-1": (
        ON_FAILURE, 1, 0, EXITED, True, "task exited (exit code 1); " + RETRY.format(1, "OnFailure")
    ),
    "on-failure-last-restart": (
        ON_FAILURE, 137, 2, EXITED, True, "task exited (exit code 137); " + RETRY.format(3, "OnFailure")
    ),
    "on-failure-limit": (ON_FAILURE, 1, 3, EXITED, False, "task exited (exit code 1); " + LIMIT.format(3)),
    "on-failure-agent-lost": (ON_FAILURE, None, 0, LOST, True, "task lost; " + RETRY.format(1, "OnFailure")),
    "on-failure-killed": (ON_FAILURE, None, 0, KILLED, True, "task killed; " + RETRY.format(1, "OnFailure")),
    "task-error-never-retried": (
        ON_FAILURE, None, 0, INVALID, False, "Mesos rejected the task description; a restart cannot help"
    ),
    "exit-code-1-permanent": (EXIT_CODE, 1, 0, EXITED, False, PERMANENT.format(1)),
    "exit-code-127-permanent": (EXIT_CODE, 127, 0, EXITED, False, PERMANENT.format(127)),
    "exit-code-128-retryable": (
        EXIT_CODE, 128, 0, EXITED, True, "task exited (exit code 128); " + RETRY.format(1, "ExitCode")
    ),
    "exit-code-sigkill-retryable": (
        EXIT_CODE, 137, 1, EXITED, True, "task exited (exit code 137); " + RETRY.format(2, "ExitCode")
    ),
    "exit-code-negative-signal": (
        EXIT_CODE, -9, 0, EXITED, True, "task exited (exit code -9); " + RETRY.format(1, "ExitCode")
    ),
    "exit-code-unknown": (EXIT_CODE, None, 0, EXITED, True, "task exited; " + RETRY.format(1, "ExitCode")),
    "exit-code-agent-lost": (EXIT_CODE, None, 0, LOST, True, "task lost; " + RETRY.format(1, "ExitCode")),
    "exit-code-limit": (EXIT_CODE, 143, 3, EXITED, False, "task exited (exit code 143); " + LIMIT.format(3)),
    "permanence-named-before-limit": (EXIT_CODE, 2, 3, EXITED, False, PERMANENT.format(2)),
    "exit-0-is-no-failure": (ON_FAILURE, 0, 0, EXITED, False, "exit code 0 is not a failure"),
    "limit-zero": (LIMIT_ZERO, 1, 0, EXITED, False, "task exited (exit code 1); " + LIMIT.format(0)),
}  # fmt: skip


@pytest.mark.parametrize("row", RESTART_TABLE.values(), ids=RESTART_TABLE.keys())
def test_should_restart(row: tuple[RestartPolicy, int | None, int, FailureKind, bool, str]) -> None:
    policy, exit_code, restarts, kind, restart, reason = row
    decision = should_restart(policy, exit_code, restarts, kind)
    assert (decision.restart, decision.reason) == (restart, reason)
    assert bool(decision) is restart


def test_should_restart_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        should_restart(ON_FAILURE, 1, -1, EXITED)


@settings(max_examples=300, deadline=None)
@given(
    restart_policies(),
    st.one_of(st.none(), st.integers(-300, 300)),
    st.integers(0, 200),
    st.sampled_from(FailureKind),
)
def test_restart_properties(
    policy: RestartPolicy, exit_code: int | None, restarts: int, kind: FailureKind
) -> None:
    decision = should_restart(policy, exit_code, restarts, kind)
    if decision:
        assert restarts < policy.backoff_limit
        assert policy.policy is not RestartPolicyKind.NEVER and kind is not FailureKind.INVALID
    if (
        policy.policy is RestartPolicyKind.EXIT_CODE
        and kind is FailureKind.EXITED
        and exit_code
        and 1 <= exit_code <= 127
    ):
        assert not decision
    if policy.policy is RestartPolicyKind.ON_FAILURE and kind is not FailureKind.INVALID and exit_code != 0:
        assert bool(decision) == (restarts < policy.backoff_limit)


@pytest.mark.parametrize(
    ("restarts", "jitter", "expected"),
    [(0, 0.0, 10.0), (1, 0.0, 20.0), (2, 0.0, 40.0), (5, 0.0, 300.0), (50, 0.0, 300.0), (5000, 0.0, 300.0),
     (0, 1.0, 8.0), (1, 0.5, 18.0), (5, 1.0, 240.0)],
)  # fmt: skip
def test_backoff_delay_table(restarts: int, jitter: float, expected: float) -> None:
    policy = RestartPolicy(RestartPolicyKind.ON_FAILURE, backoff_seconds=10, max_backoff_seconds=300)
    assert backoff_delay(policy, restarts, jitter) == pytest.approx(expected)


@pytest.mark.parametrize(("restarts", "jitter"), [(-1, 0.5), (0, -0.1), (0, 1.5), (0, float("nan"))])
def test_backoff_delay_rejects_bad_arguments(restarts: int, jitter: float) -> None:
    with pytest.raises(ValueError):
        backoff_delay(ON_FAILURE, restarts, jitter)


@settings(max_examples=300, deadline=None)
@given(restart_policies(), st.integers(0, 2000), st.floats(0, 1))
def test_backoff_is_monotone_up_to_the_cap_and_within_jitter_bounds(
    policy: RestartPolicy, restarts: int, jitter: float
) -> None:
    delay = backoff_delay(policy, restarts, jitter)
    following = backoff_delay(policy, restarts + 1, jitter)
    assert following >= delay
    nominal = min(policy.max_backoff_seconds, policy.backoff_seconds * 2.0 ** min(restarts, 1000))
    assert nominal * (1 - JITTER_FRACTION) - 1e-9 <= delay <= nominal
    assert 0 <= delay <= policy.max_backoff_seconds
    assert backoff_delay(policy, restarts, 0.0) >= delay >= backoff_delay(policy, restarts, 1.0)


@pytest.mark.parametrize(
    ("state", "kind"),
    [(TaskState.FAILED, EXITED), (TaskState.KILLED, KILLED), (TaskState.ERROR, INVALID),
     (TaskState.LOST, LOST),
     (TaskState.DROPPED, LOST), (TaskState.GONE, LOST), (TaskState.GONE_BY_OPERATOR, LOST),
     (TaskState.UNREACHABLE, LOST), (TaskState.FINISHED, None), (TaskState.RUNNING, None),
     (TaskState.STAGING, None), (TaskState.UNKNOWN, None), (TaskState.KILLING, None)],
)  # fmt: skip
def test_failure_kind(state: TaskState, kind: FailureKind | None) -> None:
    assert failure_kind(state) is kind


@pytest.mark.parametrize(
    ("message", "code"),
    [("Command exited with status 1", 1), ("Command exited with status 0", 0),
     ("Command exited with status 137", 137), ("Command terminated with signal Killed", 137),
     ("Command terminated with signal Terminated", 143),
     ("Command terminated with signal Segmentation fault", 139), ("Command terminated with signal 6", 134),
     ("Command terminated with signal Nonsense", 128), ("Container exited with status 2", 2),
     ("Agent removed", None), ("", None), (None, None)],
)  # fmt: skip
def test_exit_code_from_message(message: str | None, code: int | None) -> None:
    assert exit_code_from_message(message) == code


C0, W0, W1, P0, E0, T0 = (
    TaskKey(Role.CHIEF, 0), TaskKey(Role.WORKER, 0), TaskKey(Role.WORKER, 1), TaskKey(Role.PS, 0),
    TaskKey(Role.EVALUATOR, 0), TaskKey(Role.TASK, 0),
)  # fmt: skip
FULL = {"chief": {}, "worker": {"instances": 2}, "ps": {}, "evaluator": {}}
WORKERS = {"worker": {"instances": 2}, "ps": {}}


@pytest.mark.parametrize(
    ("doc", "finished", "succeeded"),
    [
        pytest.param(single(), set(), False, id="single-running"),
        pytest.param(single(), {T0}, True, id="single-finished"),
        pytest.param(dist(FULL), {W0, W1}, False, id="chief-policy-workers-alone-not-enough"),
        pytest.param(dist(FULL), {C0}, True, id="chief-policy-chief-finished"),
        pytest.param(dist(WORKERS), {W1}, False, id="worker0-policy-worker1-not-enough"),
        pytest.param(dist(WORKERS), {W0}, True, id="worker0-policy"),
        pytest.param(dist(FULL, success_policy="worker0"), {W0}, True, id="worker0-policy-with-chief"),
        pytest.param(dist(WORKERS, success_policy="AllWorkers"), {W0}, False, id="all-workers-one-missing"),
        pytest.param(dist(WORKERS, success_policy="AllWorkers"), {W0, W1}, True, id="all-workers"),
        pytest.param(
            dist(FULL, success_policy="AllWorkers"), {W0, W1}, False, id="all-workers-chief-missing"
        ),
        pytest.param(dist(FULL, success_policy="AllWorkers"), {C0, W0, W1}, True, id="all-workers-and-chief"),
        pytest.param(dist(FULL), {P0, E0}, False, id="ps-and-evaluator-never-decide"),
    ],
)
def test_job_succeeded(doc: dict, finished: set[TaskKey], succeeded: bool) -> None:
    assert job_succeeded(validate_job(doc), finished) is succeeded


@pytest.mark.parametrize(
    ("doc", "active", "kill"),
    [
        pytest.param(dist(FULL), {W0, W1, P0, E0}, (P0, E0, W0, W1), id="chief-done-kill-rest-servers-first"),
        pytest.param(dist(FULL), {P0, E0}, (P0, E0), id="ps-and-evaluator"),
        pytest.param(dist(FULL), set(), (), id="nothing-left"),
        pytest.param(dist(FULL), {TaskKey(Role.WORKER, 7)}, (), id="unknown-members-ignored"),
        pytest.param(single(), {T0}, (T0,), id="single"),
    ],
)
def test_members_to_kill_after_success(doc: dict, active: set[TaskKey], kill: tuple[TaskKey, ...]) -> None:
    assert members_to_kill_after_success(validate_job(doc), active) == kill


def test_deadline_at() -> None:
    assert deadline_at(validate_job(single()), 100.0) is None
    assert deadline_at(validate_job(single(deadline_seconds=60)), 100.0) == 160.0
