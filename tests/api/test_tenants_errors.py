"""Errors of `PUT /v1/tenants` speak of the tenants document, never of a job (reviewer finding 3)."""

from __future__ import annotations

import pytest

from tests.api.conftest import json_of


@pytest.mark.parametrize(
    ("body", "headers", "status", "path"),
    [
        (b'{"tenants": {}}', {"Content-Type": "text/plain"}, 415, None),
        (b"{not json", {"Content-Type": "application/json"}, 400, ""),
        (b"\xff\xfe", {"Content-Type": "application/json"}, 400, ""),
        (b'{"tenants": {}, "tenants": {}}', {"Content-Type": "application/json"}, 400, "/tenants"),
        (b'{"tenants": {"a": {"quota": -1}}}', {"Content-Type": "application/json"}, 400, "/tenants/a/quota"),
    ],
    ids=["content-type", "not-json", "not-utf8", "repeated-key", "invalid"],
)
def test_put_tenants_errors_name_the_tenants_document(mem_client, body, headers, status, path):
    response = mem_client.request("PUT", "/v1/tenants", body=body, headers=headers)
    error = json_of(response)["error"]
    assert response.code == status
    assert "job" not in error["message"], error["message"]
    assert "tenants" in error["message"], error["message"]
    if path is not None:
        assert path in [detail["path"] for detail in error["details"]]
