"""Per-tenant quota, limit, borrowed and waiting gauges in `/metrics` (issue 14): shown by the leader,
quota/limit/borrowed only while quotas are in force, a tenant without a bound has no limit series."""

from __future__ import annotations

from tests.api.promtext import parsed, value
from tests.api.test_prometheus import close, leader, open_client, scrape  # noqa: F401 - `leader`: fixture

TENANTS = {"tenants": {"vision": {"quota": 2, "limit": 3}, "speech": {"quota": 1.5, "may_borrow": False},
                       "ads": {"quota": 1}}}


def _series(text: str, name: str) -> dict[str, float]:
    return {dict(labels)["tenant"]: count for labels, count in parsed(text).get(name, {}).items()}


def test_quota_limit_and_waiting_gauges_per_tenant(leader) -> None:  # noqa: F811
    client = open_client(leader)
    try:
        assert client.request("PUT", "/v1/tenants", TENANTS).code == 200
        for tenant, gpus in (("vision", 2), ("vision", 1), ("speech", 1)):
            job = {"name": "train", "command": "true", "gpus": gpus, "tenant": tenant}
            assert client.request("POST", "/v1/jobs", job).code == 201
        text = scrape(client)
    finally:
        close(client)
    assert _series(text, "mesos_gpu_tenant_quota_gpus") == {"vision": 2, "speech": 1.5, "ads": 1}
    assert _series(text, "mesos_gpu_tenant_limit_gpus") == {"vision": 3, "speech": 1.5}  # ads: no bound
    assert _series(text, "mesos_gpu_tenant_borrowed_gpus") == {"vision": 0, "speech": 0, "ads": 0}
    assert value(text, "mesos_gpu_tenant_waiting_jobs", tenant="vision") == 2
    assert value(text, "mesos_gpu_tenant_waiting_gpus", tenant="vision") == 3
    assert value(text, "mesos_gpu_tenant_waiting_gpus", tenant="ads") == 0


def test_without_quotas_only_waiting_is_shown(leader) -> None:  # noqa: F811
    client = open_client(leader)
    try:
        job = {"name": "train", "command": "true", "gpus": 1, "tenant": "vision"}
        assert client.request("POST", "/v1/jobs", job).code == 201
        text = scrape(client)
    finally:
        close(client)
    for name in ("mesos_gpu_tenant_quota_gpus", "mesos_gpu_tenant_limit_gpus",
                 "mesos_gpu_tenant_borrowed_gpus"):
        assert name not in parsed(text), name
    assert value(text, "mesos_gpu_tenant_waiting_jobs", tenant="vision") == 1
