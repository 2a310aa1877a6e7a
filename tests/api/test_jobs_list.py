"""GET /v1/jobs at scale: a page costs its own jobs, not every job ever (issue 20, item 5), and pages
through `next` exactly as the naive filter + sort + slice would, with any filter."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu.core.model import JobState
from mesos_gpu.core.records import JobRecord
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import AppClient, app_client, json_of, make_runtime, started
from tests.api.spec import check
from tests.waiting import wait_until

SINGLE = {"name": "train", "command": "python train.py", "gpus": 1}


@pytest.fixture
def leader() -> Iterator[SchedulerRuntime]:
    runtime = started(make_runtime(MemoryStore(MemoryBackend())))
    yield runtime
    runtime.stop()


@pytest.fixture
def client(leader: SchedulerRuntime) -> Iterator[AppClient]:
    from mesos_gpu.api.app import close_app

    c = app_client(leader)
    yield c
    c.tearDown()
    close_app(c.application)


def submit(client: AppClient, tenant: str) -> str:
    response = client.request("POST", "/v1/jobs", dict(SINGLE, tenant=tenant))
    assert response.code == 201, response.body
    return str(json_of(response)["id"])


def jobs_with_killed(client: AppClient, count: int) -> list[str]:
    """`count` jobs over three tenants; every third one killed (so two states to filter on)."""
    ids = [submit(client, ("team-a", "team-b", "team-c")[i % 3]) for i in range(count)]
    for job_id in ids[::3]:
        assert client.request("DELETE", f"/v1/jobs/{job_id}").code == 202
    return ids


def test_a_page_builds_the_views_of_its_own_jobs_only(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs_with_killed(client, 30)
    built: list[str] = []
    to_dict = JobRecord.to_dict

    def counted(self: JobRecord) -> dict[str, Any]:
        built.append(self.id)
        return to_dict(self)

    monkeypatch.setattr(JobRecord, "to_dict", counted)
    for query in ("limit=2", "limit=2&offset=20", "tenant=team-b&limit=2", "state=PENDING,KILLED&limit=2"):
        built.clear()
        page = check("JobList", client.request("GET", f"/v1/jobs?{query}").body)
        assert page["total"] in (30, 10) and len(page["jobs"]) == 2
        # none of the other jobs' views (served from the runtime's snapshot: none is built at all)
        assert set(built) <= {job["id"] for job in page["jobs"]}, query


def naive(leader: SchedulerRuntime, states: list[str] | None, tenant: str | None) -> list[str]:
    views = [leader.job(job_id) for job_id in leader._state.jobs]
    matching = [
        view for view in views
        if (states is None or view["state"] in states)
        and (tenant is None or view["spec"]["tenant"] == tenant)
    ]
    return [view["id"] for view in sorted(matching, key=lambda view: (view["submitted_at"], view["id"]))]


@pytest.mark.parametrize(
    ("states", "tenant", "limit"),
    [
        (None, None, 4),
        (["KILLED"], None, 3),
        (["PENDING", "KILLED"], None, 5),
        (["KILLED", "PENDING", "KILLED"], None, 5),
        (None, "team-b", 2),
        (["PENDING"], "team-a", 1),
        (["KILLED", "RUNNING"], "team-c", 2),
        (["RUNNING"], None, 2),
    ],
)
def test_paging_through_next_lists_what_the_naive_filter_and_sort_would(
    client: AppClient, leader: SchedulerRuntime, states: list[str] | None, tenant: str | None, limit: int
) -> None:
    jobs_with_killed(client, 13)
    wait_until(lambda: all(leader.job(i)["state"] in ("PENDING", "KILLED") for i in leader._state.jobs),
               what="the kills to land")
    expected = naive(leader, states, tenant)
    query = {"state": ",".join(states or ()), "tenant": tenant or "", "limit": limit}
    path: str | None = "/v1/jobs?" + urllib.parse.urlencode({k: v for k, v in query.items() if v != ""})
    listed: list[str] = []
    offset = 0
    while path is not None:
        page = check("JobList", client.request("GET", path).body)
        assert (page["total"], page["offset"], page["limit"]) == (len(expected), offset, limit)
        listed.extend(job["id"] for job in page["jobs"])
        offset += limit
        if offset < len(expected):
            again = dict(query, offset=offset)
            assert page["next"] == "/v1/jobs?" + urllib.parse.urlencode(
                {k: v for k, v in again.items() if v != ""})
        else:
            assert page["next"] is None
        path = page["next"]
    assert listed == expected


def test_a_standby_pages_from_the_store() -> None:
    store = MemoryStore(MemoryBackend())
    leader = started(make_runtime(store))
    try:
        client = app_client(leader)
        ids = jobs_with_killed(client, 7)
        client.tearDown()
        standby = make_runtime(store, "127.0.0.1:8081")      # never started: not leading
        wait_until(lambda: all(leader.job(i)["state"] in ("PENDING", "KILLED") for i in ids),
                   what="the kills to land")
        page, total = standby.jobs_page([JobState.PENDING], "team-b", 1, 5)
        assert total == 2 and [view["id"] for view in page] == [ids[4]]
        assert standby.jobs_page(None, None, 0, 100) == leader.jobs_page(None, None, 0, 100)
    finally:
        leader.stop()
