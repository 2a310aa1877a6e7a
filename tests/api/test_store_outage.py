"""A job store that stops answering during a request: the API answers 503 with a clear message and
logs the outage with its traceback; a store that fails in a way nobody planned (a bug) gets a JSON
500 that hides the traceback from the client and logs it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from mesos_gpu.api.app import close_app
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.base import JsonDict, StoreUnavailable, Versioned
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import AppClient, app_client, json_of, make_runtime, started
from tests.api.spec import check

JOB = {"name": "mnist", "command": "python train.py"}
OUTAGE = "ZooKeeper did not answer within 15 s (ConnectionLoss: connection dropped)"


class BrokenStore(MemoryStore):
    """A store whose reads of one job fail with an error no store should raise (a bug)."""

    def get(self, job_id: str) -> Versioned[JsonDict]:
        if job_id == "broken":
            raise RuntimeError("a bug in the store")
        return super().get(job_id)


@pytest.fixture
def store() -> BrokenStore:
    return BrokenStore(MemoryBackend())


@pytest.fixture
def leader(store: BrokenStore) -> Iterator[SchedulerRuntime]:
    runtime = started(make_runtime(store))
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture
def client(leader: SchedulerRuntime) -> Iterator[AppClient]:
    c = app_client(leader)
    try:
        yield c
    finally:
        c.tearDown()
        close_app(c.application)


REQUESTS = {  # id: (method, path, body, headers)
    "submit": ("POST", "/v1/jobs", JOB, {}),
    "submit-with-key": ("POST", "/v1/jobs", JOB, {"Idempotency-Key": "retry-1"}),
    "get": ("GET", "/v1/jobs/not-in-memory", None, {}),
    "kill": ("DELETE", "/v1/jobs/not-in-memory", None, {}),
}


@pytest.mark.parametrize("request_id", sorted(REQUESTS))
def test_a_store_outage_is_a_logged_503(
    client: AppClient, store: MemoryStore, caplog: pytest.LogCaptureFixture, request_id: str
) -> None:
    method, path, body, headers = REQUESTS[request_id]
    store.start_outage(OUTAGE)
    with caplog.at_level(logging.WARNING, logger="mesos_gpu.api.handlers"):
        response = client.request(method, path, body, headers=headers)
    assert response.code == 503, response.body
    assert response.headers["Retry-After"] == "1"
    error = check("Error", response.body)["error"]
    assert (error["code"], error["message"]) == ("unavailable", OUTAGE)
    assert b"Traceback" not in response.body
    [record] = [r for r in caplog.records if r.name == "mesos_gpu.api.handlers"]
    assert record.getMessage() == f"{method} {path} answered 503: {OUTAGE}"
    assert record.exc_info is not None and isinstance(record.exc_info[1], StoreUnavailable)
    assert "Traceback" in caplog.text

    store.end_outage()
    assert client.request("POST", "/v1/jobs", JOB).code == 201


def test_a_store_bug_is_a_json_500_without_its_traceback(
    client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = client.request("GET", "/v1/jobs/broken")
    assert response.code == 500
    error = json_of(response)["error"]
    assert error["code"] == "internal"
    assert "see its log" in error["message"]
    assert b"Traceback" not in response.body and b"a bug in the store" not in response.body
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert logged, caplog.text


def test_a_standby_whose_store_is_down_knows_no_leader(leader: SchedulerRuntime, store: MemoryStore) -> None:
    """A standby asks the election who leads; with its store down it cannot know: 503, not 500."""
    standby_store = MemoryStore(store.backend)
    standby = make_runtime(standby_store, identifier="127.0.0.1:8081")
    standby.start()
    c = app_client(standby)
    try:
        assert c.request("GET", "/v1/jobs").headers["Location"].startswith("http://127.0.0.1:8080/")
        standby_store.start_outage(OUTAGE)
        response = c.request("GET", "/v1/jobs")
        assert response.code == 503, response.body
        assert check("Error", response.body)["error"]["code"] == "no_leader"
    finally:
        c.tearDown()
        close_app(c.application)
        standby_store.end_outage()
        standby.stop()
