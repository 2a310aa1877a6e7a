"""`/v1/tenants` on the real app and `SchedulerRuntime`, against the memory store and the real ZooKeeper
store: read, replace (validated, stored, applied), forget; what a new leader on a new store client reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.api.app import close_app
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.tenancy import TenantsConfig
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from mesos_gpu.store.settings import TENANTS, TenantsBook
from tests.api.conftest import AppClient, app_client, json_of, make_runtime, started
from tests.scheduler.builders import single_job

DOCUMENT = {"tenants": {"team-a": {"quota": 4, "limit": 6, "weight": 2}, "team-b": {"quota": 2.5}},
            "unassigned_gpus": 1}


def serve(store: Any, settings: SchedulerSettings | None = None,
          identifier: str = "127.0.0.1:8080") -> tuple[SchedulerRuntime, AppClient]:
    """A runtime with its API made first (as the scheduler process does), then elected."""
    runtime = make_runtime(store, identifier)
    client = app_client(runtime, settings)
    started(runtime)
    return runtime, client


def stop(runtime: SchedulerRuntime, client: AppClient) -> None:
    client.tearDown()
    close_app(client.application)
    runtime.stop()


@pytest.fixture
def served(store: Any) -> Iterator[tuple[SchedulerRuntime, AppClient]]:
    runtime, client = serve(store)
    try:
        yield runtime, client
    finally:
        stop(runtime, client)


def test_without_quotas_each_tenant_shows_its_usage_only(served: tuple[SchedulerRuntime, AppClient]) -> None:
    runtime, client = served
    runtime.submit(single_job("j1", gpus=2, tenant="team-a"))
    body = json_of(client.request("GET", "/v1/tenants"))
    assert body == {"source": "none", "version": None, "file": None, "quotas": False, "default": None,
                    "unassigned_gpus": None, "profile": None, "tenants": [
                        {"name": "team-a", "listed": False, "quota": None, "limit": None, "may_borrow": True,
                         "weight": 1, "used_gpus": 0, "borrowed_gpus": None, "waiting_jobs": 1,
                         "waiting_gpus": 2, "profile_terms": False}]}


def test_put_stores_validates_and_applies_the_document(served: tuple[SchedulerRuntime, AppClient]) -> None:
    runtime, client = served
    answer = client.request("PUT", "/v1/tenants", DOCUMENT)
    assert answer.code == 200, answer.body
    body = json_of(answer)
    assert (body["source"], body["version"], body["quotas"], body["unassigned_gpus"]) == ("store", 0, True, 1)
    assert [(t["name"], t["quota"], t["limit"], t["weight"]) for t in body["tenants"]] == [
        ("team-a", 4, 6, 2), ("team-b", 2.5, None, 1)]
    assert runtime.store.read_setting(TENANTS).data == TenantsConfig.of(DOCUMENT).to_dict()
    assert runtime._state.tenancy is not None and runtime._state.tenancy() == TenantsConfig.of(DOCUMENT)
    again = json_of(client.request("PUT", "/v1/tenants", {"tenants": {"team-c": {"quota": 1}}}))
    assert again["version"] == 1 and [t["name"] for t in again["tenants"]] == ["team-c"]
    assert json_of(client.request("GET", "/v1/tenants")) == again


@pytest.mark.parametrize(("body", "status", "paths"), [
    ({"tenants": {"team-a": {"quota": -1, "weight": 0}}}, 400,
     ["/tenants/team-a/quota", "/tenants/team-a/weight"]),
    ({"tenants": {"Bad Name": {"quota": 1}}}, 400, ["/tenants/Bad Name"]),
    ([1, 2], 400, [""]),
    ("{not json", 400, None),
])
def test_a_bad_document_is_refused_with_its_json_paths_and_nothing_changes(
        served: tuple[SchedulerRuntime, AppClient], body: Any, status: int, paths: list[str] | None) -> None:
    runtime, client = served
    raw = body if isinstance(body, str) else json.dumps(body)
    answer = client.request("PUT", "/v1/tenants", raw, headers={"Content-Type": "application/json"})
    assert answer.code == status, answer.body
    error = json_of(answer)["error"]
    if paths is not None:
        assert sorted(d["path"] for d in error["details"]) == paths
    assert runtime.store.read_setting(TENANTS) is None
    assert json_of(client.request("GET", "/v1/tenants"))["source"] == "none"


def test_put_needs_a_json_body(served: tuple[SchedulerRuntime, AppClient]) -> None:
    _, client = served
    answer = client.request("PUT", "/v1/tenants", "x=1", headers={"Content-Type": "text/plain"})
    assert answer.code == 415


def test_writes_need_a_token_when_the_api_has_tokens(memory_store: MemoryStore) -> None:
    runtime, client = serve(memory_store, SchedulerSettings(api_tokens=("s3cret",)))
    try:
        assert client.request("PUT", "/v1/tenants", DOCUMENT).code == 401
        assert client.request("DELETE", "/v1/tenants").code == 401
        assert client.request("GET", "/v1/tenants").code == 200
        ok = client.request("PUT", "/v1/tenants", DOCUMENT, headers={"Authorization": "Bearer s3cret"})
        assert ok.code == 200
    finally:
        stop(runtime, client)


def test_the_file_applies_until_a_document_is_stored_and_again_once_it_is_deleted(
        memory_store: MemoryStore, tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"from-file": {"quota": 3}}}))
    runtime, client = serve(memory_store, SchedulerSettings(tenants_file=str(path)))
    try:
        body = json_of(client.request("GET", "/v1/tenants"))
        assert (body["source"], body["file"], [t["name"] for t in body["tenants"]]) == (
            "file", str(path), ["from-file"])
        assert json_of(client.request("PUT", "/v1/tenants", DOCUMENT))["source"] == "store"
        body = json_of(client.request("DELETE", "/v1/tenants"))
        assert (body["source"], [t["name"] for t in body["tenants"]]) == ("file", ["from-file"])
        assert memory_store.read_setting(TENANTS) is None
    finally:
        stop(runtime, client)


def test_a_bad_tenants_file_stops_the_api_from_starting(memory_store: MemoryStore, tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"a": {"quota": -2}}}))
    with pytest.raises(ValueError, match=r"tenants\.json is not valid: /tenants/a/quota: must be from 0"):
        app_client(make_runtime(memory_store), SchedulerSettings(tenants_file=str(path)))


def test_a_new_leader_on_a_new_store_client_applies_the_stored_document(store: Any, request: Any) -> None:
    runtime, client = serve(store)
    try:
        assert client.request("PUT", "/v1/tenants", DOCUMENT).code == 200
    finally:
        stop(runtime, client)
    if isinstance(store, MemoryStore):
        other: Any = MemoryStore(store.backend)
    else:
        from mesos_gpu.store.zk import connect

        other = connect(request.getfixturevalue("zk_url"), timeout=10.0)
    try:
        assert TenantsBook(other).reload() == TenantsConfig.of(DOCUMENT)
        runtime, client = serve(other, identifier="127.0.0.1:8081")
        try:
            tenancy = runtime._state.tenancy
            assert tenancy is not None and tenancy() == TenantsConfig.of(DOCUMENT)
            assert json_of(client.request("GET", "/v1/tenants"))["source"] == "store"
        finally:
            stop(runtime, client)
    finally:
        if other is not store:
            other.close()


def test_a_standby_redirects_tenant_writes_to_the_leader() -> None:
    backend = MemoryBackend()
    leader, leader_client = serve(MemoryStore(backend), identifier="127.0.0.1:8080")
    standby = make_runtime(MemoryStore(backend), "127.0.0.1:8081")
    standby_client = app_client(standby)
    standby.start()
    try:
        answer = standby_client.request("PUT", "/v1/tenants", DOCUMENT)
        assert answer.code == 307 and answer.headers["Location"].startswith("http://127.0.0.1:8080/v1/tenants")
        assert MemoryStore(backend).read_setting(TENANTS) is None
    finally:
        stop(standby, standby_client)
        stop(leader, leader_client)
