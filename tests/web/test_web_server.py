"""The page's server side, without a browser: the page and its files (no token, strict CSP, JSON errors,
relative URLs only), the map endpoint (ETag, 304 while unchanged, auth as any read, one build shared by
concurrent polls, rebuilt at most every MAP_TTL) and the templates embedded from examples/."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.api.app import close_app
from mesos_gpu.api.web import MAP_TTL, STATIC_DIR, MapSource
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import AppClient, app_client, make_runtime, started

REPO = Path(__file__).resolve().parents[2]
TOKEN = "web-s3cret"


@pytest.fixture(scope="module")
def runtime() -> Iterator[Any]:
    rt = started(make_runtime(MemoryStore(MemoryBackend())))
    try:
        yield rt
    finally:
        rt.stop()


def _client(runtime: Any, settings: SchedulerSettings | None = None) -> Iterator[AppClient]:
    c = app_client(runtime, settings)
    try:
        yield c
    finally:
        c.tearDown()
        close_app(c.application)


@pytest.fixture
def client(runtime: Any) -> Iterator[AppClient]:
    yield from _client(runtime)


@pytest.fixture
def guarded(runtime: Any) -> Iterator[AppClient]:
    """An API whose reads need a token."""
    yield from _client(runtime, SchedulerSettings(api_tokens=(TOKEN,), api_auth_reads=True))


def test_the_page_is_served_at_the_root_with_a_strict_policy(client: AppClient) -> None:
    response = client.request("GET", "/")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy and "unsafe" not in policy
    assert b'<script type="module" src="static/main.js">' in response.body


@pytest.mark.parametrize("name, content_type", [
    ("main.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8"),
    ("templates.json", "application/json"),
])
def test_the_page_files_are_served_with_their_types_and_revalidated(
    client: AppClient, name: str, content_type: str
) -> None:
    response = client.request("GET", f"/static/{name}")
    assert response.code == 200 and response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["Etag"]
    again = client.request("GET", f"/static/{name}", headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/../web.py", "/static/%2e%2e/web.py"])
def test_a_missing_or_outside_file_is_a_json_404(client: AppClient, path: str) -> None:
    response = client.request("GET", path)
    assert response.code == 404
    assert json.loads(response.body)["error"]["code"] == "not_found"


def test_the_page_and_its_files_need_no_token_but_the_map_does(guarded: AppClient) -> None:
    assert guarded.request("GET", "/").code == 200
    assert guarded.request("GET", "/static/api.js").code == 200
    refused = guarded.request("GET", "/v1/cluster/map")
    assert refused.code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    ok = guarded.request("GET", "/v1/cluster/map", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.code == 200
    # the page's own header, as sent behind DC/OS Admin Router (which owns Authorization)
    own = guarded.request("GET", "/v1/cluster/map", headers={"X-Mesos-GPU-Token": TOKEN,
                                                               "Authorization": "Bearer dcos-login"})
    assert own.code == 200
    assert guarded.request("GET", "/v1/cluster/map", headers={"X-Mesos-GPU-Token": "wrong"}).code == 401


def test_the_map_has_an_etag_and_an_unchanged_poll_gets_304_without_a_body(client: AppClient) -> None:
    first = client.request("GET", "/v1/cluster/map")
    assert first.code == 200
    body = json.loads(first.body)
    assert body["agents"] == [] and "cannot be reached" in body["master_error"]  # no master here
    assert body["waiting"] == {"total": 0, "jobs": []}
    etag = first.headers["Etag"]
    again = client.request("GET", "/v1/cluster/map", headers={"If-None-Match": etag})
    assert again.code == 304 and again.body == b""


def test_a_new_waiting_job_changes_the_map_within_its_ttl(client: AppClient) -> None:
    etag = client.request("GET", "/v1/cluster/map").headers["Etag"]
    submitted = client.request("POST", "/v1/jobs", {"name": "waits", "command": "x", "gpus": 1,
                                                     "tenant": "team-w"})
    assert submitted.code == 201
    job_id = json.loads(submitted.body)["id"]
    deadline = time.monotonic() + MAP_TTL + 5
    while True:
        answer = client.request("GET", "/v1/cluster/map", headers={"If-None-Match": etag})
        if answer.code == 200:
            break
        assert answer.code == 304 and time.monotonic() < deadline, "the map never changed"
    waiting = json.loads(answer.body)["waiting"]
    assert job_id in [w["job"] for w in waiting["jobs"]] and waiting["total"] >= 1
    assert "team-w" in json.loads(answer.body)["tenants"]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Mesos:
    def __init__(self) -> None:
        self.reads = 0

    async def master_state(self) -> dict[str, Any]:
        self.reads += 1
        await asyncio.sleep(0.01)
        return {"slaves": [{"id": "S0", "hostname": "a", "resources": {"gpus": 2.0}}]}


class _Service:
    def __init__(self) -> None:
        self.pages = 0

    def jobs_page(self, states: Any, tenant: Any, offset: int, limit: int) -> tuple[list[Any], int]:
        self.pages += 1
        return [], 0


class _Context:
    def __init__(self) -> None:
        self.mesos, self.service, self.executor = _Mesos(), _Service(), ThreadPoolExecutor(2)


def test_concurrent_polls_share_one_build_and_the_master_is_read_at_most_every_master_ttl() -> None:
    context, clock = _Context(), _Clock()
    source = MapSource(context, ttl=0.5, master_ttl=2.0, clock=clock)  # type: ignore[arg-type]

    async def scenario() -> None:
        answers = await asyncio.gather(*(source.current() for _ in range(20)))
        assert len({etag for _, etag in answers}) == 1 and source.builds == 1
        assert json.loads(answers[0][0])["gpus"]["total"] == 2
        await source.current()
        assert source.builds == 1  # within the TTL: the cached map
        clock.now += 0.6
        await source.current()
        assert source.builds == 2 and context.mesos.reads == 1  # rebuilt; the master's state reused
        clock.now += 2.0
        await source.current()
        assert source.builds == 3 and context.mesos.reads == 2

    asyncio.run(scenario())
    assert context.service.pages == 2 * source.builds  # active jobs + the first waiting ones, per build


def test_the_templates_are_the_examples_jobs() -> None:
    spec = importlib.util.spec_from_file_location("web_templates", REPO / "scripts" / "web-templates.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    embedded = (STATIC_DIR / "templates.json").read_text(encoding="utf-8")
    assert embedded == module.render(), "stale: run python scripts/web-templates.py"
    examples = sorted(REPO.glob("examples/*/job*.json"))
    assert [t["job"] for t in json.loads(embedded)] == [json.loads(p.read_text()) for p in examples]


# Absolute URLs would break the page under a prefix (DC/OS Admin Router's /service/<name>/).
ABSOLUTE = re.compile(r"""(?:["'`(]|href=|src=)\s*/(?:v1|static|metrics|openapi)""")


@pytest.mark.parametrize("path", sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in (".js", ".html",
                                                                                                ".css")))
def test_the_page_uses_relative_urls_only(path: str) -> None:
    text = (STATIC_DIR / path).read_text(encoding="utf-8")
    assert not ABSOLUTE.search(text), ABSOLUTE.search(text)
    assert "http://" not in text and "https://" not in text  # no CDN, no fixed host


def test_the_relative_url_check_finds_an_absolute_one() -> None:
    assert ABSOLUTE.search('fetch("/v1/jobs")') and ABSOLUTE.search("get(`/v1/cluster/map`)")
    assert not ABSOLUTE.search('get("v1/jobs")')
