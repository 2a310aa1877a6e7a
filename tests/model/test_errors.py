"""The error tree (HTTP mapping, JSON bodies, JSON Pointers) and the pinned public surface of job modules."""

from __future__ import annotations

import pytest

from mesos_gpu.core import errors, model, policy, validation
from mesos_gpu.core.errors import (
    ConflictError,
    FieldError,
    MesosGpuError,
    NotFoundError,
    NotLeaderError,
    UnavailableError,
    ValidationError,
    VersionConflictError,
    json_pointer,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ValidationError([FieldError("/a", "bad")]), 400, "invalid"),
        (NotFoundError("no job x"), 404, "not_found"),
        (ConflictError("exists"), 409, "conflict"),
        (VersionConflictError("/jobs/x", 3, 4), 409, "conflict"),
        (NotLeaderError("http://10.0.0.2:8080"), 307, "not_leader"),
        (UnavailableError("zookeeper down"), 503, "unavailable"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_every_error_maps_to_http(error: MesosGpuError, status: int, code: str) -> None:
    assert isinstance(error, MesosGpuError)
    assert (error.http_status, error.code) == (status, code)
    body = error.to_dict()["error"]
    assert body["code"] == code and body["message"] == str(error)


def test_validation_error_lists_details() -> None:
    error = ValidationError([FieldError("/roles/worker/gpus", "must be a whole number"), FieldError("", "x")])
    assert error.to_dict() == {
        "error": {
            "code": "invalid",
            "message": "invalid job: /roles/worker/gpus: must be a whole number (and 1 more)",
            "details": [
                {"path": "/roles/worker/gpus", "message": "must be a whole number"},
                {"path": "", "message": "x"},
            ],
        }
    }
    assert str(FieldError("", "must be an object")) == "/: must be an object"


def test_validation_error_needs_errors() -> None:
    with pytest.raises(ValueError):
        ValidationError([])


def test_version_conflict_and_not_leader_carry_their_data() -> None:
    conflict = VersionConflictError("jobs/a", 3, 5)
    assert (conflict.key, conflict.expected, conflict.actual) == ("jobs/a", 3, 5)
    assert isinstance(conflict, ConflictError)
    assert str(conflict) == "jobs/a: expected version 3, found 5"
    assert NotLeaderError(None).leader_url is None
    assert str(NotLeaderError(None)) == "not the leader; the leader is unknown"


@pytest.mark.parametrize(
    ("parts", "pointer"),
    [([], ""), (["roles", "worker", "gpus"], "/roles/worker/gpus"),
     (["constraints", 0, 2], "/constraints/0/2"),
     (["env", "a/b"], "/env/a~1b"), (["env", "a~b"], "/env/a~0b"),
     (["env", ""], "/env/")],
)  # fmt: skip
def test_json_pointer(parts: list[str | int], pointer: str) -> None:
    assert json_pointer(parts) == pointer


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (errors, ["BadJsonError", "ConflictError", "FieldError", "MesosGpuError", "NoLeaderError",
                  "NotFoundError", "NotLeaderError", "TooLargeError", "UnauthorizedError",
                  "UnavailableError", "UnsupportedMediaTypeError", "ValidationError", "VersionConflictError",
                  "json_pointer"]),
        (model, ["DEFAULT_CPUS", "DEFAULT_DISK", "DEFAULT_GPUS", "DEFAULT_MEM", "TF_ROLES", "Constraint",
                 "ConstraintOperator", "Containerizer", "Isolation", "JobSpec", "JobState", "ResourceRequest",
                 "RestartPolicy", "RestartPolicyKind", "Role", "RoleSpec", "SuccessPolicy", "TaskKey",
                 "TaskSpec", "TaskState", "UriSpec", "parse_task_id", "task_id_for"]),
        (policy, ["JITTER_FRACTION", "FailureKind", "RestartDecision", "backoff_delay", "deadline_at",
                  "exit_code_from_message", "failure_kind", "job_succeeded", "members_to_kill_after_success",
                  "should_restart"]),
        (validation, ["JOB_FIELDS", "JOB_SCHEMA_PATH", "RESTART_FIELDS", "ROLE_FIELDS", "validate_job"]),
    ],
    ids=lambda value: getattr(value, "__name__", "names"),
)  # fmt: skip
def test_public_surface_is_pinned(module: object, names: list[str]) -> None:
    assert sorted(module.__all__) == sorted(names)  # type: ignore[attr-defined]
    for name in names:
        assert getattr(module, name) is not None
