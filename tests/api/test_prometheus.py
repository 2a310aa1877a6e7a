"""`/metrics` on prometheus_client (issue 18): every name and label of before, parsed by prometheus_client's
own text parser; process and build_info metrics; the route pattern on request latency; GPUs per tenant;
the cluster's GPUs by agent state; one registry per app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu import __version__
from mesos_gpu.api.app import close_app
from mesos_gpu.api.metrics import (
    UNMATCHED,
    RequestStats,
    cluster_capacity,
    render,
    route_template,
)
from mesos_gpu.api.scrape import tenant_gpus
from mesos_gpu.driver.runtime import SchedulerRuntime
from tests.api.conftest import AppClient, app_client, make_runtime, started
from tests.api.promtext import families, parsed, value
from tests.waiting import wait_until

JOB = {"name": "train", "command": "python train.py", "gpus": 1, "tenant": "vision"}

# Every family /metrics showed before prometheus_client, with its type: kept as they were.
KEPT = {
    "mesos_gpu_jobs": "gauge",
    "mesos_gpu_tasks_launched": "counter",
    "mesos_gpu_gpus_allocated": "gauge",
    "mesos_gpu_share_hosts": "gauge",
    "mesos_gpu_gpu_shares_allocated": "gauge",
    "mesos_gpu_leader": "gauge",
    "mesos_gpu_mesos_connected": "gauge",
    "mesos_gpu_zookeeper_connected": "gauge",
    "mesos_gpu_offers_received": "counter",
    "mesos_gpu_offers_declined": "counter",
    "mesos_gpu_submit_batches": "counter",
    "mesos_gpu_placement_latency_seconds": "histogram",
    "mesos_gpu_api_requests": "counter",
    "mesos_gpu_api_request_duration_seconds": "histogram",
}


class _Master:
    """The master's /state as the metrics read it (no HTTP: stands in for the app's MesosReader)."""

    def __init__(self, state: dict[str, Any] | Exception) -> None:
        self.state = state
        self.reads = 0

    async def master_state(self) -> dict[str, Any]:
        self.reads += 1
        if isinstance(self.state, Exception):
            raise self.state
        return self.state


STATE = {"slaves": [
    {"id": "a", "active": True, "resources": {"gpus": 4.0, "cpus": 8}},
    {"id": "b", "active": True, "resources": {"gpus": 2}},
    {"id": "c", "active": False, "resources": {"gpus": 8}},
    {"id": "d", "active": True, "deactivated": True, "resources": {"gpus": 1}},
    {"id": "e", "active": True, "drain_info": {"state": "DRAINING"}, "resources": {"gpus": 2}},
    {"id": "f", "active": True, "resources": {"cpus": 4}},
]}


@pytest.fixture
def leader() -> Iterator[SchedulerRuntime]:
    from mesos_gpu.store.memory import MemoryBackend, MemoryStore

    runtime = started(make_runtime(MemoryStore(MemoryBackend())))
    try:
        yield runtime
    finally:
        runtime.stop()


def open_client(service: Any, master: _Master | None = None) -> AppClient:
    client = app_client(service)
    if master is not None:
        client.application.settings["api_context"].mesos = master
    return client


def close(client: AppClient) -> None:
    client.tearDown()
    close_app(client.application)


def scrape(client: AppClient) -> str:
    response = client.request("GET", "/metrics")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return response.body.decode()


def test_every_family_of_before_is_kept_and_the_new_ones_are_there(leader: SchedulerRuntime) -> None:
    from mesos_gpu.api.metrics import Histogram

    leader.placement_latency = Histogram()     # as `mesos-gpu scheduler` sets it
    client = open_client(leader, _Master(STATE))
    try:
        assert client.request("POST", "/v1/jobs", JOB).code == 201
        text = scrape(client)
    finally:
        close(client)
    kinds = families(text)
    assert {name: kinds.get(name) for name in KEPT} == KEPT
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds"):
        assert name in kinds
    assert value(text, "mesos_gpu_build_info", version=__version__) == 1
    assert value(text, "mesos_gpu_jobs", state="PENDING") == 1
    assert {dict(labels)["state"] for labels in parsed(text)["mesos_gpu_jobs"]} == {
        "PENDING", "STAGING", "RUNNING", "RESTARTING", "SUCCEEDED", "FAILED", "KILLED"}
    assert value(text, "mesos_gpu_api_requests_total", method="POST", code="201") == 1
    assert value(text, "mesos_gpu_cluster_gpus", state="active") == 6
    assert value(text, "mesos_gpu_cluster_gpus", state="inactive") == 8
    assert value(text, "mesos_gpu_cluster_gpus", state="deactivated") == 1
    assert value(text, "mesos_gpu_cluster_gpus", state="draining") == 2
    assert value(text, "mesos_gpu_cluster_agents", state="active") == 3
    assert value(text, "mesos_gpu_tenant_gpus_allocated", tenant="vision") == 0  # pending: holds none


def test_request_latency_is_labelled_with_the_route_pattern(leader: SchedulerRuntime) -> None:
    client = open_client(leader)
    try:
        job_id = client.request("POST", "/v1/jobs", JOB).headers["Location"].rsplit("/", 1)[-1]
        for path in (f"/v1/jobs/{job_id}", "/v1/jobs/nope", f"/v1/jobs/{job_id}/tasks", "/no/such/path",
                     "/v1/jobs/"):
            client.request("GET", path)
        text = scrape(client)
    finally:
        close(client)
    routes = {dict(labels)["route"]: count
              for labels, count in parsed(text)["mesos_gpu_api_request_duration_seconds_count"].items()}
    assert routes == {"/v1/jobs": 2, "/v1/jobs/{id}": 2, "/v1/jobs/{id}/tasks": 1, UNMATCHED: 1}
    assert all(job_id not in route for route in routes)


def test_two_apps_in_one_process_count_their_own(leader: SchedulerRuntime) -> None:
    first, second = open_client(leader), open_client(leader)
    try:
        for _ in range(3):
            first.request("GET", "/v1/health")
        assert parsed(scrape(second)).get("mesos_gpu_api_requests_total", {}) == {}
        assert value(scrape(second), "mesos_gpu_api_requests_total", method="GET", code="200") == 1
        assert value(scrape(first), "mesos_gpu_api_requests_total", method="GET", code="200") == 3
    finally:
        close(first)
        close(second)


def test_the_cluster_is_left_out_while_the_master_cannot_be_read(leader: SchedulerRuntime) -> None:
    from mesos_gpu.core.errors import UnavailableError

    master = _Master(UnavailableError("the Mesos master is not known yet"))
    client = open_client(leader, master)
    try:
        text = scrape(client)
        assert "mesos_gpu_cluster_gpus" not in families(text)
        scrape(client)
        assert master.reads == 1        # read at most every 10 s, failures too
    finally:
        close(client)


def test_a_standby_serves_metrics_from_the_store(leader: SchedulerRuntime) -> None:
    client = open_client(leader)
    try:
        client.request("POST", "/v1/jobs", JOB)
        client.request("POST", "/v1/jobs", JOB)
    finally:
        close(client)
    standby = make_runtime(leader.store, "127.0.0.1:8081")
    standby.start()                      # second in the election: it stands by
    try:
        wait_until(lambda: len(leader._election.contenders()) == 2, what="the standby to campaign")
        assert not standby.is_leader
        client = open_client(standby)
        try:
            text = scrape(client)
        finally:
            close(client)
        assert value(text, "mesos_gpu_leader") == 0
        assert value(text, "mesos_gpu_jobs", state="PENDING") == 2
    finally:
        standby.stop()


def member(state: str, share: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"state": state}
    if share is not None:
        out["share"] = {"host": "h", "gpus": share}
    return out


def test_tenant_gpus_add_whole_gpus_and_share_fractions() -> None:
    jobs = [
        {"spec": {"tenant": "a", "gpus": 2}, "members": {"task-0": member("TASK_RUNNING")}},
        {"spec": {"tenant": "a", "gpus": 2}, "members": {"task-0": member("TASK_FINISHED")}},
        {"spec": {"tenant": "b", "gpus": 0.25}, "members": {"task-0": member("TASK_RUNNING", 0.25)}},
        {"spec": {"tenant": "b", "gpus": 0.5}, "members": {"task-0": member("TASK_STAGING", 0.5)}},
        {"spec": {"tenant": "c", "gpus": 1}, "members": {"task-0": member("TASK_KILLED")}},
    ]
    assert tenant_gpus(jobs) == {"a": 2, "b": 0.75, "c": 0}


@pytest.mark.parametrize(
    ("pattern", "template"),
    [
        (r"/v1/jobs/?$", "/v1/jobs"),
        (r"/v1/jobs/([^/]+)/tasks/?$", "/v1/jobs/{id}/tasks"),
        (r"/v1/uploads/(?P<sha>[^/]+)$", "/v1/uploads/{sha}"),
        (r"/openapi\.json$", "/openapi.json"),
        (r"/metrics$", "/metrics"),
        (r"/static/(.*)$", "/static/{path}"),
    ],
)
def test_route_templates(pattern: str, template: str) -> None:
    assert route_template(pattern) == template


def test_cluster_capacity_counts_every_state() -> None:
    capacity = cluster_capacity(STATE)
    assert capacity.gpus == {"active": 6, "inactive": 8, "deactivated": 1, "draining": 2}
    assert capacity.agents == {"active": 3, "inactive": 1, "deactivated": 1, "draining": 1}
    assert cluster_capacity({}).gpus == dict.fromkeys(("active", "inactive", "deactivated", "draining"), 0)


def test_a_registry_alone_renders_and_parses() -> None:
    stats = RequestStats(version="9.9.9")
    stats.record("GET", 200, 0.003, "/v1/jobs")
    text = render([], stats)
    assert value(text, "mesos_gpu_build_info", version="9.9.9") == 1
    assert value(text, "mesos_gpu_api_request_duration_seconds_bucket", route="/v1/jobs", le="0.005") == 1
    assert value(text, "mesos_gpu_api_request_duration_seconds_bucket", route="/v1/jobs", le="0.0025") == 0
