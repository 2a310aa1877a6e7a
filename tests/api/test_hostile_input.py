"""Hostile request bodies, paths and headers against the real API on a loopback port (issue 17, "Bad
input"): every one gets a 4xx answer in the API's error shape (naming the JSON path where a field is at
fault), never a 500, a hang or a dropped connection where tornado lets the server answer, and other
clients are answered meanwhile. Raw sockets send exactly the bytes a hostile client would.

The Hypothesis property runs 20 examples for each of `MESOS_GPU_FUZZ_EXAMPLES` (default 30: 600
examples, about 1.5 s; test_fuzz.py's schemathesis run reads the same variable).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesos_gpu.api.requests import DRAIN_BYTES, MAX_BODY_BYTES
from mesos_gpu.api.server import ApiServer
from mesos_gpu.core.config import SchedulerSettings
from tests.api.rawhttp import Answer, exchange, get_latencies, request_bytes, serving
from tests.api.spec import check

pytestmark = pytest.mark.timeout(120)

EXAMPLES = 20 * int(os.environ.get("MESOS_GPU_FUZZ_EXAMPLES", "30"))
TEN_MB = 10 << 20
LATENCY_BOUND = 2.0  # seconds: generous (2 shared cores); an unanswered API would take the whole timeout


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServer]:
    with serving() as server:
        yield server


def job(**fields: Any) -> bytes:
    return json.dumps({"name": "a", "command": "true", **fields}).encode()


def error_of(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers.get("content-type") == "application/json"
    error: dict[str, Any] = check("Error", answer.body)["error"]
    return error


def post(api: ApiServer, body: bytes, path: str = "/v1/jobs", **headers: str) -> Answer:
    return exchange(api.port, request_bytes("POST", path, body, headers))


NESTED = b"[" * 100_000
CLOSED_NESTED = b"[" * 100_000 + b"]" * 100_000
OBJECTS = b'{"a":' * 100_000

# (id, body, status, error code, the detail path the answer names (None: not checked))
BODIES = [
    ("nesting-100000-open", NESTED, 400, "invalid_json", ""),
    ("nesting-100000-closed", CLOSED_NESTED, 400, "invalid_json", ""),
    ("nesting-100000-objects", OBJECTS, 400, "invalid_json", ""),
    ("nesting-inside-env", b'{"name":"a","command":"x","env":' + b"[" * 900 + b"]" * 900 + b"}", 400,
     "invalid", "/env"),
    ("nesting-inside-labels", b'{"name":"a","command":"x","labels":{"k":' + b"{}" + b"}}", 400, "invalid",
     "/labels/k"),
    ("nesting-deep-in-a-field", b'{"name":"a","command":"x","zz":' + CLOSED_NESTED + b"}", 400,
     "invalid_json", ""),
    ("nan", b'{"name":"a","command":"x","cpus":NaN}', 400, "invalid_json", ""),
    ("infinity", b'{"name":"a","command":"x","mem":Infinity}', 400, "invalid_json", ""),
    ("minus-infinity", b'{"name":"a","command":"x","gpus":-Infinity}', 400, "invalid_json", ""),
    ("1e309-cpus", b'{"name":"a","command":"x","cpus":1e309}', 400, "invalid", "/cpus"),
    ("1e309-instances", b'{"name":"a","command":"x","roles":{"worker":{"instances":1e309}}}', 400, "invalid",
     "/roles/worker/instances"),
    ("5000-digit-integer", b'{"name":"a","command":"x","mem":1' + b"0" * 5000 + b"}", 400, "invalid_json",
     ""),
    ("negative-cpus", job(cpus=-1), 400, "invalid", "/cpus"),
    ("negative-mem", job(mem=-1), 400, "invalid", "/mem"),
    ("negative-disk", job(disk=-0.5), 400, "invalid", "/disk"),
    ("negative-gpus", job(gpus=-1), 400, "invalid", "/gpus"),
    ("negative-role-gpus", job(roles={"worker": {"instances": 2, "gpus": -2}}), 400, "invalid",
     "/roles/worker/gpus"),
    ("boolean-gpus", job(gpus=True), 400, "invalid", "/gpus"),
    ("instances-0", job(roles={"worker": {"instances": 0}}), 400, "invalid", "/roles/worker/instances"),
    ("instances-10000", job(roles={"worker": {"instances": 10_000}}), 400, "invalid",
     "/roles/worker/instances"),
    ("unicode-name", job(name="日本語"), 400, "invalid", "/name"),
    ("emoji-name", job(name="gpu-😀"), 400, "invalid", "/name"),
    ("zero-width-name", job(name="a\u200bb"), 400, "invalid", "/name"),
    ("traversal-name", job(name="../../etc"), 400, "invalid", "/name"),
    ("nul-name", job(name="a\x00"), 400, "invalid", "/name"),
    ("unicode-env-name", job(env={"日本": "x"}), 400, "invalid", "/env/日本"),
    ("lone-surrogate", b'{"name":"a","command":"\\ud800"}', 400, "invalid", "/command"),
    ("invalid-utf8", b'{"name":"a","command":"\xff\xfe"}', 400, "invalid_json", ""),
    ("overlong-utf8", b'{"name":"a","command":"\xc0\xaf"}', 400, "invalid_json", ""),
    ("utf8-bom", b"\xef\xbb\xbf" + job(), 400, "invalid_json", ""),
    ("utf16", job().decode().encode("utf-16"), 400, "invalid_json", ""),
    ("duplicate-key", b'{"name":"a","command":"x","command":"rm -rf /"}', 400, "invalid_json", "/command"),
    ("duplicate-nested-key", b'{"name":"a","command":"x","env":{"A":"1","A":"2"}}', 400, "invalid_json",
     "/env/A"),
    ("traversal-output-file", job(uris=[{"value": "https://h/f", "output_file": "../x"}]), 400, "invalid",
     "/uris/0/output_file"),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "path"), [case[1:] for case in BODIES], ids=[case[0] for case in BODIES]
)
def test_a_hostile_job_document_is_a_4xx_naming_its_path(
    api: ApiServer, body: bytes, status: int, code: str, path: str | None
) -> None:
    error = error_of(post(api, body), status)
    assert error["code"] == code
    if path is not None:
        assert path in [d["path"] for d in error["details"]], error


def test_unicode_where_text_is_free_is_accepted_and_kept(api: ApiServer) -> None:
    text = "echo 日本語 😀 \u202e مرحبا"
    answer = post(api, job(command=text, labels={"note": "ünïcödé"}))
    assert answer.status == 201, answer.body
    assert answer.json()["spec"]["command"] == text


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("", 415), ("text/plain", 415), ("multipart/form-data; boundary=x", 415),
     ("application/x-www-form-urlencoded", 415), ("application/json; charset=utf-16", 415),
     ("application/json; charset=\xff", 415), ("application/json; charset=utf-8", 201)],
)
def test_the_content_type_must_be_json(api: ApiServer, content_type: str, status: int) -> None:
    answer = post(api, job(), **{"Content-Type": content_type})
    if status == 415:
        assert error_of(answer, 415)["code"] == "unsupported_media_type"
    else:
        assert answer.status == status


def test_a_reused_idempotency_key_with_another_body_is_422(api: ApiServer) -> None:
    assert post(api, job(), **{"Idempotency-Key": "hostile-1"}).status == 201
    assert post(api, job(), **{"Idempotency-Key": "hostile-1"}).status == 200
    error = error_of(post(api, job(command="rm -rf /"), **{"Idempotency-Key": "hostile-1"}), 422)
    assert error["details"][0]["path"] == "/headers/Idempotency-Key"
    # a key that looks like a path is only a key (stored under its hash): no traversal
    assert post(api, job(), **{"Idempotency-Key": "../../zookeeper"}).status == 201


# ------------------------------------------------------------------------------- paths and ids
@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/jobs/..%2f..%2fetc/logs", 404, "not_found"),
        ("/v1/jobs/..%2F..%2Fetc%2Fpasswd", 404, "not_found"),
        ("/v1/jobs/../../etc/passwd", 404, "not_found"),
        ("/v1/jobs/%2e%2e/logs", 404, "not_found"),
        ("/v1/jobs/..", 404, "not_found"),
        ("/v1/jobs/%00/tasks", 404, "not_found"),
        ("/v1/jobs/x%0d%0aSet-Cookie:%20a=b", 404, "not_found"),
        ("/v1/jobs/%E6%97%A5%F0%9F%98%80", 404, "not_found"),
        ("/v1/jobs/%ff/logs", 400, "bad_request"),
        ("/v1/jobs?state=%ff", 400, "bad_request"),
        ("/v1/jobs?limit=%00", 400, "invalid"),
        ("/v1/uploads/..%2f..%2fetc%2fpasswd", 404, "not_found"),
        ("/v1/uploads/%2e%2e", 404, "not_found"),
        ("/v1/uploads/" + "0" * 64 + ".tar.gz%2f..%2f..%2fetc%2fpasswd", 404, "not_found"),
        ("//etc/passwd", 404, "not_found"),
    ],
)
def test_traversal_in_paths_and_ids_is_a_4xx(api: ApiServer, path: str, status: int, code: str) -> None:
    bare = {"Content-Type": "", "Content-Length": ""}
    answer = exchange(api.port, request_bytes("GET", path, headers=bare))
    error = error_of(answer, status)
    assert error["code"] == code
    assert "Set-Cookie" not in answer.headers and "set-cookie" not in answer.headers


def test_a_task_id_with_traversal_in_the_logs_query_names_no_file(api: ApiServer) -> None:
    job_id = post(api, job()).json()["id"]
    for task in ("../../etc/passwd", "..%2f..%2fetc%2fpasswd", "/etc/passwd", "a.0/../../b"):
        path = f"/v1/jobs/{job_id}/logs?task={task}&stream=stdout"
        answer = exchange(api.port, request_bytes("GET", path, headers={"Content-Length": ""}))
        assert error_of(answer, 404)["code"] == "not_found"
    answer = exchange(api.port, request_bytes("GET", f"/v1/jobs/{job_id}/logs?stream=../../etc/passwd"))
    assert [d["path"] for d in error_of(answer, 400)["details"]] == ["/query/stream"]


def test_an_upload_whose_member_leaves_the_sandbox_is_400(api: ApiServer) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("../../etc/cron.d/evil")
        member.size = 1
        archive.addfile(member, io.BytesIO(b"x"))
    answer = post(api, buffer.getvalue(), "/v1/uploads", **{"Content-Type": "application/gzip"})
    assert error_of(answer, 400)["code"] == "invalid_archive"


# ------------------------------------------------------------------------------------ big bodies
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/v1/jobs", 413), ("POST", "/v1/jobs/x", 405), ("PUT", "/v1/jobs", 405)],
)
def test_a_10_mb_body_is_answered_not_reset(api: ApiServer, method: str, path: str, status: int) -> None:
    """urllib sends the whole body before it reads: the answer must not be lost to a connection reset
    (before this change POST /v1/jobs answered early and closed, and urllib saw ECONNRESET)."""
    body = b'{"name":"a","command":"' + b"x" * TEN_MB + b'"}'
    request = urllib.request.Request(f"{api.url}{path}", data=body, method=method,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == status
    check("Error", caught.value.read())


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/jobs", {"Content-Type": "text/plain", "Authorization": "Bearer s3cret"}, 415),
        ("/nowhere", {}, 404),
        ("/v1/jobs", {"Authorization": "Bearer wrong"}, 401),
        ("/v1/uploads", {"Content-Type": "application/gzip"}, 401),
    ],
)
def test_any_refusal_of_a_10_mb_body_is_answered_not_reset(
    path: str, headers: dict[str, str], status: int
) -> None:
    """Refusals decided from the headers (401, 404, 415) wait for the body too, dropping it."""
    body = b"x" * TEN_MB
    with serving(settings=SchedulerSettings(api_tokens=("s3cret",))) as server:
        request = urllib.request.Request(f"{server.url}{path}", data=body, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == status
        check("Error", caught.value.read())


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer  ", "Basic czNjcmV0", "Bearer \xff\xfe", "bearer s3cre",
     "Bearer " + "s" * 60_000, "Bearer s3cret s3cret"],
)
def test_hostile_authorization_headers_are_401(authorization: str) -> None:
    with serving(settings=SchedulerSettings(api_tokens=("s3cret",))) as server:
        answer = exchange(server.port, request_bytes("POST", "/v1/jobs", job(),
                                                     {"Authorization": authorization}))
        error = error_of(answer, 401)
        assert error["code"] == "unauthorized" and answer.headers["www-authenticate"].startswith("Bearer")
        token = {"Authorization": "Bearer s3cret"}
        assert exchange(server.port, request_bytes("POST", "/v1/jobs", job(), token)).status == 201


def test_a_control_character_in_a_header_is_refused_by_tornado_itself(api: ApiServer) -> None:
    """tornado refuses a header holding NUL before any handler runs: a bare 400 (no JSON possible)."""
    answer = exchange(api.port, request_bytes("POST", "/v1/jobs", job(), {"Authorization": "Bearer a\x00"}))
    assert answer.status == 400 and answer.body == b"" and answer.closed
    assert max(get_latencies(api.port, 2)) < LATENCY_BOUND


def test_a_chunked_10_mb_body_is_413(api: ApiServer) -> None:
    chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
    head = request_bytes("POST", "/v1/jobs", headers={"Content-Length": "", "Transfer-Encoding": "chunked"})
    answer = exchange(api.port, head + chunk * 160 + b"0\r\n\r\n")
    assert error_of(answer, 413)["code"] == "too_large"


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/x", "/v1/uploads", "/v1/cluster", "/nowhere"])
def test_a_body_larger_than_any_limit_is_a_json_4xx(api: ApiServer, path: str) -> None:
    """Announced far beyond every limit (tornado's own answer would be a bare 400): a JSON error at once,
    before the body (only its first 64 KiB are sent)."""
    huge = 200 << 20
    assert huge > MAX_BODY_BYTES + DRAIN_BYTES
    head = request_bytes("POST", path, headers={"Content-Length": str(huge)})
    answer = exchange(api.port, head + b" " * 65536)
    status = 404 if path == "/nowhere" else 413
    error_of(answer, status)


def test_the_api_answers_others_during_a_flood_of_hostile_bodies(api: ApiServer) -> None:
    stop = threading.Event()
    answered: list[int] = []

    def flood() -> None:
        bodies = [b'{"name":"a","command":"' + b"x" * TEN_MB + b'"}', NESTED, CLOSED_NESTED, OBJECTS]
        while not stop.is_set():
            for body in bodies:
                answered.append(post(api, body).status)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        latencies = get_latencies(api.port, 30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert answered and set(answered) <= {400, 413}, set(answered)
    assert max(latencies) < LATENCY_BOUND, sorted(latencies)[-3:]


# -------------------------------------------------------------------------------------- Hypothesis
HOSTILE_VALUES = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "1e309", "-1e309", "-1", "0", "-0", "1e-400", "10000", "1" + "0" * 30,
    "true", "null", '""', '"\\ud800"', '"\\u0000"', '"日本語"', '"../../etc/passwd"', "[]", "{}",
    "[" * 2000 + "]" * 2000, '{"a":1,"a":2}', '"' + "x" * 70_000 + '"',
])
FIELDS = st.sampled_from([
    "name", "command", "cpus", "mem", "disk", "gpus", "gpu_memory", "priority", "deadline_seconds", "env",
    "labels", "uris", "constraints", "restart", "roles", "tenant", "isolation", "image", "zz",
])


@st.composite
def hostile_documents(draw: st.DrawFn) -> bytes:
    """A valid job with one to three fields (or a role's field) replaced by hostile JSON text, or its
    bytes cut or corrupted."""
    parts = ['"name":"a"', '"command":"true"']
    for _ in range(draw(st.integers(1, 3))):
        field, value = draw(FIELDS), draw(HOSTILE_VALUES)
        if draw(st.booleans()):
            parts.append(f'"{field}":{value}')
        else:
            parts.append(f'"roles":{{"worker":{{"instances":{draw(HOSTILE_VALUES)},"{field}":{value}}}}}')
    text = ("{" + ",".join(parts) + "}").encode()
    damage = draw(st.sampled_from(["none", "cut", "byte"]))
    if damage == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "byte":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + text[at + 1:]
    return text


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=hostile_documents())
def test_hostile_documents_never_get_a_5xx(api: ApiServer, body: bytes) -> None:
    answer = post(api, body)
    assert answer.status in (201, 400, 413), (answer.status, answer.body[:300], body[:300])
    if answer.status != 201:
        error = check("Error", answer.body)["error"]
        assert error["code"] in ("invalid", "invalid_json", "too_large")


def test_the_api_still_answers_after_all_this(api: ApiServer) -> None:
    start = time.monotonic()
    assert get_latencies(api.port, 3)
    assert time.monotonic() - start < LATENCY_BOUND * 3
