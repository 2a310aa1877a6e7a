"""The CLI through DC/OS Admin Router: an --api URL with a path prefix (`/service/<name>`), the DC/OS
token in `Authorization: token=...` (what Admin Router reads), the API's own token in
`X-Mesos-GPU-Token`. Against a stand-in Admin Router (checks the DC/OS token, strips the prefix) in
front of the real API with tokens; not tried on a DC/OS cluster."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from mesos_gpu import cli
from mesos_gpu.client import ApiClient, ApiError
from mesos_gpu.core.config import SchedulerSettings
from tests.api.rawhttp import serving
from tests.cli.fakeapi import fake_api, http_thread

PREFIX = "/service/mesos-gpu"
DCOS_TOKEN = "dcos-acs-1"
API_TOKEN = "s3cret"
SKIPPED_HEADERS = ("content-length", "transfer-encoding", "connection", "date", "server")


@contextmanager
def admin_router(upstream: str) -> Iterator[str]:
    """`PREFIX/...` proxied to `upstream/...` when `Authorization: token=DCOS_TOKEN`; else 401 (HTML, as
    Admin Router answers) or 404 outside the prefix. Yields the proxy's base URL with the prefix."""

    class Proxy(BaseHTTPRequestHandler):
        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
            if not self.path.startswith(PREFIX + "/"):
                return self._answer(404, {"Content-Type": "text/plain"}, b"not a service")
            if self.headers.get("Authorization") != f"token={DCOS_TOKEN}":
                return self._answer(401, {"Content-Type": "text/html", "WWW-Authenticate": "acsjwt"},
                                    b"<html><body>401 Authorization Required</body></html>")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            request = urllib.request.Request(upstream + self.path[len(PREFIX):], data=body, headers=headers,
                                             method=self.command)
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    self._answer(reply.status, dict(reply.headers), reply.read())
            except urllib.error.HTTPError as exc:
                self._answer(exc.code, dict(exc.headers), exc.read())

        def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in SKIPPED_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            pass

    with http_thread(Proxy) as port:
        yield f"http://127.0.0.1:{port}{PREFIX}"


@pytest.fixture
def routed() -> Iterator[str]:
    with serving(settings=SchedulerSettings(api_tokens=(API_TOKEN,))) as api, admin_router(api.url) as url:
        yield url


def test_submit_and_read_through_admin_router(routed: str) -> None:
    api = ApiClient(routed, token=API_TOKEN, dcos_token=DCOS_TOKEN)
    job, created = api.submit({"name": "via-ar", "command": "true"})
    assert created
    assert api.job(job["id"])["id"] == job["id"]
    assert [j["id"] for j in api.jobs()] == [job["id"]]
    assert api.kill(job["id"])["id"] == job["id"]


def test_the_cli_through_admin_router_with_the_variables(routed: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MESOS_GPU_DCOS_TOKEN", DCOS_TOKEN)
    monkeypatch.setenv("MESOS_GPU_API_TOKEN", API_TOKEN)
    assert cli.main(["--api", routed, "kill", "nope"]) == 1      # reached the API: its 404
    assert "nope" in capsys.readouterr().err
    assert cli.main(["jobs", "--api", routed, "-o", "name"]) == 0


def test_without_the_dcos_token_the_401_says_how_to_get_one(routed: str) -> None:
    with pytest.raises(ApiError) as caught:
        ApiClient(routed, token=API_TOKEN).job("x")
    assert caught.value.status == 401
    text = str(caught.value)
    assert "MESOS_GPU_DCOS_TOKEN" in text and "dcos config show core.dcos_acs_token" in text


def test_without_the_api_token_the_401_names_it(routed: str) -> None:
    with pytest.raises(ApiError) as caught:
        ApiClient(routed, dcos_token=DCOS_TOKEN).kill("x")
    assert caught.value.status == 401 and "MESOS_GPU_API_TOKEN" in str(caught.value)


def test_a_redirect_to_another_origin_is_not_followed_with_a_dcos_token() -> None:
    with fake_api(lambda m, p, h: (200, {"id": "j1"})) as leader:
        def standby(method: str, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
            return 307, {}, {"Location": leader.url + path}

        with fake_api(standby) as api:
            with pytest.raises(ApiError) as caught:
                ApiClient(api.url, token=API_TOKEN, dcos_token=DCOS_TOKEN).job("j1")
            assert "not followed" in str(caught.value)
            assert ApiClient(api.url, token=API_TOKEN).job("j1") == {"id": "j1"}    # inside the cluster
    assert len(leader.requests) == 1 and leader.requests[0].headers["authorization"] == f"Bearer {API_TOKEN}"


def test_the_headers_through_a_prefix() -> None:
    with fake_api(lambda m, p, h: (200, {"id": "j1"})) as api:
        ApiClient(api.url + PREFIX, token=API_TOKEN, dcos_token=DCOS_TOKEN).job("j1")
        ApiClient(api.url, token=API_TOKEN).job("j1")
    routed, plain = api.requests
    assert routed.path == f"{PREFIX}/v1/jobs/j1"
    assert routed.headers["authorization"] == f"token={DCOS_TOKEN}"
    assert routed.headers["x-mesos-gpu-token"] == API_TOKEN
    assert plain.headers["authorization"] == f"Bearer {API_TOKEN}"
    assert "x-mesos-gpu-token" not in plain.headers
