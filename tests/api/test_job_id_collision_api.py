"""POST /v1/jobs when the job id drawn (name + 32 random bits) is another job's: 201 with a fresh id, both
jobs kept (never a 409 for an id the client did not choose, a 500 or a lost job): memory and ZooKeeper."""

from __future__ import annotations

import uuid

import pytest

from mesos_gpu.driver import submits
from tests.api.conftest import AppClient, json_of


@pytest.mark.parametrize("key", [None, "key-2"])
def test_a_submit_whose_drawn_id_is_taken_gets_201_with_a_fresh_id(
    client: AppClient, monkeypatch: pytest.MonkeyPatch, key: str | None,
) -> None:
    left = ["0000abcd", "0000abcd", "1111aaaa"]   # the second job draws the first one's id, then another
    monkeypatch.setattr(submits.uuid, "uuid4", lambda: uuid.UUID(left.pop(0) + "0" * 24))
    job = {"name": "same", "command": "true"}
    first = client.request("POST", "/v1/jobs", job)
    second = client.request("POST", "/v1/jobs", dict(job, command="false"),
                            headers={"Idempotency-Key": key} if key else {})
    assert (first.code, second.code) == (201, 201), second.body
    ids = json_of(first)["id"], json_of(second)["id"]
    assert ids == ("same-0000abcd", "same-1111aaaa") and not left
    for job_id, command in zip(ids, ("true", "false"), strict=True):
        response = client.request("GET", f"/v1/jobs/{job_id}")
        assert response.code == 200 and json_of(response)["spec"]["command"] == command
