"""The OpenAPI document is the source of truth: well formed, in step with the job schema and with the
application's routes."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema

from mesos_gpu.api.app import close_app, make_app, openapi_document
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.isolationtext import describe
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import STATEMENTS, ShareGrant

DOCUMENT = openapi_document()
JOB_SCHEMA = json.loads(resources.files("mesos_gpu").joinpath("schemas/job.schema.json").read_text())
PREFIX = "JobSpec."


def test_it_is_openapi_3_1_with_valid_json_schemas() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    for schema in DOCUMENT["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _unhoist(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and value.startswith(f"#/components/schemas/{PREFIX}"):
                out[key] = "#/$defs/" + value.removeprefix(f"#/components/schemas/{PREFIX}")
            else:
                out[key] = _unhoist(value)
        return out
    if isinstance(node, list):
        return [_unhoist(item) for item in node]
    return node


def test_the_job_request_schema_is_the_published_job_schema() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    rebuilt = {"$schema": JOB_SCHEMA["$schema"], **_unhoist(schemas["JobSpec"])}
    rebuilt["$defs"] = {
        name.removeprefix(PREFIX): _unhoist(schema)
        for name, schema in schemas.items()
        if name.startswith(PREFIX)
    }
    assert rebuilt == JOB_SCHEMA


def test_every_documented_path_is_routed_and_every_route_documented() -> None:
    app = make_app(object(), settings=SchedulerSettings(), launcher_bundle=b"", master_url="127.0.0.1:1")  # type: ignore[arg-type]
    close_app(app)
    routes = [rule.matcher.regex for rule in app.default_router.rules[0].target.rules]  # type: ignore[attr-defined]
    documented = list(DOCUMENT["paths"])
    for path in documented:
        concrete = re.sub(r"\{[^}]+\}", "some-job", path)
        assert any(r.fullmatch(concrete) for r in routes), path
    for regex in routes:
        assert any(regex.fullmatch(re.sub(r"\{[^}]+\}", "some-job", p)) for p in documented), regex.pattern


# A probe's "not ready" is its own answer, not an error: the same body as "ready" (each check's state).
PROBE_ANSWERS = {("/v1/health/ready", "get", "503"): "#/components/schemas/Readiness"}


def test_every_operation_documents_its_errors_with_the_error_schema() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for code, declared in operation["responses"].items():
                response = declared
                if "$ref" in declared:
                    response = DOCUMENT["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
                if int(code) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    expected = PROBE_ANSWERS.get((path, method, code), "#/components/schemas/Error")
                    assert schema == {"$ref": expected}, (path, method, code)


def test_a_task_view_states_its_isolation_in_the_statements_words() -> None:
    task = DOCUMENT["components"]["schemas"]["Task"]
    for name in ("gpus", "isolation", "enforced", "share"):
        assert name in task["required"], name
    isolation = task["properties"]["isolation"]
    assert isolation["enum"] == [level.value for level in Isolation]
    assert all(describe(level) in isolation["description"] for level in Isolation)
    enforced = task["properties"]["enforced"]
    assert enforced["type"] == ["object", "null"]  # null: a task without GPUs
    assert set(enforced["properties"]) == {"level", *STATEMENTS[Isolation.EXCLUSIVE], "in_effect"}
    assert set(enforced["required"]) == set(enforced["properties"]) - {"in_effect"}
    share = task["properties"]["share"]["anyOf"][0]["properties"]
    grant = ShareGrant("h", False, Isolation.MIG, 285, 20480, 81920, mig_index=1, mig_profile="2g.20gb")
    assert set(share) == {*grant.to_dict(), "device", "enforcement"}


def test_the_job_schema_takes_shares_and_the_task_schema_shows_them() -> None:
    root = {"components": DOCUMENT["components"]}
    job = jsonschema.Draft202012Validator({**root, "$ref": "#/components/schemas/JobSpec"})
    assert job.is_valid({"name": "a", "command": "x", "gpus": 0.25, "gpu_memory": 100, "isolation": "mps"})
    # isolation's cross-field rules are the server's (the schema's description names them)
    description = DOCUMENT["components"]["schemas"]["JobSpec"]["description"]
    assert "isolation \"exclusive\" needs whole GPUs" in description
    assert not job.is_valid({"name": "a", "command": "x", "gpus": 0.125})
    assert not job.is_valid({"name": "a", "command": "x", "gpus": {"min": 0.2, "max": 1.5}})
