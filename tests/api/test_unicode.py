"""A lone surrogate ("\\ud800": JSON allows the escape, UTF-8 cannot encode it) in a submitted job is a 400
naming its path, never a 500, and never fails the other submits of its group commit (issue 20, item 4).
Runs on the in-memory and the ZooKeeper store."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from typing import Any

import pytest

from mesos_gpu.api.requests import QueryReader, check_storable, idempotency_key_of, job_id_of
from mesos_gpu.core.errors import NotFoundError, TooLargeError, ValidationError
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.base import InvalidRecord
from tests.api.conftest import AppClient, json_of
from tests.api.spec import check

pytestmark = pytest.mark.timeout(60)

LONE = "\ud800"

def post(client: AppClient, text: str, headers: dict[str, str] | None = None) -> Any:
    return client.request(
        "POST", "/v1/jobs", text.encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ('{"name": "a", "command": "echo \\ud800"}', "/command", "must be valid Unicode text "
         "(a lone surrogate \\ud800 at character 5)"),
        ('{"name": "a", "command": "true", "env": {"A": "\\ud800"}}', "/env/A", "must be valid Unicode "
         "text (a lone surrogate \\ud800 at character 0)"),
        ('{"name": "a", "command": "true", "env": {"\\ud800": "x"}}', "/env", 'key "\\ud800" must be '
         "valid Unicode text (a lone surrogate \\ud800 at character 0)"),
        ('{"name": "a", "command": "true", "labels": {"k": "v\\udfff"}}', "/labels/k", "must be valid "
         "Unicode text (a lone surrogate \\udfff at character 1)"),
    ],
)
@pytest.mark.parametrize("key", [None, "key-1"])
def test_a_lone_surrogate_is_a_400_naming_its_path(
    client: AppClient, text: str, path: str, message: str, key: str | None
) -> None:
    response = post(client, text, {"Idempotency-Key": key} if key else None)
    assert response.code == 400, response.body
    error = check("Error", response.body)["error"]
    assert error["code"] == "invalid"
    assert error["details"] == [{"path": path, "message": message}]
    assert json_of(client.request("GET", "/v1/jobs"))["total"] == 0


def test_one_bad_submit_among_concurrent_ones_fails_alone(client: AppClient) -> None:
    bodies = [f'{{"name": "n{i}", "command": "echo {i}"}}' for i in range(30)]
    bodies[11] = '{"name": "bad", "command": "echo \\ud800"}'

    async def many() -> list[Any]:
        return await asyncio.gather(*(
            client.http_client.fetch(
                client.get_url("/v1/jobs"), method="POST", body=body.encode(),
                headers={"Content-Type": "application/json"}, raise_error=False,
            )
            for body in bodies
        ))

    codes = [response.code for response in client.io_loop.run_sync(many, timeout=30)]
    assert codes == [400 if i == 11 else 201 for i in range(30)]
    assert json_of(client.request("GET", "/v1/jobs?limit=100"))["total"] == 29


@pytest.mark.parametrize(
    "path", ["/v1/jobs?tenant=%ED%A0%80", "/v1/jobs?state=%ED%A0%80", "/v1/jobs/%ED%A0%80"]
)
def test_an_encoded_surrogate_in_the_url_is_a_4xx(client: AppClient, path: str) -> None:
    response = client.request("GET", path)
    assert 400 <= response.code < 500, response.body
    check("Error", response.body)


def test_an_encoded_surrogate_in_the_body_is_bad_json(client: AppClient) -> None:
    raw = b'{"name": "a", "command": "echo \xed\xa0\x80"}'
    answer = client.request("POST", "/v1/jobs", raw, headers={"Content-Type": "application/json"})
    assert answer.code == 400
    assert check("Error", answer.body)["error"]["code"] == "invalid_json"


def test_the_runtime_stores_the_others_when_one_record_cannot_be_encoded(
    runtime: SchedulerRuntime, store: Any
) -> None:
    """Validation bypassed: one spec of a group commit cannot be encoded; its submit alone fails, with
    InvalidRecord (a 400), and the others are stored and reach the state machine."""
    good = validate_job({"name": "good", "command": "true"})
    bad = dataclasses.replace(good, name="bad", command=f"echo {LONE}")
    entered, release = threading.Event(), threading.Event()
    create_many = store.create_many

    def held(items: Any) -> Any:
        entered.set()
        release.wait(10)
        return create_many(items)

    store.create_many = held
    try:
        first = runtime.submit_nowait(good)
        assert entered.wait(10)
        futures = [runtime.submit_nowait(bad if i == 3 else good) for i in range(10)]
        release.set()
        assert first.result(10)[1] is True
        views = []
        for i, future in enumerate(futures):
            if i == 3:
                with pytest.raises(InvalidRecord, match="lone surrogate"):
                    future.result(10)
            else:
                views.append(future.result(10)[0])
    finally:
        release.set()
        del store.create_many
    assert runtime.submit_batches == 2
    assert len(store.ids()) == 10
    assert {view["id"] for view in views} <= set(store.ids())
    assert all(runtime.job(view["id"])["state"] == "PENDING" for view in views)


def test_no_error_answered_holds_a_lone_surrogate(client: AppClient) -> None:
    """Every client can read the answer (some JSON parsers refuse a lone surrogate escape)."""
    response = post(client, '{"name": "a\\ud800", "command": "true", "\\ud800": {"\\udfff": 1}}')
    assert response.code == 400
    error = json.loads(response.body)["error"]
    assert error["details"] == [
        {"path": "", "message": 'key "\\ud800" must be valid Unicode text (a lone surrogate \\ud800 at '
         "character 0)"},
        {"path": "/name", "message": "must be valid Unicode text (a lone surrogate \\ud800 at character 1)"},
    ]
    json.dumps(error, ensure_ascii=False).encode("utf-8")    # every string of it is valid Unicode text


def test_the_request_readers_refuse_a_lone_surrogate_with_a_4xx() -> None:
    """What tornado never hands over (a header is read as Latin-1, a URL must be UTF-8) is refused all
    the same by the readers: a 400 or 404 naming the problem, never a 500."""
    with pytest.raises(ValidationError) as caught:
        idempotency_key_of(f"key-{LONE}")
    assert [(e.path, e.message) for e in caught.value.errors] == [
        ("/headers/Idempotency-Key", "must be valid Unicode text (a lone surrogate \\ud800 at character 4)")
    ]
    with pytest.raises(NotFoundError):
        job_id_of(f"job-{LONE}")

    class Handler:
        def get_query_argument(self, name: str, default: Any, strip: bool) -> str:
            return f"a{LONE}"

    query = QueryReader(Handler())  # type: ignore[arg-type]
    assert query.text("tenant") is None
    with pytest.raises(ValidationError) as caught:
        query.check()
    assert [(e.path, e.message) for e in caught.value.errors] == [
        ("/query/tenant", "must be valid Unicode text (a lone surrogate \\ud800 at character 1)")
    ]


def test_a_large_job_the_store_cannot_encode_is_a_400_not_a_413() -> None:
    spec = dataclasses.replace(validate_job({"name": "a", "command": "x"}), command=f"x{LONE}")
    with pytest.raises(InvalidRecord) as caught:
        check_storable(spec, 1_000_000)
    assert caught.value.http_status == 400
    assert not isinstance(caught.value, TooLargeError)
