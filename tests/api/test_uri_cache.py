"""A job's `uris` take Mesos' fetcher `cache` flag (CommandInfo.URI.cache, issue 18): validated as a
boolean at its JSON path, carried into every member's TaskInfo, left out when not set; the served JSON
Schema accepts it; `GET /v1/jobs/{id}` shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.taskinfo import LaunchSettings, task_uris
from mesos_gpu.core.validation import validate_job

URL = "https://example.com/data.tar.gz"


def _job(*uris: object) -> dict:
    return {"name": "fetch", "command": "ls", "uris": list(uris)}


def test_cache_reaches_the_taskinfo_and_is_left_out_when_unset() -> None:
    spec = validate_job(_job({"value": URL, "cache": True}, URL, {"value": URL, "cache": False}))
    assert [uri.cache for uri in spec.uris] == [True, False, False]
    uris = task_uris(spec, spec.tasks("fetch-1")[0], LaunchSettings())
    assert uris[0] == {"value": URL, "extract": True, "executable": False, "cache": True}
    assert all("cache" not in uri for uri in uris[1:])


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_cache_that_is_not_a_boolean_is_refused_at_its_path(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_job(_job({"value": URL, "cache": value}))
    assert [error.path for error in caught.value.errors] == ["/uris/0/cache"]


def test_the_served_schema_takes_cache() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parents[2] / "mesos_gpu/schemas/job.schema.json").read_text())
    jsonschema.validate(_job({"value": URL, "cache": True}), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_job({"value": URL, "cache": "yes"}), schema)


def test_cache_survives_the_stored_record_and_shows_in_the_job_view(client) -> None:
    response = client.request("POST", "/v1/jobs", _job({"value": URL, "cache": True}, URL))
    assert response.code == 201, response.body
    job_id = json.loads(response.body)["id"]
    uris = json.loads(client.request("GET", f"/v1/jobs/{job_id}").body)["spec"]["uris"]
    assert uris[0]["cache"] is True and "cache" not in uris[1]
    again = validate_job(validate_job(_job({"value": URL, "cache": True})).to_dict())
    assert again.uris[0].cache is True
