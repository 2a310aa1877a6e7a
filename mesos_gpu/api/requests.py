"""Reading an API request: its query arguments, JSON body, Content-Type and Content-Length, job id
and Idempotency-Key. Every function raises the `mesos_gpu.core.errors` error the API answers with.

Example::

    query = QueryReader(handler)
    limit = query.integer("limit", 100, 1, 1000)
    query.check()                                   # ValidationError (400) listing every bad argument
    spec = validate_job(parse_json(body))           # BadJsonError (400) when the body is not JSON
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import tornado.web

from mesos_gpu.core.errors import (
    BadJsonError,
    FieldError,
    MesosGpuError,
    NotFoundError,
    TooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from mesos_gpu.core.joblimits import TEXT_MESSAGE, unicode_problem
from mesos_gpu.core.model import JobSpec
from mesos_gpu.core.state import new_job_record
from mesos_gpu.store.base import (
    MAX_RECORD_BYTES,
    InvalidRecord,
    TooLarge,
    check_idempotency_key,
    check_job_id,
    encode_record,
)

JSON_TYPE = "application/json"
MAX_BODY_BYTES = 1 << 20  # 1 MiB
INTEGER = re.compile(r"-?[0-9]{1,18}")


class QueryReader:
    """Reads query arguments, collecting a FieldError (path "/query/<name>") per bad one."""

    def __init__(self, handler: tornado.web.RequestHandler) -> None:
        self.handler = handler
        self.errors: list[FieldError] = []

    def text(self, name: str) -> str | None:
        """The argument as sent (not stripped), or None when absent (or not valid Unicode text: an
        error; tornado itself answers 400 to a query that is not UTF-8)."""
        value = self.handler.get_query_argument(name, None, strip=False)
        problem = None if value is None else unicode_problem(value)
        if problem is not None:
            self.errors.append(FieldError(f"/query/{name}", TEXT_MESSAGE.format(problem=problem)))
            return None
        return value

    def nonempty(self, name: str) -> str | None:
        """The argument, or None when absent; an empty one is an error."""
        value = self.text(name)
        if value == "":
            self.errors.append(FieldError(f"/query/{name}", "must not be empty"))
            return None
        return value

    def matching(self, name: str, pattern: re.Pattern[str], message: str) -> str | None:
        """The argument when it matches `pattern` in full, or None (absent, or an error: `message`)."""
        value = self.text(name)
        if value is not None and not pattern.fullmatch(value):
            self.errors.append(FieldError(f"/query/{name}", message))
            return None
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """The argument as a whole number from `low` to `high`; `default` when absent or bad."""
        raw = self.text(name)
        if raw is None:
            return default
        value = int(raw) if INTEGER.fullmatch(raw) else low - 1
        if not low <= value <= high:
            self.errors.append(FieldError(f"/query/{name}", f"must be a whole number from {low} to {high}"))
            return default
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        """The argument when it is one of `allowed`; `default` when absent or bad."""
        raw = self.text(name)
        if raw is None:
            return default
        if raw not in allowed:
            self.errors.append(FieldError(f"/query/{name}", f"must be one of {', '.join(allowed)}"))
            return default
        return raw

    def check(self) -> None:
        """Raise ValidationError listing every bad argument read so far (none: return)."""
        if self.errors:
            raise ValidationError(self.errors, "invalid query: " + "; ".join(str(e) for e in self.errors))


def parse_json(body: bytes) -> Any:
    """The request body as JSON; BadJsonError (400) when it is not UTF-8 JSON."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJsonError([FieldError("", f"the body is not UTF-8 text ({exc.reason})")]) from None
    try:
        return json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise BadJsonError([FieldError("", f"the body is not valid JSON: {exc}")]) from None


def check_json_content_type(header: str | None) -> None:
    """Accept `application/json` (or `application/*+json`), charset utf-8 if one is named;
    UnsupportedMediaTypeError (415) otherwise."""
    media, *params = (header or "").split(";")
    media = media.strip().lower()
    charsets = [
        p.split("=", 1)[1].strip().strip('"').lower()
        for p in params
        if p.strip().lower().startswith("charset=")
    ]
    if (media == JSON_TYPE or (media.startswith("application/") and media.endswith("+json"))) and all(
        c in ("utf-8", "utf8") for c in charsets
    ):
        return
    shown = f"{header!r}" if header else "none"
    raise UnsupportedMediaTypeError(f"send the job as {JSON_TYPE} (Content-Type was {shown})")


def check_content_length(header: str | None) -> None:
    """TooLargeError (413) when the announced body is over MAX_BODY_BYTES (before it is read)."""
    if header is not None and header.strip().isdigit() and int(header) > MAX_BODY_BYTES:
        raise TooLargeError(f"the job document is larger than {MAX_BODY_BYTES} bytes")


def job_id_of(path_part: str) -> str:
    """The job id named in a URL path; NotFoundError (404) when no job could have that id."""
    try:
        return check_job_id(path_part)
    except InvalidRecord:
        raise NotFoundError(f"no job {path_part!r}") from None


def idempotency_key_of(header: str | None) -> str | None:
    """The Idempotency-Key header, or None when absent; ValidationError (400) when unusable."""
    if header is None:
        return None
    problem = unicode_problem(header)
    if problem is not None:  # not over HTTP (tornado reads headers as Latin-1), but never a 500
        raise ValidationError([FieldError("/headers/Idempotency-Key", TEXT_MESSAGE.format(problem=problem))])
    try:
        return check_idempotency_key(header)
    except InvalidRecord:
        error = FieldError("/headers/Idempotency-Key", "must be 1 to 255 characters")
        raise ValidationError([error]) from None


class IdempotencyKeyReusedError(MesosGpuError):
    """An Idempotency-Key sent again with another job than the one it created (422, as the IETF draft
    "The Idempotency-Key HTTP Header Field" says of a reused key with a different payload)."""

    code = "idempotency_key_reused"
    http_status = 422

    def details(self) -> list[dict[str, str]]:
        message = "already used for another job: send this job with a new key, or the first job again"
        return [FieldError("/headers/Idempotency-Key", message).to_dict()]


def check_replay(key: str, spec: JobSpec, earlier: Mapping[str, Any]) -> None:
    """IdempotencyKeyReusedError (422) unless `spec` is the job that `key` created, `earlier` (its view):
    the validated documents are compared, so the same job spelled otherwise (key order, spaces) replays."""
    same = json.loads(json.dumps(spec.to_dict())) == json.loads(json.dumps(earlier.get("spec")))
    if not same:
        raise IdempotencyKeyReusedError(
            f"Idempotency-Key {key!r} was used for job {earlier.get('id')} with a different job document; "
            "a key names one submit: use a new key for a new job"
        )


def check_storable(spec: JobSpec, body_size: int) -> None:
    """TooLargeError (413) when the job's record would be over the store's limit (checked only for
    bodies over a quarter of that limit: a smaller one always fits); any other record the store would
    refuse is its InvalidRecord (400)."""
    if body_size <= MAX_RECORD_BYTES // 4:
        return
    try:
        encode_record(new_job_record(f"{spec.name}-00000000", spec, 0.0))
    except TooLarge as exc:
        raise TooLargeError(f"the job is too large to store: {exc}") from None
