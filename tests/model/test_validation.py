"""validate_job: every invalid document reports its exact errors; valid edge cases parse as expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.model import (
    Constraint,
    ConstraintOperator,
    Containerizer,
    Isolation,
    JobSpec,
    ResourceRequest,
    RestartPolicy,
    RestartPolicyKind,
    Role,
    RoleSpec,
    SuccessPolicy,
)
from mesos_gpu.core.validation import validate_job
from tests.model.cases import CASES, DIST, SINGLE, Case, dist, single
from tests.strategies import invalid_job_documents, json_values, mutated_job_documents

DATA = Path(__file__).parent / "data"


def errors_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        validate_job(doc)
    return [(error.path, error.message) for error in caught.value.errors]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_invalid_document_reports_exact_errors(case: Case) -> None:
    assert errors_of(case.doc) == case.errors


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_error_message_names_the_first_error_and_counts_the_rest() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_job({"name": "X"})
    assert (
        str(caught.value) == "invalid job: /name: must be 1 to 63 lowercase letters, digits or '-', "
        "starting and ending with a letter or digit (and 1 more)"
    )


def test_minimal_single_task_gets_every_default() -> None:
    spec = validate_job(SINGLE)
    assert spec == JobSpec(
        name="job",
        command="true",
        image=None,
        containerizer=Containerizer.MESOS,
        roles={},
        resources=ResourceRequest(cpus=1.0, mem=1024.0, disk=0.0, gpus=0, ports=0),
        env={},
        constraints=(),
        restart=RestartPolicy(
            RestartPolicyKind.NEVER, backoff_limit=3, backoff_seconds=10.0, max_backoff_seconds=300.0
        ),
        success_policy=None,
        deadline_seconds=None,
        priority=0,
        tenant="default",
        rendezvous_timeout_seconds=600.0,
        isolation=Isolation.EXCLUSIVE,
        labels={},
    )


def test_minimal_distributed_job_gets_every_default() -> None:
    spec = validate_job(DIST)
    assert spec.resources is None
    assert spec.roles == {Role.WORKER: RoleSpec(instances=2)}
    assert spec.success_policy is SuccessPolicy.WORKER0


@pytest.mark.parametrize(
    ("doc", "attribute", "expected"),
    [
        pytest.param(single(gpus=1.0), "resources", ResourceRequest(gpus=1), id="gpus-written-as-float"),
        pytest.param(
            single(cpus=2, mem=512),
            "resources",
            ResourceRequest(cpus=2.0, mem=512.0),
            id="ints-become-floats",
        ),
        pytest.param(single(image=None), "image", None, id="image-null-is-absent"),
        pytest.param(single(deadline_seconds=None), "deadline_seconds", None, id="deadline-null-is-absent"),
        pytest.param(single(deadline_seconds=60.0), "deadline_seconds", 60, id="deadline-whole-float"),
        pytest.param(
            dist({"chief": {}, "worker": {}}),
            "success_policy",
            SuccessPolicy.CHIEF,
            id="chief-decides-by-default",
        ),
        pytest.param(dist(), "success_policy", SuccessPolicy.WORKER0, id="worker0-decides-without-chief"),
        pytest.param(
            dist({"chief": {}, "worker": {}}, success_policy="AllWorkers"),
            "success_policy",
            SuccessPolicy.ALL_WORKERS,
            id="all-workers",
        ),
        pytest.param(dist({"worker": {"instances": 3.0}}), "task_count", 3, id="instances-whole-float"),
        pytest.param(
            single(restart={"backoff_seconds": 600}),
            "restart",
            RestartPolicy(backoff_seconds=600.0, max_backoff_seconds=600.0),
            id="cap-defaults-to-at-least-the-base",
        ),
        pytest.param(
            single(constraints=[["rack", "CLUSTER"], ["rack", "GROUP_BY"], ["zone", "CLUSTER", "a"]]),
            "constraints",
            (
                Constraint("rack", ConstraintOperator.CLUSTER),
                Constraint("rack", ConstraintOperator.GROUP_BY),
                Constraint("zone", ConstraintOperator.CLUSTER, "a"),
            ),
            id="optional-constraint-values",
        ),
        pytest.param(
            dist({"worker": {"command": None}}),
            "tasks",
            "python t.py",
            id="role-command-null-uses-job-command",
        ),
        pytest.param(single(name="a" * 63), "name", "a" * 63, id="name-63-chars"),
        pytest.param(
            single(containerizer="docker", image="img"), "containerizer", Containerizer.DOCKER, id="docker"
        ),
        pytest.param(
            single(isolation="exclusive"), "isolation", Isolation.EXCLUSIVE, id="isolation-exclusive"
        ),
    ],
)
def test_valid_edge_cases(doc: dict[str, Any], attribute: str, expected: Any) -> None:
    spec = validate_job(doc)
    value = spec.tasks("j")[0].command if attribute == "tasks" else getattr(spec, attribute)
    assert value == expected
    assert type(value) is type(expected)


def test_validation_does_not_modify_the_document() -> None:
    doc = json.loads((DATA / "distributed.json").read_text())
    before = json.dumps(doc, sort_keys=True)
    validate_job(doc)
    assert json.dumps(doc, sort_keys=True) == before


@settings(max_examples=300, deadline=None)
@given(json_values())
def test_arbitrary_json_gives_a_spec_or_a_validation_error(data: Any) -> None:
    try:
        validate_job(data)
    except ValidationError as error:
        assert error.errors
        assert all(e.path == "" or e.path.startswith("/") for e in error.errors)


@settings(max_examples=100, deadline=None)
@given(invalid_job_documents())
def test_a_broken_document_is_reported_at_the_broken_path(pair: tuple[dict[str, Any], str]) -> None:
    doc, path = pair
    with pytest.raises(ValidationError) as caught:
        validate_job(doc)
    assert path in [error.path for error in caught.value.errors]


@settings(max_examples=150, deadline=None)
@given(mutated_job_documents())
def test_mutated_documents_give_a_spec_or_a_validation_error(doc: dict[str, Any]) -> None:
    try:
        spec = validate_job(doc)
    except ValidationError as error:
        assert error.errors
    else:
        assert validate_job(spec.to_dict()) == spec


def test_the_default_containerizer_is_the_callers_and_a_named_one_wins():
    assert validate_job(single(image="img"), Containerizer.DOCKER).containerizer is Containerizer.DOCKER
    assert validate_job(single(), Containerizer.MESOS).containerizer is Containerizer.MESOS
    named = validate_job(single(containerizer="mesos"), Containerizer.DOCKER)
    assert named.containerizer is Containerizer.MESOS
    with pytest.raises(ValidationError) as caught:
        validate_job(single(), Containerizer.DOCKER)
    assert [(e.path, e.message) for e in caught.value.errors] == [
        ("/image", "required with the docker containerizer")
    ]
