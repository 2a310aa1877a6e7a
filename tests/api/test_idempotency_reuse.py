"""Issue 19 item 10: an Idempotency-Key reused with a different job answers 422 (IETF draft "The
Idempotency-Key HTTP Header Field": a reused key with a different payload), in the API's error format;
the same job again, however it is spelled, is still a replay (200)."""

from __future__ import annotations

import json

from tests.api.conftest import AppClient, json_of
from tests.api.spec import check, documented_statuses

FIRST = {"name": "hello", "command": "echo hello", "gpus": 1, "tenant": "team-a"}


def test_a_key_reused_with_another_job_answers_422_and_creates_nothing(client: AppClient) -> None:
    first = client.request("POST", "/v1/jobs", FIRST, headers={"Idempotency-Key": "reuse-1"})
    assert first.code == 201
    other = dict(FIRST, command="echo another")
    again = client.request("POST", "/v1/jobs", other, headers={"Idempotency-Key": "reuse-1"})
    assert again.code == 422 and 422 in documented_statuses("/v1/jobs", "post")
    error = check("Error", again.body)["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "reuse-1" in error["message"] and json_of(first)["id"] in error["message"]
    assert error["details"] == [
        {"path": "/headers/Idempotency-Key", "message": error["details"][0]["message"]}
    ]
    assert "Idempotent-Replayed" not in again.headers
    assert json_of(client.request("GET", "/v1/jobs"))["total"] == 1


def test_the_same_job_spelled_differently_is_still_a_replay(client: AppClient) -> None:
    first = client.request("POST", "/v1/jobs", FIRST, headers={"Idempotency-Key": "reuse-2"})
    respelled = json.dumps(dict(reversed(list(FIRST.items()))), indent=2)
    headers = {"Idempotency-Key": "reuse-2", "Content-Type": "application/json"}
    again = client.request("POST", "/v1/jobs", respelled, headers=headers)
    assert (first.code, again.code) == (201, 200)
    assert json_of(again)["id"] == json_of(first)["id"]
