"""The API's small parts on their own: Prometheus rendering, tokens, reading Mesos' /state shapes."""

from __future__ import annotations

import pytest

from mesos_gpu.api.auth import TokenAuthenticator, bearer_token, parse_tokens
from mesos_gpu.api.mesos import agent_base, cluster_json, executor_directory, locate_task
from mesos_gpu.api.metrics import Histogram, RequestStats, render, scheduler_families
from mesos_gpu.core.errors import NotFoundError
from tests.api.promtext import value as sample


def test_histogram_is_cumulative_like_prometheus() -> None:
    histogram = Histogram((0.01, 0.1, 1.0))
    for value in (0.005, 0.01, 0.05, 0.5, 5.0):
        histogram.observe(value)
    buckets, total, count = histogram.snapshot()
    assert buckets == [(0.01, 2), (0.1, 3), (1.0, 4)]
    assert count == 5
    assert total == pytest.approx(5.565)


def test_optional_service_counters_are_rendered_when_present() -> None:
    latency = Histogram((0.5,))
    latency.observe(0.1)
    families = scheduler_families(
        jobs_by_state={"PENDING": 1},
        gpus_allocated=3,
        launches=7,
        leader=True,
        mesos_connected=False,
        zookeeper_connected=True,
        offers_received=10,
        offers_declined=4,
        placement_latency=latency,
    )
    text = render(families)
    assert "# TYPE mesos_gpu_offers_received_total counter\nmesos_gpu_offers_received_total 10.0\n" in text
    assert sample(text, "mesos_gpu_offers_declined_total") == 4
    assert sample(text, "mesos_gpu_placement_latency_seconds_bucket", le="0.5") == 1
    assert sample(text, "mesos_gpu_placement_latency_seconds_bucket", le="+Inf") == 1
    assert sample(text, "mesos_gpu_placement_latency_seconds_count") == 1
    without = render(
        scheduler_families(
            jobs_by_state={},
            gpus_allocated=0,
            launches=0,
            leader=False,
            mesos_connected=False,
            zookeeper_connected=False,
        )
    )
    assert "offers" not in without and "placement" not in without


def test_label_values_are_escaped() -> None:
    stats = RequestStats()
    stats.record('GE"T\n', 200, 0.001, "/v1/x")
    text = render([], stats)
    assert 'method="GE\\"T\\n"' in text
    assert sample(text, "mesos_gpu_api_requests_total", method='GE"T\n', code="200") == 1


def test_tokens_and_bearer_headers() -> None:
    assert parse_tokens("a, b\n# c\n\n d # e\n") == ("a", "b", "d")
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    auth = TokenAuthenticator(["x"])
    assert auth.required("POST") and auth.required("DELETE") and not auth.required("GET")
    assert auth.accepts("Bearer x") and not auth.accepts("Bearer xx") and not auth.accepts(None)
    # the API's own header (behind a proxy that owns Authorization): either header may carry the token
    assert auth.accepts(None, "x") and auth.accepts("Bearer dcos-login", " x ")
    assert not auth.accepts(None, "xx") and not auth.accepts(None, "") and not auth.accepts("Bearer y", "z")
    assert not TokenAuthenticator().enabled
    assert not TokenAuthenticator().required("POST")
    assert TokenAuthenticator(["x"], reads=True).required("GET")


def test_an_unreadable_tokens_file_accepts_no_file_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    auth = TokenAuthenticator([], tokens_file=str(tmp_path / "missing"))
    assert auth.enabled and auth.required("POST")
    assert not auth.accepts("Bearer anything")


# Shapes of a real Mesos 1.x master /state and agent /state (trimmed): flat attributes, completed lists.
MASTER_STATE = {
    "version": "1.11.0",
    "leader": "master@10.0.0.1:5050",
    "slaves": [
        {
            "id": "S1",
            "pid": "slave(1)@10.0.0.5:5051",
            "hostname": "gpu-5",
            "port": 5051,
            "resources": {"cpus": 32.0, "mem": 256000.0, "gpus": 8.0, "ports": "[31000-32000]"},
            "used_resources": {"cpus": 4.0, "mem": 8192.0, "gpus": 3.0},
            "attributes": {"gpu_model": "A100", "rack": "r1"},
            "active": True,
        },
        {
            "id": "S2",
            "pid": "slave(1)@10.0.0.6:5051",
            "hostname": "cpu-6",
            "port": 5051,
            "resources": {"cpus": 16.0, "mem": 64000.0},
            "used_resources": {},
            "attributes": {},
            "active": True,
        },
    ],
    "frameworks": [
        {
            "id": "F1",
            "tasks": [
                {"id": "job-1.worker-0.0", "executor_id": "", "slave_id": "S1", "state": "TASK_RUNNING"}
            ],
            "completed_tasks": [{"id": "job-1.worker-1.0", "executor_id": "exec-9", "slave_id": "S1"}],
        }
    ],
    "completed_frameworks": [],
}


def test_locating_a_task_in_master_state() -> None:
    running = locate_task(MASTER_STATE, "job-1.worker-0.0", None, None)
    assert (running.agent_url, running.framework_id, running.executor_id) == (
        "http://10.0.0.5:5051",
        "F1",
        "job-1.worker-0.0",
    )
    done = locate_task(MASTER_STATE, "job-1.worker-1.0", None, None)
    assert done.executor_id == "exec-9"
    # a task the master forgot: the framework id and agent id from the job record still find it
    forgotten = locate_task(MASTER_STATE, "job-2.task-0.0", "S1", "F1")
    assert forgotten.agent_url == "http://10.0.0.5:5051"
    with pytest.raises(NotFoundError):
        locate_task(MASTER_STATE, "job-2.task-0.0", "S1", None)
    with pytest.raises(NotFoundError):
        locate_task(MASTER_STATE, "job-2.task-0.0", "S9", "F1")
    assert agent_base("slave(1)@10.0.0.5:5051") == "http://10.0.0.5:5051"
    assert agent_base("garbage") is None


def test_executor_directory_in_agent_state() -> None:
    state = {
        "frameworks": [{"id": "F1", "executors": [{"id": "e1", "directory": "/var/lib/mesos/a"}]}],
        "completed_frameworks": [
            {"id": "F1", "completed_executors": [{"id": "e2", "directory": "/var/lib/mesos/b"}]}
        ],
    }
    assert executor_directory(state, "F1", "e1") == "/var/lib/mesos/a"
    assert executor_directory(state, "F1", "e2") == "/var/lib/mesos/b"
    assert executor_directory(state, "F2", "e1") is None


def test_cluster_view_of_a_real_master_state() -> None:
    view = cluster_json(MASTER_STATE, "http://10.0.0.1:5050")
    cpu, gpu = view["agents"]  # sorted by hostname
    assert gpu["gpus"] == {"total": 8, "used": 3, "free": 5, "model": "A100"}
    assert cpu["gpus"] == {"total": 0, "used": 0, "free": 0, "model": None}
    assert view["gpus"] == {"total": 8, "used": 3, "free": 5}
    assert view["gpu_models"] == [{"model": "A100", "gpus": 8}]
    assert view["master"]["leader"] == "master@10.0.0.1:5050"
