"""Check API responses against the OpenAPI document (`mesos_gpu/api/openapi.json`) with jsonschema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from mesos_gpu.api.app import openapi_document

DOCUMENT = openapi_document()


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(root)


def check(name: str, body: bytes | str | Any) -> Any:
    """Parse `body` (if bytes/str) and assert it is a valid `name` (a components/schemas entry)."""
    data = json.loads(body) if isinstance(body, bytes | str) else body
    errors = sorted(schema_validator(name).iter_errors(data), key=str)
    assert not errors, f"{name}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return data


def documented_statuses(path: str, method: str) -> set[int]:
    return {int(code) for code in DOCUMENT["paths"][path][method.lower()]["responses"]}
