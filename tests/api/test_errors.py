"""Bad input gets a JSON error with the right status (400, 404, 405, 413, 415), never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import AppClient, json_of
from tests.api.spec import check


def error_of(response) -> dict:  # type: ignore[no-untyped-def]
    return check("Error", response.body)["error"]


def test_every_bad_field_is_listed(mem_client: AppClient) -> None:
    doc = {
        "name": "Bad Name",
        "command": "",
        "cpus": -1,
        "gpus": 1.5,
        "colour": "red",
        "restart": {"policy": "x"},
    }
    response = mem_client.request("POST", "/v1/jobs", doc)
    assert response.code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    paths = {d["path"] for d in error["details"]}
    assert {"/name", "/command", "/cpus", "/gpus", "/colour", "/restart/policy"} <= paths


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[1,", b"\xff\xfe", b'{"name": NaN}', b"[" * 100_000, b"null", b'"x"', b"[]"]
)
def test_bad_json_is_400(mem_client: AppClient, body: bytes) -> None:
    response = mem_client.request("POST", "/v1/jobs", body, headers={"Content-Type": "application/json"})
    assert response.code == 400, response.body
    assert error_of(response)["code"] in ("invalid_json", "invalid")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_wrong_content_type_is_415(mem_client: AppClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = mem_client.request("POST", "/v1/jobs", b'{"name": "a", "command": "x"}', headers=headers)
    assert response.code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_json_with_a_charset_and_plus_json_are_accepted(mem_client: AppClient) -> None:
    body = b'{"name": "a", "command": "x"}'
    for content_type in ("application/json; charset=utf-8", "application/vnd.mesos-gpu+json"):
        assert (
            mem_client.request("POST", "/v1/jobs", body, headers={"Content-Type": content_type}).code == 201
        )


def test_a_body_over_1_mib_is_413(mem_client: AppClient) -> None:
    big = {"name": "a", "command": "x" * (1 << 20)}
    response = mem_client.request("POST", "/v1/jobs", big)
    assert response.code == 413
    assert error_of(response)["code"] == "too_large"


def test_a_chunked_body_over_1_mib_is_413(mem_client: AppClient) -> None:
    chunk = b" " * 65536

    async def producer(write):  # type: ignore[no-untyped-def]
        for _ in range(20):
            await write(chunk)

    response = mem_client.fetch(
        "/v1/jobs", method="POST", body_producer=producer, headers={"Content-Type": "application/json"}
    )
    assert response.code == 413


def test_a_job_whose_record_would_not_fit_the_store_is_413(mem_client: AppClient) -> None:
    """Under 1 MiB of JSON, but with 1000 members the stored record passes the store's 1 MB limit."""
    env = {f"V{i}": "x" * 3500 for i in range(250)}
    doc = {"name": "a", "command": "x", "env": env, "roles": {"worker": {"instances": 1000}}}
    assert len(json.dumps(doc)) < 1 << 20
    response = mem_client.request("POST", "/v1/jobs", doc)
    assert response.code == 413, response.body
    assert "too large to store" in error_of(response)["message"]


def test_unknown_routes_are_404_and_wrong_methods_405_with_allow(mem_client: AppClient) -> None:
    assert error_of(mem_client.request("GET", "/v2/jobs"))["code"] == "not_found"
    response = mem_client.request("PUT", "/v1/jobs", b"{}")
    assert response.code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert error_of(response)["code"] == "method_not_allowed"
    response = mem_client.request("POST", "/v1/jobs/x", b"{}")
    assert response.code == 405
    assert response.headers["Allow"] == "GET, DELETE"


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=abc", "limit=1001", "offset=-1", "state=SLEEPING", "state=,"],
)
def test_bad_query_arguments_are_400_naming_them(mem_client: AppClient, query: str) -> None:
    response = mem_client.request("GET", f"/v1/jobs?{query}")
    assert response.code == 400
    name = query.split("=", maxsplit=1)[0]
    assert [d["path"] for d in error_of(response)["details"]] == [f"/query/{name}"]


def test_bad_log_arguments_are_400(mem_client: AppClient) -> None:
    job_id = json_of(mem_client.request("POST", "/v1/jobs", {"name": "a", "command": "x"}))["id"]
    response = mem_client.request("GET", f"/v1/jobs/{job_id}/logs?stream=stdin&length=0&offset=x")
    assert response.code == 400
    assert {d["path"] for d in error_of(response)["details"]} == {
        "/query/stream",
        "/query/length",
        "/query/offset",
    }


def test_a_bad_idempotency_key_is_400(mem_client: AppClient) -> None:
    response = mem_client.request(
        "POST", "/v1/jobs", {"name": "a", "command": "x"}, headers={"Idempotency-Key": "k" * 300}
    )
    assert response.code == 400
    assert error_of(response)["details"][0]["path"] == "/headers/Idempotency-Key"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
    )
)
def test_arbitrary_bodies_never_get_a_5xx(mem_client: AppClient, body: bytes) -> None:
    response = mem_client.request("POST", "/v1/jobs", body, headers={"Content-Type": "application/json"})
    assert response.code in (201, 400), response.body
    if response.code == 400:
        check("Error", response.body)
