"""The published JSON Schema agrees with validate_job: examples, the invalid table, limits and field names."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings

from mesos_gpu.core import joblimits, validation
from mesos_gpu.core.joblimits import JOB_FIELDS, RESTART_FIELDS, ROLE_FIELDS
from mesos_gpu.core.validation import validate_job
from tests.model.cases import CASES, Case
from tests.strategies import job_documents, mutated_job_documents

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads(resources.files("mesos_gpu").joinpath(validation.JOB_SCHEMA_PATH).read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.stem)
def test_examples_are_valid_for_both(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert list(VALIDATOR.iter_errors(doc)) == []
    spec = validate_job(doc)
    assert list(VALIDATOR.iter_errors(spec.to_dict())) == []


SCHEMA_CASES = [case for case in CASES if case.schema_rejects]


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=[case.id for case in SCHEMA_CASES])
def test_invalid_documents_are_rejected_by_both(case: Case) -> None:
    assert not VALIDATOR.is_valid(case.doc)
    with pytest.raises(validation.ValidationError):
        validate_job(case.doc)


SERVER_ONLY = [case for case in CASES if not case.schema_rejects and case.id != "non-string-keys"]


@pytest.mark.parametrize("case", SERVER_ONLY, ids=[case.id for case in SERVER_ONLY])
def test_rules_only_the_server_checks_are_documented_gaps(case: Case) -> None:
    """These pass the schema (it cannot express them) and are rejected by validate_job."""
    assert VALIDATOR.is_valid(case.doc)
    with pytest.raises(validation.ValidationError):
        validate_job(case.doc)


@settings(max_examples=100, deadline=None)
@given(job_documents())
def test_generated_valid_documents_are_valid_for_the_schema(doc: dict[str, Any]) -> None:
    assert list(VALIDATOR.iter_errors(doc)) == []
    assert list(VALIDATOR.iter_errors(validate_job(doc).to_dict())) == []


def test_field_names_match() -> None:
    assert set(SCHEMA["properties"]) == set(JOB_FIELDS)
    assert set(SCHEMA["$defs"]["roles"]["properties"]["worker"]["properties"]) == set(ROLE_FIELDS)
    assert set(SCHEMA["$defs"]["roles"]["properties"]["chief"]["properties"]) == set(ROLE_FIELDS)
    assert set(SCHEMA["$defs"]["restart"]["properties"]) == set(RESTART_FIELDS)
    assert set(SCHEMA["$defs"]["elasticShare"]["properties"]) == set(joblimits.ELASTIC_FIELDS)
    assert set(SCHEMA["$defs"]["uri"]["anyOf"][1]["properties"]) == set(joblimits.URI_FIELDS)


def _bounds(node: dict[str, Any]) -> tuple[float, float, bool]:
    if "anyOf" in node:
        node = node["anyOf"][0]
    return (node["minimum"], node["maximum"], node["type"] == "integer")


@pytest.mark.parametrize(
    ("pointer", "bounds"),
    [
        ("$defs/cpus", joblimits.CPUS_RANGE),
        ("$defs/mem", joblimits.MEM_RANGE),
        ("$defs/disk", joblimits.DISK_RANGE),
        ("$defs/gpus", joblimits.GPUS_RANGE),
        ("$defs/gpuMemory", joblimits.GPU_MEMORY_RANGE),
        ("$defs/roles/properties/worker/properties/instances", joblimits.INSTANCES_RANGE),
        ("$defs/restart/properties/backoff_limit", joblimits.BACKOFF_LIMIT_RANGE),
        ("$defs/restart/properties/backoff_seconds", joblimits.BACKOFF_SECONDS_RANGE),
        ("$defs/restart/properties/max_backoff_seconds", joblimits.MAX_BACKOFF_SECONDS_RANGE),
        ("properties/deadline_seconds", joblimits.DEADLINE_SECONDS_RANGE),
        ("properties/priority", joblimits.PRIORITY_RANGE),
        ("properties/rendezvous_timeout_seconds", joblimits.RENDEZVOUS_TIMEOUT_RANGE),
    ],
)
def test_numeric_limits_match(pointer: str, bounds: tuple[float, float, bool]) -> None:
    node: Any = SCHEMA
    for part in pointer.split("/"):
        node = node[part]
    assert _bounds(node) == bounds


def test_size_limits_match() -> None:
    defs = SCHEMA["$defs"]
    assert defs["dnsLabel"]["maxLength"] == joblimits.MAX_NAME_LENGTH
    assert defs["command"]["maxLength"] == joblimits.MAX_COMMAND_LENGTH
    assert defs["image"]["maxLength"] == joblimits.MAX_IMAGE_LENGTH
    assert defs["env"]["maxProperties"] == joblimits.MAX_ENV_ENTRIES
    assert defs["env"]["additionalProperties"]["maxLength"] == joblimits.MAX_ENV_VALUE_LENGTH
    assert defs["labels"]["maxProperties"] == joblimits.MAX_LABELS
    assert defs["labels"]["additionalProperties"]["maxLength"] == joblimits.MAX_LABEL_VALUE_LENGTH
    assert SCHEMA["properties"]["constraints"]["maxItems"] == joblimits.MAX_CONSTRAINTS
    assert defs["dnsLabel"]["pattern"] == "^" + joblimits.DNS_LABEL.pattern + "$"
    assert str(joblimits.MAX_TASKS_PER_JOB) in SCHEMA["description"]


SERVER_ONLY_MESSAGES = (
    "too many tasks",
    "not a valid regular expression",
    "must be at least backoff_seconds",
    joblimits.ELASTIC_ORDER_MESSAGE,
    # a share isolation level with no share member: a rule across the job and its roles' gpus
    *(joblimits.SHARE_LEVEL_MESSAGE.format(level=level) for level in ("mig", "mps", "capped", "shared")),
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value.keys(), *(s for item in value.values() for s in _strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@settings(max_examples=150, deadline=None)
@given(mutated_job_documents())
def test_schema_and_validator_agree_on_mutated_documents(doc: dict[str, Any]) -> None:
    """Accepted by validate_job => valid for the schema; rejected => invalid, but for the documented gaps."""
    try:
        validate_job(doc)
    except validation.ValidationError as error:
        gaps = [e for e in error.errors if e.message.startswith(SERVER_ONLY_MESSAGES)]
        # Python's `$` also matches before a final newline: the schema's patterns let "name\n" through.
        trailing_newline = any(s.endswith("\n") for s in _strings(doc))
        if not gaps and not trailing_newline:
            assert not VALIDATOR.is_valid(doc), error.errors
    else:
        assert list(VALIDATOR.iter_errors(doc)) == []
