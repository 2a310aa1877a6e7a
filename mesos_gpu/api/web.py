"""The cluster web page and the compact endpoint it polls.

Routes (`routes(context)`, added to the API application by `mesos_gpu.api.app.make_app`)::

    GET /                    the page (static/index.html): GPU map, jobs, logs, submit
    GET /static/<file>       its CSS, JavaScript modules and job templates (static/templates.json,
                             generated from examples/*/job*.json by scripts/web-templates.py)
    GET /v1/cluster/map      the GPU map (`mesos_gpu.api.gpumap`) with an ETag: a poll that sends
                             `If-None-Match` with the last ETag gets 304 and no body while nothing changed

The page uses relative URLs only (`v1/jobs`, `static/main.js`), so it works under a path prefix such as
DC/OS Admin Router's `/service/<name>/`. The page and its files need no token (they hold no data); the
map needs what every API read needs (`Authorization: Bearer <token>` when reads are authenticated).

Cost: however many pages poll, the map is built at most once per MAP_TTL seconds (one build is shared by
the requests that arrive meanwhile) and the Mesos master's `/state` is read at most once per MASTER_TTL
seconds. A build reads the active jobs (STAGING, RUNNING, RESTARTING) and the first waiting ones: O(active
jobs), never O(all jobs ever submitted).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tornado.web

from mesos_gpu.api.context import ApiContext
from mesos_gpu.api.gpumap import WAITING_LISTED, gpu_map
from mesos_gpu.api.handlers import HTTP_CODES, ApiHandler
from mesos_gpu.api.metrics import route_of
from mesos_gpu.api.requests import JSON_TYPE
from mesos_gpu.core.errors import MesosGpuError, NotFoundError
from mesos_gpu.core.model import JobState

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The map is rebuilt at most this often (seconds), whatever the number of pages polling it.
MAP_TTL = 0.5
#: The Mesos master's /state (agents and their GPUs) is read at most this often (seconds).
MASTER_TTL = 2.0
#: The most active jobs one map shows.
MAX_ACTIVE_JOBS = 100_000
ACTIVE_STATES = (JobState.STAGING, JobState.RUNNING, JobState.RESTARTING)
#: The page's headers: its scripts and styles come from this server only (no inline code, no CDN).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


class MapSource:
    """The current map as (body, ETag), rebuilt at most every `ttl` seconds; the master's state is read
    at most every `master_ttl` seconds. Used on the API's IOLoop only."""

    def __init__(self, context: ApiContext, ttl: float = MAP_TTL, master_ttl: float = MASTER_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.context = context
        self.ttl, self.master_ttl, self.clock = ttl, master_ttl, clock
        self._map: tuple[bytes, str] | None = None
        self._built_at = float("-inf")
        self._master: dict[str, Any] = {}
        self._master_at = float("-inf")
        self._master_error: str | None = None
        self._building: asyncio.Future[tuple[bytes, str]] | None = None
        self.builds = 0  # how many times the map was built (tests and the benchmark read it)

    async def current(self) -> tuple[bytes, str]:
        if self._map is not None and self.clock() - self._built_at < self.ttl:
            return self._map
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
            self._building.add_done_callback(self._built)
        return await asyncio.shield(self._building)

    def _built(self, future: asyncio.Future[tuple[bytes, str]]) -> None:
        self._building = None

    async def _build(self) -> tuple[bytes, str]:
        master = await self._master_state()
        loop = asyncio.get_running_loop()
        built = await loop.run_in_executor(self.context.executor, self._compose, master, self._master_error)
        self._map, self._built_at = built, self.clock()
        self.builds += 1
        return built

    def _compose(self, master: dict[str, Any], master_error: str | None) -> tuple[bytes, str]:
        """Read the jobs, build and serialise the map (on a worker thread: ~16 ms for 800 GPUs, ~100 ms
        for 4,000, which must not hold the IOLoop)."""
        service = self.context.service
        active, _ = service.jobs_page(ACTIVE_STATES, None, 0, MAX_ACTIVE_JOBS)
        waiting, waiting_total = service.jobs_page((JobState.PENDING,), None, 0, WAITING_LISTED)
        body = gpu_map(master, active, waiting, waiting_total)
        if master_error:
            body["master_error"] = master_error
        data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return data, '"' + hashlib.sha256(data).hexdigest()[:24] + '"'

    async def _master_state(self) -> dict[str, Any]:
        if self.clock() - self._master_at < self.master_ttl:
            return self._master
        try:
            self._master = await self.context.mesos.master_state()
            self._master_error = None
        except MesosGpuError as exc:  # keep the last agents; say why they may be stale
            self._master_error = f"the Mesos master could not be read: {exc}"
        self._master_at = self.clock()
        return self._master


class MapHandler(ApiHandler):
    """GET: the GPU map; 304 when the request's If-None-Match names the current ETag."""

    def initialize(self, context: ApiContext, source: MapSource) -> None:  # type: ignore[override]
        super().initialize(context)
        self.source = source

    async def get(self) -> None:
        body, etag = await self.source.current()
        self.set_header("Etag", etag)
        self.set_header("Cache-Control", "no-cache")
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.finish(body)


class _JsonErrors(tornado.web.RequestHandler):
    """Errors of the page's handlers as the API's JSON errors: a missing file is a 404 like any other,
    a method other than GET or HEAD a 405 naming them (Allow). Each request is counted in the API's
    request metrics (`context.requests`) with its route pattern, as the API's own handlers are."""

    context: ApiContext | None = None

    def on_finish(self) -> None:
        if self.context is not None:
            self.context.requests.record(
                self.request.method or "", self.get_status(), self.request.request_time(), route_of(self)
            )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 403:  # tornado's answer to a path outside the directory: not one of ours
            status_code = 404
        error: MesosGpuError = NotFoundError(f"no such file: {self.request.path}")
        if status_code == 405:
            self.set_header("Allow", "GET, HEAD")
            error = MesosGpuError(f"{self.request.method} is not allowed on {self.request.path} "
                                  "(allowed: GET, HEAD)")
            error.code = "method_not_allowed"
        elif status_code != 404:
            error = MesosGpuError(self._reason or "request failed")
            error.code = HTTP_CODES.get(status_code, "error")
        self.clear_header("Cache-Control")
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.set_status(status_code)
        self.finish(json.dumps(error.to_dict(), separators=(",", ":")))


class PageHandler(_JsonErrors):
    """GET: the page itself (static/index.html), with a strict content security policy."""

    def initialize(self, context: ApiContext | None = None) -> None:
        self.context = context

    def head(self) -> None:
        self.get()

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", PAGE_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-cache")
        self.finish((STATIC_DIR / "index.html").read_bytes())


class StaticHandler(_JsonErrors, tornado.web.StaticFileHandler):
    """The page's files: revalidated on every load (ETag), so an upgraded scheduler serves new ones."""

    def initialize(self, path: str, default_filename: str | None = None,  # type: ignore[override]
                   context: ApiContext | None = None) -> None:
        super().initialize(path, default_filename)
        self.context = context

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")

    @classmethod
    def get_content_type_of(cls, path: str) -> str:
        return {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".json": "application/json"}.get(Path(path).suffix, "application/octet-stream")

    def get_content_type(self) -> str:
        assert self.absolute_path is not None
        return self.get_content_type_of(self.absolute_path)


def routes(context: ApiContext) -> list[Any]:
    """The page's routes for `make_app` (one MapSource shared by every request)."""
    source = MapSource(context)
    return [
        (r"/", PageHandler, {"context": context}),
        (r"/static/(.*)", StaticHandler, {"path": str(STATIC_DIR), "context": context}),
        (r"/v1/cluster/map/?", MapHandler, {"context": context, "source": source}),
    ]
