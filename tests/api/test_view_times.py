"""Every time in the job views comes twice: epoch seconds and its ISO-8601 UTC twin (`*_iso`), both
documented in openapi.json's schemas."""

from __future__ import annotations

from datetime import datetime

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.api import views
from mesos_gpu.api.app import openapi_document

SCHEMAS = openapi_document()["components"]["schemas"]
TIMES = ("submitted_at", "started_at", "finished_at")


def view(**times: float | None) -> dict:
    return {"id": "j1", "state": "RUNNING", "spec": {"name": "n", "tenant": "t", "command": "true"},
            "members": {"task-0": {"attempt": 0, "state": "TASK_RUNNING"}}, **times}


def test_the_iso_twins_match_the_epoch_numbers_and_null_stays_null() -> None:
    job = views.job_json(view(submitted_at=1764851793.25, started_at=None, finished_at=None,
                              next_attempt_at=1764851800.0))
    assert job["submitted_at"] == 1764851793.25
    assert job["submitted_at_iso"] == "2025-12-04T12:36:33.250Z"
    assert job["started_at_iso"] is None and job["finished_at_iso"] is None
    assert job["next_attempt_at_iso"] == "2025-12-04T12:36:40.000Z"
    summary = views.job_summary(view(submitted_at=0.0))
    assert summary["submitted_at_iso"] == "1970-01-01T00:00:00.000Z"


def test_the_views_with_times_match_their_documented_schemas() -> None:
    for name, make in (("Job", views.job_json), ("JobSummary", views.job_summary)):
        schema = {**SCHEMAS[name], "components": {"schemas": SCHEMAS}}
        shown = make(view(submitted_at=5.0, started_at=6.0, finished_at=None))
        jsonschema.validate(shown, schema, format_checker=jsonschema.FormatChecker())
        assert {f"{t}_iso" for t in TIMES} <= set(SCHEMAS[name]["required"])


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_iso_time_is_the_epoch_cut_to_the_millisecond(epoch: float) -> None:
    text = views.iso_time(epoch)
    assert text is not None and text.endswith("Z") and len(text) == len("1970-01-01T00:00:00.000Z")
    back = datetime.fromisoformat(text).timestamp()
    assert -1e-6 <= epoch - back < 0.001 + 1e-6
