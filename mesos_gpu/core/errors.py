"""The exceptions mesos-gpu raises on purpose, and the HTTP status the API maps each one to.

Hierarchy (catch the narrowest one that makes sense)::

    MesosGpuError                          base of every deliberate error; .code, .http_status, .to_dict()
     ├── NotLeaderError             307    this scheduler is a standby; .leader_url says where to go (or None)
     ├── ValidationError            400    a document is wrong; .errors lists every FieldError(path, message)
     │    └── BadJsonError                 the request body is not UTF-8 JSON (code "invalid_json")
     ├── UnauthorizedError          401    the request has no valid bearer token
     ├── NotFoundError              404    no such job, task or agent
     ├── ConflictError              409    the state changed underneath (a duplicate, a lost compare-and-set)
     │    └── VersionConflictError         a versioned write expected another version (.expected, .actual)
     ├── TooLargeError              413    a request body, or the record it would make, is over the limit
     ├── UnsupportedMediaTypeError  415    the request body's Content-Type is not JSON
     └── UnavailableError           503    a dependency (ZooKeeper, the Mesos master) cannot be reached now
          └── NoLeaderError                a standby that knows no leader yet (code "no_leader")

The job store's errors (`mesos_gpu.store.base.StoreError` and its subclasses) are also subclasses of
these, so the API answers a store failure with the status of the error it stands for.

`FieldError.path` is a JSON Pointer (RFC 6901) into the submitted document, e.g. "/roles/worker/gpus";
"" is the whole document. `to_dict()` gives the body of the API's error answers:
``{"error": {"code": ..., "message": ..., "details": [{"path": ..., "message": ...}]}}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BadJsonError",
    "ConflictError",
    "FieldError",
    "MesosGpuError",
    "NoLeaderError",
    "NotFoundError",
    "NotLeaderError",
    "TooLargeError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "VersionConflictError",
    "json_pointer",
]


def json_pointer(parts: Iterable[str | int]) -> str:
    """The JSON Pointer (RFC 6901) of a path given as keys and indices: ["env", "a/b"] -> "/env/a~1b"."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass(frozen=True, order=True)
class FieldError:
    """One thing wrong in a document: where (JSON Pointer) and what, in plain words."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


class MesosGpuError(Exception):
    """Base of every error mesos-gpu raises deliberately."""

    code: str = "error"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[dict[str, str]]:
        """Structured details for the API's error body (empty unless a subclass has some)."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON error body for this error."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details()}}


class ValidationError(MesosGpuError):
    """A submitted document is invalid; `errors` holds every problem found, never empty."""

    code = "invalid"
    http_status = 400

    def __init__(self, errors: Iterable[FieldError], message: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("a ValidationError needs at least one FieldError")
        if not message:
            count = len(self.errors)
            first = self.errors[0]
            more = f" (and {count - 1} more)" if count > 1 else ""
            message = f"invalid job: {first}{more}"
        super().__init__(message)

    def details(self) -> list[dict[str, str]]:
        return [error.to_dict() for error in self.errors]


class BadJsonError(ValidationError):
    """The request body is not JSON (or not UTF-8)."""

    code = "invalid_json"


class UnauthorizedError(MesosGpuError):
    """The request has no valid bearer token (the API answers with `WWW-Authenticate: Bearer`)."""

    code = "unauthorized"
    http_status = 401


class NotFoundError(MesosGpuError):
    """The named job, task or agent does not exist."""

    code = "not_found"
    http_status = 404


class ConflictError(MesosGpuError):
    """The request conflicts with the current state (a duplicate, or a write that lost a race)."""

    code = "conflict"
    http_status = 409


class VersionConflictError(ConflictError):
    """A compare-and-set write expected `expected` but the stored record is at `actual`."""

    def __init__(self, key: str, expected: int | None, actual: int | None) -> None:
        super().__init__(f"{key}: expected version {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class TooLargeError(MesosGpuError):
    """A request body, or the record it would make, is larger than the limit."""

    code = "too_large"
    http_status = 413


class UnsupportedMediaTypeError(MesosGpuError):
    """The request body is not sent as JSON (its Content-Type)."""

    code = "unsupported_media_type"
    http_status = 415


class NotLeaderError(MesosGpuError):
    """This scheduler is not the leader; the API answers 307 to `leader_url` when it is known."""

    code = "not_leader"
    http_status = 307

    def __init__(self, leader_url: str | None, message: str = "") -> None:
        super().__init__(message or f"not the leader; the leader is {leader_url or 'unknown'}")
        self.leader_url = leader_url


class UnavailableError(MesosGpuError):
    """A dependency (ZooKeeper, the Mesos master) cannot be reached right now; retry later."""

    code = "unavailable"
    http_status = 503


class NoLeaderError(UnavailableError):
    """A standby that does not know a leader (an election is under way): retry soon."""

    code = "no_leader"
