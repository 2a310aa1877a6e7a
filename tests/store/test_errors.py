"""The store's errors are the project's errors, so the API maps them to the right HTTP status."""

from __future__ import annotations

import pytest

from mesos_gpu.core import errors
from mesos_gpu.store.base import (
    Conflict,
    InvalidRecord,
    NotFound,
    StoreError,
    StoreUnavailable,
    TooLarge,
    VersionConflict,
)


@pytest.mark.parametrize(
    ("error", "parent", "status", "code"),
    [
        (NotFound("job 'x' does not exist"), errors.NotFoundError, 404, "not_found"),
        (Conflict("job 'x' already exists"), errors.ConflictError, 409, "conflict"),
        (VersionConflict("x", 0, 1), errors.VersionConflictError, 409, "conflict"),
        (InvalidRecord("bad id"), ValueError, 400, "invalid"),
        (TooLarge("too big"), InvalidRecord, 413, "too_large"),
        (TooLarge("too big"), errors.TooLargeError, 413, "too_large"),
        (StoreUnavailable("ZooKeeper did not answer"), errors.UnavailableError, 503, "unavailable"),
    ],
)
def test_each_store_error_is_a_project_error_with_its_status(
    error: StoreError, parent: type[Exception], status: int, code: str
) -> None:
    assert isinstance(error, StoreError)
    assert isinstance(error, errors.MesosGpuError)
    assert isinstance(error, parent)
    assert (error.http_status, error.code) == (status, code)
    assert error.to_dict()["error"]["message"] == str(error)


def test_a_version_conflict_says_what_was_expected_and_found() -> None:
    error = VersionConflict("job-1", 3, 5)
    assert (error.key, error.expected, error.actual) == ("job-1", 3, 5)
    assert str(error) == "job-1: expected version 3, found 5"
    assert isinstance(error, Conflict)
