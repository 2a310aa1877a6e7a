"""Health, metrics, the OpenAPI document, the launcher, bearer tokens and standby redirects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesos_gpu.api.app import close_app, openapi_bytes
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.base import ConnectionState
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import LAUNCHER, AppClient, app_client, json_of, make_runtime, started
from tests.api.promtext import value
from tests.api.spec import check
from tests.waiting import wait_until

JOB = {"name": "a", "command": "true", "gpus": 2}


@pytest.fixture
def leader() -> Iterator[SchedulerRuntime]:
    runtime = started(make_runtime(MemoryStore(MemoryBackend())))
    yield runtime
    runtime.stop()


def open_client(service: object, settings: SchedulerSettings | None = None) -> AppClient:
    return app_client(service, settings)


def close(client: AppClient) -> None:
    client.tearDown()
    close_app(client.application)


def test_health_of_a_leader(leader: SchedulerRuntime) -> None:
    client = open_client(leader)
    try:
        response = client.request("GET", "/v1/health")
        assert response.code == 200
        health = check("Health", response.body)
        assert health["role"] == "leader"
        assert health["leader_identifier"] == "127.0.0.1:8080"
        assert health["mesos"] == {"connected": False}
        assert health["zookeeper"] == {"connected": True, "state": "CONNECTED"}
    finally:
        close(client)


def test_health_follows_the_store_connection(leader: SchedulerRuntime) -> None:
    client = open_client(leader)
    try:
        listeners = leader.store._listeners  # type: ignore[attr-defined]
        assert listeners, "make_app registers a connection listener on the service's store"
        for listener in listeners:
            listener(ConnectionState.SUSPENDED)
        health = json_of(client.request("GET", "/v1/health"))
        assert health["zookeeper"] == {"connected": False, "state": "SUSPENDED"}
        for listener in listeners:
            listener(ConnectionState.CONNECTED)
        assert json_of(client.request("GET", "/v1/health"))["zookeeper"]["connected"] is True
    finally:
        close(client)


def test_metrics_count_jobs_by_state_gpus_and_requests(leader: SchedulerRuntime) -> None:
    client = open_client(leader)
    try:
        for _ in range(2):
            assert client.request("POST", "/v1/jobs", JOB).code == 201
        response = client.request("GET", "/metrics")
        assert response.code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.body.decode()
        assert value(text, "mesos_gpu_jobs", state="PENDING") == 2
        assert value(text, "mesos_gpu_jobs", state="RUNNING") == 0
        assert value(text, "mesos_gpu_tasks_launched_total") == 0
        assert value(text, "mesos_gpu_gpus_allocated") == 0
        assert value(text, "mesos_gpu_leader") == 1
        assert value(text, "mesos_gpu_api_requests_total", method="POST", code="201") == 2
        assert value(text, "mesos_gpu_api_request_duration_seconds_bucket", le="+Inf", route="/v1/jobs") == 2
    finally:
        close(client)


def test_openapi_document_and_launcher_are_served(leader: SchedulerRuntime) -> None:
    client = open_client(leader)
    try:
        response = client.request("GET", "/openapi.json")
        assert response.code == 200
        assert response.body == openapi_bytes()
        launcher = client.request("GET", "/v1/launcher.pyz")
        assert launcher.code == 200
        assert launcher.body == LAUNCHER
        assert launcher.headers["Content-Type"] == "application/octet-stream"
        cached = client.request(
            "GET", "/v1/launcher.pyz", headers={"If-None-Match": launcher.headers["ETag"]}
        )
        assert cached.code == 304
        head = client.request("HEAD", "/v1/launcher.pyz")
        assert head.code == 200
        assert head.headers["Content-Length"] == str(len(LAUNCHER))
    finally:
        close(client)


def test_cluster_and_logs_say_when_the_master_cannot_be_reached(leader: SchedulerRuntime) -> None:
    client = open_client(leader)
    try:
        response = client.request("GET", "/v1/cluster")
        assert response.code == 503
        error = check("Error", response.body)["error"]
        assert error["code"] == "unavailable"
        assert "cannot be reached" in error["message"]
        assert response.headers["Retry-After"] == "1"
    finally:
        close(client)


# ---------------------------------------------------------------------------------------------- tokens
def test_writes_need_a_token_and_reads_do_not(leader: SchedulerRuntime) -> None:
    client = open_client(leader, SchedulerSettings(api_tokens=("s3cret", "other")))
    try:
        response = client.request("POST", "/v1/jobs", JOB)
        assert response.code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert check("Error", response.body)["error"]["code"] == "unauthorized"
        bad = client.request("POST", "/v1/jobs", JOB, headers={"Authorization": "Bearer s3cre"})
        assert bad.code == 401
        good = client.request("POST", "/v1/jobs", JOB, headers={"Authorization": "Bearer other"})
        assert good.code == 201
        assert client.request("GET", "/v1/jobs").code == 200
        assert client.request("DELETE", f"/v1/jobs/{json_of(good)['id']}").code == 401
    finally:
        close(client)


def test_reads_need_a_token_when_configured(leader: SchedulerRuntime, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# api tokens\nfirst\nsecond, third\n")
    client = open_client(leader, SchedulerSettings(api_tokens_file=str(tokens), api_auth_reads=True))
    try:
        assert client.request("GET", "/v1/jobs").code == 401
        assert client.request("GET", "/metrics").code == 401
        assert client.request("GET", "/v1/jobs", headers={"Authorization": "Bearer third"}).code == 200
        # health, the document and the launcher stay open (Marathon, clients, the Mesos fetcher)
        for path in ("/v1/health", "/openapi.json", "/v1/launcher.pyz"):
            assert client.request("GET", path).code == 200, path
        # the file is re-read when it changes: tokens rotate without a restart
        time.sleep(0.01)
        tokens.write_text("rotated\n")
        assert client.request("GET", "/v1/jobs", headers={"Authorization": "Bearer third"}).code == 401
        assert client.request("GET", "/v1/jobs", headers={"Authorization": "Bearer rotated"}).code == 200
    finally:
        close(client)


# ---------------------------------------------------------------------------------------------- standby
def test_a_standby_redirects_to_the_leader_and_stays_healthy(leader: SchedulerRuntime) -> None:
    backend = leader.store.backend  # type: ignore[attr-defined]
    standby = make_runtime(MemoryStore(backend), identifier="127.0.0.1:8081")
    standby.start()
    client = open_client(standby)
    try:
        wait_until(
            lambda: standby.health()["leader_identifier"] == "127.0.0.1:8080",
            what="the standby to see the leader",
        )
        assert not standby.is_leader
        for method, path, body in [
            ("GET", "/v1/jobs?state=PENDING", None),
            ("POST", "/v1/jobs", JOB),
            ("GET", "/v1/jobs/a-1", None),
            ("DELETE", "/v1/jobs/a-1", None),
            ("GET", "/v1/cluster", None),
        ]:
            response = client.request(method, path, body)
            assert response.code == 307, (method, path, response.body)
            assert response.headers["Location"] == f"http://127.0.0.1:8080{path}"
            assert check("Error", response.body)["error"]["code"] == "not_leader"
        health = client.request("GET", "/v1/health")
        assert health.code == 200
        assert check("Health", health.body)["role"] == "standby"
        assert client.request("GET", "/metrics").code == 200
    finally:
        close(client)
        standby.stop()


def test_without_a_known_leader_the_api_answers_503(memory_store: MemoryStore) -> None:
    runtime = make_runtime(memory_store)  # never started: no election, no leader
    client = open_client(runtime)
    try:
        response = client.request("GET", "/v1/jobs")
        assert response.code == 503
        assert check("Error", response.body)["error"]["code"] == "no_leader"
        assert client.request("GET", "/v1/health").code == 200
    finally:
        close(client)


def test_the_default_containerizer_applies_to_jobs_that_name_none(leader: SchedulerRuntime) -> None:
    client = open_client(leader, SchedulerSettings(default_containerizer="docker"))
    try:
        response = client.request("POST", "/v1/jobs", JOB)
        assert response.code == 400
        assert json_of(response)["error"]["details"] == [
            {"path": "/image", "message": "required with the docker containerizer"}
        ]
        job = json_of(client.request("POST", "/v1/jobs", dict(JOB, image="busybox:1")))
        assert job["spec"]["containerizer"] == "docker"
        named = json_of(client.request("POST", "/v1/jobs", dict(JOB, containerizer="mesos")))
        assert named["spec"]["containerizer"] == "mesos"
    finally:
        close(client)
    client = open_client(leader)
    try:
        assert json_of(client.request("POST", "/v1/jobs", JOB))["spec"]["containerizer"] == "mesos"
    finally:
        close(client)
