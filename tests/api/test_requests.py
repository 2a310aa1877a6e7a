"""Reading a request on its own (`mesos_gpu.api.requests`), and the error tree its answers come from:
the tree drawn in `mesos_gpu.core.errors`' docstring is the real one."""

from __future__ import annotations

import inspect
import re

import pytest

from mesos_gpu.api.requests import (
    MAX_BODY_BYTES,
    body_too_large,
    check_json_content_type,
    check_storable,
    idempotency_key_of,
    job_id_of,
    parse_json,
)
from mesos_gpu.core import errors
from mesos_gpu.core.errors import (
    BadJsonError,
    MesosGpuError,
    NotFoundError,
    TooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from mesos_gpu.core.validation import validate_job


@pytest.mark.parametrize(
    ("body", "value"),
    [(b'{"a": [1, 2.5, null]}', {"a": [1, 2.5, None]}), (b"null", None), ('"é"'.encode(), "é")],
)
def test_a_json_body_is_parsed(body: bytes, value: object) -> None:
    assert parse_json(body) == value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"NaN", "NaN is not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_a_body_that_is_not_json_is_bad_json(body: bytes, message: str) -> None:
    with pytest.raises(BadJsonError, match=message) as caught:
        parse_json(body)
    assert (caught.value.http_status, caught.value.code) == (400, "invalid_json")
    assert isinstance(caught.value, ValidationError)


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ('application/json; charset="utf8"', True),
        ("application/vnd.mesos-gpu+json", True),
        ("application/json; charset=latin-1", False),
        ("text/json", False),
        ("", False),
        (None, False),
    ],
)
def test_the_content_type_must_be_json(header: str | None, accepted: bool) -> None:
    if accepted:
        check_json_content_type(header)
    else:
        with pytest.raises(UnsupportedMediaTypeError, match="send the job as application/json"):
            check_json_content_type(header)


@pytest.mark.parametrize(
    ("header", "too_large"),
    [
        (None, False),
        ("12", False),
        ("x", False),
        (f"{MAX_BODY_BYTES}", False),
        (f"{MAX_BODY_BYTES + 1}", True),
    ],
)
def test_an_announced_body_over_the_limit_is_too_large(header: str | None, too_large: bool) -> None:
    headers = {} if header is None else {"Content-Length": header}
    # over the limit: read and dropped before the 413 (True), or refused at once (TooLargeError)
    try:
        answer = body_too_large(headers, MAX_BODY_BYTES, "too large")
    except TooLargeError:
        answer = True
    assert answer is too_large


@pytest.mark.parametrize("job_id", ["", "a/b", "..", "zookeeper-x", "x" * 201, "a\nb"])
def test_a_job_id_no_job_can_have_is_not_found(job_id: str) -> None:
    with pytest.raises(NotFoundError, match="no job"):
        job_id_of(job_id)
    assert job_id_of("mnist-1a2b3c4d") == "mnist-1a2b3c4d"


def test_the_idempotency_key_header() -> None:
    assert idempotency_key_of(None) is None
    assert idempotency_key_of("retry-1") == "retry-1"
    for bad in ("", "k" * 256):
        with pytest.raises(ValidationError) as caught:
            idempotency_key_of(bad)
        assert caught.value.errors[0].path == "/headers/Idempotency-Key"


def test_a_job_whose_record_would_not_fit_the_store_is_too_large() -> None:
    spec = validate_job({"name": "a", "command": "x", "env": {"V": "x" * 100}})
    check_storable(spec, 1000)  # a small body is not even encoded
    env = {f"V{i}": "x" * 3500 for i in range(250)}
    huge = validate_job({"name": "a", "command": "x", "env": env, "roles": {"worker": {"instances": 1000}}})
    with pytest.raises(TooLargeError, match="too large to store"):
        check_storable(huge, 1_000_000)


# ------------------------------------------------------------------------------- the error tree
TREE_LINE = re.compile(r"^(?P<indent>\s*(?:[│ ]*[├└]── )?)(?P<name>\w+Error)\s+(?P<status>\d{3})?")


def drawn_tree() -> dict[str, tuple[str | None, int | None]]:
    """{class name: (parent drawn, status drawn)} from the module docstring's tree."""
    doc = inspect.getdoc(errors) or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    drawn: dict[str, tuple[str | None, int | None]] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = TREE_LINE.match(line)
        assert match, f"not a tree line: {line!r}"
        depth = len(match["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        drawn[match["name"]] = (parent, int(match["status"]) if match["status"] else None)
        stack.append((depth, match["name"]))
    return drawn


def test_the_error_tree_in_the_docstring_is_the_real_one() -> None:
    classes = {
        name: value
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, MesosGpuError)
    }
    drawn = drawn_tree()
    assert sorted(drawn) == sorted(classes)
    for name, (parent, status) in drawn.items():
        cls = classes[name]
        assert (cls.__base__.__name__ if parent else None) == parent, name
        if status is not None:
            assert cls.http_status == status, name
        elif parent is not None:
            assert cls.http_status == cls.__base__.http_status, name  # drawn without: inherits it
