"""POST/GET/DELETE /v1/jobs through tornado's test client against the real app and a real runtime
(in-memory store and the real ZooKeeper store; no Mesos: jobs stay PENDING, see conftest.InertDriver)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any
from urllib.parse import urlparse

import pytest

from mesos_gpu.driver.runtime import SchedulerRuntime
from tests.api.conftest import AppClient, json_of
from tests.api.promtext import value
from tests.api.spec import check, documented_statuses
from tests.waiting import wait_until

SINGLE = {"name": "hello", "command": "echo hello", "gpus": 1, "tenant": "team-a"}
DISTRIBUTED = {
    "name": "mnist",
    "command": "python train.py",
    "roles": {"chief": {"gpus": 1}, "worker": {"instances": 2, "gpus": 1}, "ps": {"cpus": 1}},
    "tenant": "team-b",
}


def submit(client: AppClient, doc: dict, key: str | None = None) -> dict:
    headers = {"Idempotency-Key": key} if key else {}
    response = client.request("POST", "/v1/jobs", doc, headers=headers)
    assert response.code == 201, response.body
    return json_of(response)


def test_submit_answers_201_with_location_and_the_pending_job(client: AppClient) -> None:
    response = client.request("POST", "/v1/jobs", SINGLE)
    assert response.code == 201
    job = check("Job", response.body)
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "PENDING"
    assert job["spec"]["command"] == "echo hello"
    assert job["gpus"] == 1
    [task] = job["tasks"]
    assert task["name"] == "task-0"
    assert task["gpus"] == 1
    assert task["isolation"] == "exclusive"
    assert task["state"] is None
    assert job["tf_cluster"] is None


def test_get_shows_spec_tasks_and_tf_cluster_of_a_distributed_job(client: AppClient) -> None:
    job_id = submit(client, DISTRIBUTED)["id"]
    response = client.request("GET", f"/v1/jobs/{job_id}")
    assert response.code == 200
    job = check("Job", response.body)
    assert [t["name"] for t in job["tasks"]] == ["chief-0", "worker-0", "worker-1", "ps-0"]
    assert [t["gpus"] for t in job["tasks"]] == [1, 1, 1, 0]
    assert job["tf_cluster"] == {"chief": [None], "worker": [None, None], "ps": [None]}
    assert job["gpus"] == 3
    tasks = check("TaskList", client.request("GET", f"/v1/jobs/{job_id}/tasks").body)
    assert tasks["tasks"] == job["tasks"]


def test_an_idempotent_retry_returns_the_first_job(client: AppClient) -> None:
    first = client.request("POST", "/v1/jobs", SINGLE, headers={"Idempotency-Key": "retry-1"})
    again = client.request("POST", "/v1/jobs", SINGLE, headers={"Idempotency-Key": "retry-1"})
    assert (first.code, again.code) == (201, 200)
    assert json_of(first)["id"] == json_of(again)["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert json_of(client.request("GET", "/v1/jobs"))["total"] == 1


def test_a_retry_after_a_dropped_response_creates_one_job(client: AppClient) -> None:
    """The client sends the submit and closes the connection without reading the answer; its retry
    (same key) must find the job the first request created."""
    body = json.dumps(SINGLE).encode()
    request = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: dropped-1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    port = urlparse(client.get_url("/")).port
    assert port is not None

    def send_and_drop() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request)

    client.io_loop.run_sync(lambda: client.io_loop.run_in_executor(None, send_and_drop))

    def listed() -> int:
        return json_of(client.request("GET", "/v1/jobs"))["total"]

    wait_until(lambda: listed() == 1, what="the dropped submit to be persisted")
    retry = client.request("POST", "/v1/jobs", SINGLE, headers={"Idempotency-Key": "dropped-1"})
    assert retry.code == 200
    assert listed() == 1


def test_without_a_key_each_submit_is_a_new_job(client: AppClient) -> None:
    a, b = submit(client, SINGLE), submit(client, SINGLE)
    assert a["id"] != b["id"]


def test_concurrent_submits_are_grouped_into_fewer_store_writes_and_each_is_one_job(
    client: AppClient, runtime: SchedulerRuntime, store: Any
) -> None:
    writes: list[int] = []
    create_many = store.create_many

    def counting(items: Any) -> Any:
        writes.append(len(items))
        return create_many(items)

    store.create_many = counting

    async def many() -> list[Any]:
        return await asyncio.gather(*(
            client.http_client.fetch(
                client.get_url("/v1/jobs"), method="POST", body=json.dumps(dict(SINGLE, name=f"n{i}")),
                headers={"Content-Type": "application/json"}, raise_error=False,
            )
            for i in range(40)
        ))

    try:
        responses = client.io_loop.run_sync(many, timeout=30)
    finally:
        del store.create_many
    assert [r.code for r in responses] == [201] * 40
    jobs = [check("Job", r.body) for r in responses]
    assert sorted(job["spec"]["name"] for job in jobs) == sorted(f"n{i}" for i in range(40))
    assert all(job["state"] == "PENDING" for job in jobs)
    assert sum(writes) == 40 and len(writes) < 40        # some submits shared a write
    metrics = client.request("GET", "/metrics").body.decode()
    assert value(metrics, "mesos_gpu_submit_batches_total") == len(writes)
    listed = json_of(client.request("GET", "/v1/jobs?limit=1000"))
    assert {job["id"] for job in jobs} <= {job["id"] for job in listed["jobs"]}
    assert all(runtime.store.get(job["id"]).version == 0 for job in jobs)


def test_list_filters_by_state_and_tenant_and_paginates(client: AppClient) -> None:
    ids = [submit(client, SINGLE)["id"] for _ in range(3)] + [submit(client, DISTRIBUTED)["id"]]
    page = check("JobList", client.request("GET", "/v1/jobs?limit=2").body)
    assert page["total"] == 4
    assert [j["id"] for j in page["jobs"]] == ids[:2]
    assert page["next"] == "/v1/jobs?limit=2&offset=2"
    rest = check("JobList", client.request("GET", page["next"]).body)
    assert [j["id"] for j in rest["jobs"]] == ids[2:]
    assert rest["next"] is None
    team_b = json_of(client.request("GET", "/v1/jobs?tenant=team-b"))
    assert [j["id"] for j in team_b["jobs"]] == ids[3:]
    assert json_of(client.request("GET", "/v1/jobs?state=RUNNING"))["total"] == 0
    assert json_of(client.request("GET", "/v1/jobs?state=PENDING,RUNNING"))["total"] == 4


def test_kill_answers_202_and_the_job_ends_killed(client: AppClient) -> None:
    job_id = submit(client, SINGLE)["id"]
    response = client.request("DELETE", f"/v1/jobs/{job_id}")
    assert response.code == 202
    check("Job", response.body)

    def state() -> str:
        return json_of(client.request("GET", f"/v1/jobs/{job_id}"))["state"]

    wait_until(lambda: state() == "KILLED", what="the job to be KILLED")
    again = client.request("DELETE", f"/v1/jobs/{job_id}")
    assert again.code == 202
    assert json_of(again)["state"] == "KILLED"


@pytest.mark.parametrize(
    "path", ["/v1/jobs/nope-1234", "/v1/jobs/nope/tasks", "/v1/jobs/..", "/v1/jobs/a%2Fb"]
)
def test_unknown_jobs_are_404(client: AppClient, path: str) -> None:
    response = client.request("GET", path)
    assert response.code == 404
    assert check("Error", response.body)["error"]["code"] == "not_found"
    assert client.request("DELETE", "/v1/jobs/nope-1234").code == 404


def test_logs_of_a_task_not_launched_yet_is_409_saying_why(client: AppClient) -> None:
    job_id = submit(client, SINGLE)["id"]
    response = client.request("GET", f"/v1/jobs/{job_id}/logs")
    assert response.code == 409
    assert "has not been launched yet" in check("Error", response.body)["error"]["message"]
    unknown = client.request("GET", f"/v1/jobs/{job_id}/logs?task=worker-7")
    assert unknown.code == 404
    assert 409 in documented_statuses("/v1/jobs/{id}/logs", "get")
