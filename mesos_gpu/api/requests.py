"""Reading an API request: its query arguments, JSON body, Content-Type and Content-Length, job id
and Idempotency-Key; `StreamedBody`, the handlers' base, reads the body as it arrives with a size limit.
Every function raises the `mesos_gpu.core.errors` error the API answers with.

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
    json_pointer,
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
#: A body over its endpoint's limit by at most this much is read (and dropped) before the 413, so a
#: client that sends its whole body before it reads (urllib, http.client) sees the answer instead of a
#: connection reset; a larger one (or one sent after `Expect: 100-continue`) is answered at once.
DRAIN_BYTES = 16 << 20  # 16 MiB
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


def parse_json(body: bytes | bytearray, what: str = "job") -> Any:
    """The request body (a `what`, as the messages name it) as JSON; BadJsonError (400) when it is not
    UTF-8 JSON, holds NaN or Infinity, is nested too deep for the parser, or repeats a key in one object
    (RFC 8259 leaves what that means to each parser, so one reader could see another job than the next:
    refused, at the object's path)."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    repeated: list[tuple[dict[str, Any], str]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items):
            repeated.append((obj, _first_repeated(items)))
        return obj

    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        error = FieldError("", f"the body is not UTF-8 text ({exc.reason})")
        raise BadJsonError([error], f"invalid {what}: {error}") from None
    try:
        document = json.loads(text, parse_constant=no_constants, object_pairs_hook=pairs)
    except (ValueError, RecursionError) as exc:
        error = FieldError("", f"the body is not valid JSON: {exc}")
        raise BadJsonError([error], f"invalid {what}: {error}") from None
    if repeated:
        errors = []
        for obj, key in repeated:  # innermost first; one dropped by an outer repeat has no path
            path = path_to(document, obj)
            if path is not None:
                errors.append(FieldError(json_pointer((*path, key)), "this key appears more than once"))
        message = f"invalid {what}: the body repeats a key in an object: {min(errors)}"
        raise BadJsonError(sorted(errors), message)
    return document


def _first_repeated(items: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in items:
        if key in seen:
            return key
        seen.add(key)
    return ""


def path_to(document: Any, target: object) -> tuple[str | int, ...] | None:
    """The path from `document` to the object `target` (found by identity; iterative: any depth), or
    None when it is not in the document."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if value is target:
            return path
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return None


def check_json_content_type(header: str | None, what: str = "job") -> None:
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
    raise UnsupportedMediaTypeError(f"send the {what} as {JSON_TYPE} (Content-Type was {shown})")


def body_too_large(headers: Mapping[str, str], limit: int, message: str) -> bool:
    """Whether the body that `headers` announce (Content-Length) is over `limit` bytes: True when it is
    to be read and dropped before the 413 (see DRAIN_BYTES); TooLargeError (413, `message`) at once when
    it is larger than that or the client waits for `Expect: 100-continue`."""
    announced = (headers.get("Content-Length") or "").strip()
    if not announced.isdigit() or int(announced) <= limit:
        return False
    if int(announced) > limit + DRAIN_BYTES or headers.get("Expect", "").lower() == "100-continue":
        raise TooLargeError(message)
    return True


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


# ------------------------------------------------------------------------------- reading the body
@tornado.web.stream_request_body
class StreamedBody(tornado.web.RequestHandler):
    """A handler that reads its body as it arrives, keeping at most `max_body_bytes` (`body()` gives
    it, or raises the 413): no route buffers a large body before it is refused, and every refusal is a
    JSON error (tornado's own answer to a body over its limit is a bare 400). The subclass calls
    `_expect_body()` once the request may go on, or `_answer_after_body(error)` when it may not."""

    #: The largest body this endpoint takes (a larger one is dropped as it arrives, then answered 413).
    max_body_bytes = MAX_BODY_BYTES
    _body: bytearray
    _body_too_large = False

    def _expect_body(self) -> None:
        """Let tornado read a body up to `max_body_bytes` + DRAIN_BYTES (a larger announced one is
        answered 413 at once; a chunked one past it is cut by tornado with a bare 400). A method that
        takes no body (GET, DELETE, ...) ignores one."""
        limit = self.max_body_bytes
        self._body = bytearray()
        set_max_body_size = getattr(self.request.connection, "set_max_body_size", None)
        if callable(set_max_body_size):
            set_max_body_size(limit + DRAIN_BYTES)
        self._body_too_large = body_too_large(self.request.headers, limit, self.too_large_message())

    def too_large_message(self) -> str:
        return f"the request body is larger than this endpoint's limit of {self.max_body_bytes} bytes"

    def data_received(self, chunk: bytes) -> None:
        if self._body_too_large or self._finished:
            return
        self._body.extend(chunk)
        if len(self._body) > self.max_body_bytes:
            self._body_too_large = True
            self._body = bytearray()

    def body(self) -> bytes:
        """The request body; TooLargeError (413) when it was over `max_body_bytes`."""
        if self._body_too_large:
            raise TooLargeError(self.too_large_message())
        return bytes(self._body)

    def _answer_after_body(self, error: MesosGpuError) -> bool:
        """Whether `error` is answered once the announced body (up to DRAIN_BYTES, dropped as it
        arrives) is read, so a client that sends its whole body before it reads gets the answer, not a
        connection reset: the request's method is replaced by one raising `error`."""
        announced = (self.request.headers.get("Content-Length") or "").strip()
        if (not announced.isdigit() or not 0 < int(announced) <= DRAIN_BYTES
                or self.request.headers.get("Expect", "").lower() == "100-continue"):
            return False
        set_max_body_size = getattr(self.request.connection, "set_max_body_size", None)
        if callable(set_max_body_size):
            set_max_body_size(int(announced))
        self._body_too_large = True  # nothing of it is kept

        def answer(*args: Any, **kwargs: Any) -> None:
            raise error

        setattr(self, (self.request.method or "GET").lower(), answer)
        return True
