"""JobSpec expansion into tasks, JSON round trips, task ids, job and task states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from mesos_gpu.core.model import (
    TF_ROLES,
    Containerizer,
    JobSpec,
    JobState,
    ResourceRequest,
    Role,
    TaskKey,
    TaskState,
    parse_task_id,
    task_id_for,
)
from mesos_gpu.core.validation import validate_job
from tests.model.cases import dist, single
from tests.strategies import job_documents, job_specs

DATA = Path(__file__).parent / "data"
EXAMPLES = sorted(DATA.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_round_trip(path: Path) -> None:
    spec = validate_job(json.loads(path.read_text()))
    canonical = spec.to_dict()
    assert json.loads(json.dumps(canonical)) == canonical
    assert validate_job(canonical) == spec
    assert validate_job(canonical).to_dict() == canonical


def test_three_examples_are_shipped() -> None:
    assert [p.name for p in EXAMPLES] == ["constrained.json", "distributed.json", "single-gpu.json"]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            load("single-gpu.json"),
            [("j.task-0", Role.TASK, 0, ResourceRequest(1.0, 2048.0, 0.0, 1, 0))],
            id="single-gpu-task-needs-no-port",
        ),
        pytest.param(
            load("distributed.json"),
            [
                ("j.chief-0", Role.CHIEF, 0, ResourceRequest(2.0, 4096.0, 0.0, 1, 1)),
                ("j.worker-0", Role.WORKER, 0, ResourceRequest(2.0, 4096.0, 0.0, 1, 1)),
                ("j.worker-1", Role.WORKER, 1, ResourceRequest(2.0, 4096.0, 0.0, 1, 1)),
                ("j.ps-0", Role.PS, 0, ResourceRequest(1.0, 2048.0, 0.0, 0, 1)),
            ],
            id="chief-2-workers-ps",
        ),
        pytest.param(
            dist({"evaluator": {}, "ps": {"instances": 2}, "worker": {}, "chief": {}}),
            [
                ("j.chief-0", Role.CHIEF, 0, ResourceRequest(ports=1)),
                ("j.worker-0", Role.WORKER, 0, ResourceRequest(ports=1)),
                ("j.ps-0", Role.PS, 0, ResourceRequest(ports=1)),
                ("j.ps-1", Role.PS, 1, ResourceRequest(ports=1)),
                ("j.evaluator-0", Role.EVALUATOR, 0, ResourceRequest(ports=1)),
            ],
            id="canonical-role-order-whatever-the-document-order",
        ),
    ],
)
def test_expansion(doc: dict[str, Any], expected: list[tuple[str, Role, int, ResourceRequest]]) -> None:
    tasks = validate_job(doc).tasks("j")
    assert [(t.name, t.role, t.index, t.resources) for t in tasks] == expected


def test_expansion_applies_overrides_and_merges_env() -> None:
    spec = validate_job(
        dist(
            {
                "chief": {"command": "python chief.py", "env": {"B": "chief", "C": "c"}},
                "worker": {"instances": 2, "image": "other:1"},
            },
            image="base:1",
            env={"A": "job", "B": "job"},
            constraints=[["hostname", "UNIQUE"]],
        )
    )
    chief, worker0, worker1 = spec.tasks("tf-1")
    assert (chief.command, chief.image, dict(chief.env)) == (
        "python chief.py",
        "base:1",
        {"A": "job", "B": "chief", "C": "c"},
    )
    assert (worker0.command, worker0.image, dict(worker0.env)) == (
        "python t.py",
        "other:1",
        {"A": "job", "B": "job"},
    )
    assert worker1.key == TaskKey(Role.WORKER, 1)
    assert all(
        t.constraints == spec.constraints and t.containerizer is Containerizer.MESOS for t in (chief, worker0)
    )
    assert chief.to_dict() == {
        "name": "tf-1.chief-0",
        "job_id": "tf-1",
        "role": "chief",
        "index": 0,
        "resources": {"cpus": 1.0, "mem": 1024.0, "disk": 0.0, "gpus": 0, "ports": 1},
        "command": "python chief.py",
        "env": {"A": "job", "B": "chief", "C": "c"},
        "containerizer": "mesos",
        "isolation": "exclusive",
        "constraints": [["hostname", "UNIQUE"]],
        "image": "base:1",
    }


def test_task_env_is_a_copy() -> None:
    spec = validate_job(single(env={"A": "1"}))
    task = spec.tasks("j")[0]
    task.env["B"] = "2"  # type: ignore[index]
    assert dict(spec.env) == {"A": "1"}


def test_spec_helpers() -> None:
    spec = validate_job(load("distributed.json"))
    assert spec.is_distributed and spec.task_count == 4 and spec.total_gpus == 3
    assert [str(k) for k in spec.members()] == ["chief-0", "worker-0", "worker-1", "ps-0"]
    lone = validate_job(load("single-gpu.json"))
    assert not lone.is_distributed and lone.task_count == 1 and lone.total_gpus == 1
    assert lone.members() == (TaskKey(Role.TASK, 0),)


@settings(max_examples=150, deadline=None)
@given(job_documents())
def test_generated_documents_round_trip(doc: dict[str, Any]) -> None:
    spec = validate_job(doc)
    canonical = spec.to_dict()
    assert json.loads(json.dumps(canonical)) == canonical
    assert validate_job(canonical) == spec
    assert validate_job(canonical).to_dict() == canonical


@settings(max_examples=150, deadline=None)
@given(job_specs())
def test_expansion_matches_the_spec(spec: JobSpec) -> None:
    tasks = spec.tasks("job-1")
    assert len(tasks) == spec.task_count == len(spec.members())
    assert [t.key for t in tasks] == list(spec.members())
    assert len({t.name for t in tasks}) == len(tasks)
    assert sum(t.resources.gpus for t in tasks) == pytest.approx(spec.total_gpus)  # shares are fractions
    assert all(t.isolation is spec.isolation_of(t.resources) for t in tasks)
    assert spec.has_shares == any(t.resources.is_share for t in tasks)
    for task in tasks:
        assert task.command.strip()
        assert task.resources.ports == (0 if task.role is Role.TASK else 1)
        assert task.role in TF_ROLES or not spec.is_distributed
        assert parse_task_id(task_id_for(task.name, 2)) == ("job-1", task.key, 2)


@pytest.mark.parametrize(
    ("task_id", "expected"),
    [
        pytest.param("mnist-1.worker-3.0", ("mnist-1", TaskKey(Role.WORKER, 3), 0), id="simple"),
        pytest.param("a.b.ps-0.12", ("a.b", TaskKey(Role.PS, 0), 12), id="job-id-with-dots"),
        pytest.param("j.task-0.1", ("j", TaskKey(Role.TASK, 0), 1), id="single-task"),
    ],
)
def test_parse_task_id(task_id: str, expected: tuple[str, TaskKey, int]) -> None:
    assert parse_task_id(task_id) == expected


@pytest.mark.parametrize(
    "task_id",
    [
        "worker-0",
        "j.worker-0",
        "j.worker-0.x",
        ".worker-0.1",
        "j.boss-0.1",
        "j.worker-01.1",
        "j.worker-.1",
        "j.worker0.1",
    ],
)
def test_parse_task_id_rejects_foreign_ids(task_id: str) -> None:
    with pytest.raises(ValueError):
        parse_task_id(task_id)


def test_task_id_for_rejects_negative_attempts() -> None:
    with pytest.raises(ValueError):
        task_id_for("j.worker-0", -1)


def test_job_state_transitions() -> None:
    for state in JobState:
        assert not state.can_become(state)
        assert state.is_terminal == (not any(state.can_become(other) for other in JobState))
    assert {s for s in JobState if s.is_terminal} == {JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED}
    assert JobState.PENDING.can_become(JobState.STAGING)
    assert JobState.RUNNING.can_become(JobState.RESTARTING)
    assert JobState.RESTARTING.can_become(JobState.PENDING)
    assert not JobState.RUNNING.can_become(JobState.PENDING)
    assert not JobState.PENDING.can_become(JobState.SUCCEEDED)
    for state in JobState:
        if not state.is_terminal:
            assert state.can_become(JobState.KILLED) and state.can_become(JobState.FAILED)


@pytest.mark.parametrize(
    ("name", "terminal"),
    [
        ("TASK_STAGING", False), ("TASK_STARTING", False), ("TASK_RUNNING", False), ("TASK_KILLING", False),
        ("TASK_FINISHED", True), ("TASK_FAILED", True), ("TASK_KILLED", True), ("TASK_ERROR", True),
        ("TASK_LOST", True), ("TASK_DROPPED", True), ("TASK_UNREACHABLE", False), ("TASK_GONE", True),
        ("TASK_GONE_BY_OPERATOR", True), ("TASK_UNKNOWN", False),
    ],
)  # fmt: skip
def test_task_states_follow_mesos(name: str, terminal: bool) -> None:
    state = TaskState.from_mesos(name)
    assert state.value == name == str(state)
    assert state.is_terminal is terminal
    assert state.is_active is not terminal


def test_every_mesos_state_is_covered() -> None:
    assert len(TaskState) == 14
    with pytest.raises(ValueError):
        TaskState.from_mesos("TASK_BOGUS")
