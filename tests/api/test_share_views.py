"""Every API view of a task states its GPUs and isolation: gpus as the job wrote them, the member's
isolation level, what it enforces (core.sharing.statement) and the share it was granted."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mesos_gpu.api import views
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import ShareGrant, statement
from mesos_gpu.core.validation import validate_job
from tests.api.conftest import AppClient, json_of
from tests.api.spec import check

GANG = {
    "name": "gang",
    "command": "python train.py",
    "isolation": "mps",
    "roles": {
        "chief": {"gpus": 1},
        "worker": {"instances": 2, "gpus": 0.25, "gpu_memory": 4096},
        "ps": {"gpus": {"min": 0.4, "max": 1}},
        "evaluator": {},
    },
}
GRANT = ShareGrant("sharehost.gang.worker-0.0", False, Isolation.MPS, 250, 4096, 16384)


def view_of(doc: dict[str, Any], members: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = validate_job(doc).to_dict()
    names = ["task-0"] if "roles" not in doc else [
        "chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"
    ]
    return {
        "id": "j-1",
        "spec": spec,
        "state": "RUNNING",
        "submitted_at": 1.0,
        "members": {name: {"attempt": 0, **(members or {}).get(name, {})} for name in names},
    }


def test_a_gang_shows_each_member_its_own_isolation_and_what_it_enforces() -> None:
    share = {**GRANT.to_dict(), "device": "GPU-1234"}
    view = view_of(GANG, {"worker-0": {"state": "TASK_RUNNING", "share": share}})
    tasks = {t["name"]: t for t in views.tasks_json(view)}
    for task in tasks.values():
        check("Task", task)
    assert [(n, t["gpus"], t["isolation"]) for n, t in tasks.items()] == [
        ("chief-0", 1, "exclusive"),
        ("worker-0", 0.25, "mps"),
        ("worker-1", 0.25, "mps"),
        ("ps-0", {"min": 0.4, "max": 1.0}, "mps"),
        ("evaluator-0", 0, "exclusive"),
    ]
    assert tasks["chief-0"]["enforced"] == statement(Isolation.EXCLUSIVE)
    assert tasks["worker-0"]["enforced"] == statement(Isolation.MPS)
    assert "NOT isolated" in tasks["worker-0"]["enforced"]["faults"]
    assert tasks["worker-0"]["share"] == share
    assert tasks["worker-1"]["share"] is None and tasks["chief-0"]["share"] is None


def test_the_job_counts_shares_by_their_fraction_and_holds_no_whole_gpu_for_them() -> None:
    view = view_of(GANG, {name: {"state": "TASK_RUNNING"} for name in ("chief-0", "worker-0", "ps-0")})
    job = check("Job", views.job_json(view))
    assert job["gpus"] == 2.5  # 1 + 2 x 0.25 + 1 (the elastic share's max)
    assert job["isolation"] == "mps"
    assert views.gpus_allocated(view) == 1  # the chief's; share hosts hold the GPUs of shares


def test_a_member_record_object_is_read_through_its_attribute() -> None:
    member = SimpleNamespace(share=GRANT.to_dict())
    assert views._share_of(member) == GRANT.to_dict()
    assert views._share_of(SimpleNamespace()) is None
    assert views._share_of({"share": None}) is None


def test_a_submitted_share_job_states_its_isolation(client: AppClient) -> None:
    response = client.request("POST", "/v1/jobs", {"name": "frac", "command": "true", "gpus": 0.5})
    assert response.code == 201, response.body
    job = check("Job", response.body)
    [task] = job["tasks"]
    assert (task["gpus"], task["isolation"], task["share"]) == (0.5, "capped", None)
    assert task["enforced"] == statement(Isolation.CAPPED)
    assert job["gpus"] == 0.5 and job["spec"]["isolation"] == "capped"
    tasks = check("TaskList", client.request("GET", f"/v1/jobs/{job['id']}/tasks").body)
    assert tasks["tasks"] == job["tasks"]


def test_a_bad_share_is_a_400_naming_its_path(client: AppClient) -> None:
    doc = {"name": "frac", "command": "true", "gpus": {"min": 0.5, "max": 0.7}, "isolation": "mig"}
    response = client.request("POST", "/v1/jobs", doc)
    assert response.code == 400
    details = json_of(response)["error"]["details"]
    assert [d["path"] for d in details] == ["/gpus"]
    assert "MIG" in details[0]["message"]
