"""The API's request handlers. Each gets its collaborators through `initialize(context)`; `ApiHandler`
is the one override point for errors: every failure becomes `{"error": {"code", "message", "details"}}`
with the status its exception names (`mesos_gpu.core.errors`), and bad input never becomes a 500.

Order of checks on every request: authentication (401), leadership (a standby answers 307 to the
leader), then the request itself (415, 413, 400, 404, ...).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import urllib.parse
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import tornado.web
from tornado.ioloop import IOLoop

from mesos_gpu.api import views
from mesos_gpu.api.auth import TOKEN_HEADER
from mesos_gpu.api.context import ApiContext
from mesos_gpu.api.logtail import read_tail
from mesos_gpu.api.mesos import MAX_LOG_READ, TaskLocation, cluster_json, locate_task
from mesos_gpu.api.metrics import route_of
from mesos_gpu.api.profiles import cluster_profile
from mesos_gpu.api.requests import (
    JSON_TYPE,
    MAX_BODY_BYTES,
    QueryReader,
    StreamedBody,
    check_json_content_type,
    check_replay,
    check_storable,
    idempotency_key_of,
    job_id_of,
    parse_json,
)
from mesos_gpu.core.errors import (
    ConflictError,
    FieldError,
    MesosGpuError,
    NoLeaderError,
    NotFoundError,
    NotLeaderError,
    UnauthorizedError,
    UnavailableError,
)
from mesos_gpu.core.joblimits import DNS_LABEL
from mesos_gpu.core.model import JobState
from mesos_gpu.core.validation import validate_job

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PAGE = 100
MAX_PAGE = 1000
DEFAULT_LOG_READ = 64 * 1024
#: The most lines `GET /v1/jobs/{id}/logs?tail=N` takes.
MAX_TAIL_LINES = 1_000_000
HEALTH_TIMEOUT = 2.0
SUBMIT_TIMEOUT = 30.0  # a submit waits this long for the scheduler to make the job durable
LOG_STREAMS = ("stdout", "stderr")

# Codes of the errors tornado raises itself (routing, methods, arguments).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


# ------------------------------------------------------------------------------------- the base class
class ApiHandler(StreamedBody):
    """Base of every API handler: JSON out, JSON errors, auth, standby redirects, worker-thread calls;
    the body is read as it arrives, at most `max_body_bytes` kept (see `StreamedBody`)."""

    #: False for endpoints every instance serves itself (health (see mesos_gpu.api.health), metrics,
    #: documents).
    leader_only = True
    #: False for endpoints that never need a token (health, the OpenAPI document, the launcher).
    authenticated = True

    def initialize(self, context: ApiContext) -> None:
        self.context = context
        self.service = context.service

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        try:
            auth = self.context.auth
            if (
                self.authenticated
                and auth.required(self.request.method or "GET")
                and not auth.accepts(self.request.headers.get("Authorization"),
                                     self.request.headers.get(TOKEN_HEADER))
            ):
                raise UnauthorizedError("a valid bearer token is required (Authorization: Bearer <token>, "
                                        f"or {TOKEN_HEADER}: <token>)")
            if self.leader_only and not self.service.is_leader:
                raise NotLeaderError(await self._leader())
            self.check_headers()
        except MesosGpuError as error:
            if not self._answer_after_body(error):
                raise
            return
        self._expect_body()

    def check_headers(self) -> None:
        """What an endpoint checks of the request's headers before its body is read (e.g. 415)."""

    async def _leader(self) -> str | None:
        try:
            health = await asyncio.wait_for(self.call(self.service.health), HEALTH_TIMEOUT)
        except (TimeoutError, MesosGpuError):
            return None
        leader = health.get("leader_identifier")
        return str(leader) if leader else None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a (blocking) service call on the API's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self.context.executor, fn, *args)

    def flush(self, include_footers: bool = False) -> asyncio.Future[None]:
        """tornado's flush, with a deadline: a client that has not taken the answer within the
        context's `write_timeout` (it stopped reading) loses its connection, so it holds no buffer,
        descriptor or handler forever."""
        future = super().flush(include_footers)
        if not future.done():
            loop = IOLoop.current()
            deadline = loop.call_later(self.context.write_timeout, self._stalled, future)
            future.add_done_callback(lambda _: loop.remove_timeout(deadline))
        return future

    def _stalled(self, future: asyncio.Future[None]) -> None:
        close = getattr(self.request.connection, "close", None)
        if not future.done() and callable(close):
            log.info("%s %s: the client took no answer for %.0f s; closing its connection",
                     self.request.method, self.request.uri, self.context.write_timeout)
            close()

    def send_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body, separators=(",", ":")))

    # -- errors -------------------------------------------------------------------------------------
    def _error_for(self, exc: BaseException | None, status_code: int) -> MesosGpuError:
        if isinstance(exc, MesosGpuError):
            return exc  # the store's errors too: each is the project error it stands for
        if isinstance(exc, tornado.web.HTTPError):
            error = MesosGpuError(exc.log_message or self._reason or "request failed")
            error.code = HTTP_CODES.get(exc.status_code, "error")
            error.http_status = exc.status_code
            return error
        error = MesosGpuError("internal error: the scheduler failed to answer; see its log")
        error.code = "internal"
        error.http_status = status_code if status_code >= 500 else 500
        return error

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        exc = exc_info[1] if exc_info else None
        if exc is None:
            error = MesosGpuError(self._reason or "request failed")
            error.code, error.http_status = HTTP_CODES.get(status_code, "error"), status_code
        else:
            error = self._error_for(exc, status_code)
        status = error.http_status
        if isinstance(error, NotLeaderError):
            leader = error.leader_url
            if leader and leader != self.service.identifier:
                self.set_header("Location", f"{self.request.protocol}://{leader}{self.request.uri}")
            else:
                error = NoLeaderError("this scheduler is a standby and no leader is known yet; retry soon")
                status = error.http_status
        if status == 503:
            self.set_header("Retry-After", "1")
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="mesos-gpu"')
        if status == 405:
            allowed = ", ".join(self.allowed_methods())
            self.set_header("Allow", allowed)
            error = MesosGpuError(
                f"{self.request.method} is not allowed on {self.request.path} (allowed: {allowed})"
            )
            error.code = "method_not_allowed"
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.set_status(status)
        self.finish(json.dumps(error.to_dict(), separators=(",", ":")))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """An outage (503: the job store, the Mesos master) is logged with its traceback; any other
        deliberate error is an answer, not a failure (the access log shows it); anything else is a
        bug, logged by tornado with its traceback (the client gets an "internal" 500, no traceback)."""
        if isinstance(value, UnavailableError):
            method, uri = self.request.method, self.request.uri
            log.warning("%s %s answered 503: %s", method, uri, value, exc_info=value)
            return
        if isinstance(value, MesosGpuError | tornado.web.HTTPError):
            return
        super().log_exception(typ, value, tb)

    def allowed_methods(self) -> list[str]:
        return [m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if _defines(type(self), m)]

    def on_finish(self) -> None:
        self.context.requests.record(
            self.request.method or "", self.get_status(), self.request.request_time(), route_of(self)
        )


def _defines(cls: type, method: str) -> bool:
    """Whether `cls` (below ApiHandler) implements `method` itself."""
    for klass in cls.__mro__:
        if klass in (ApiHandler, tornado.web.RequestHandler):
            return False
        if method.lower() in klass.__dict__:
            return True
    return False


# ------------------------------------------------------------------------------------------ /v1/jobs
class JobsHandler(ApiHandler):
    """GET: the jobs, filtered and paginated. POST: submit a job (201, or 200 for an idempotent retry)."""

    def check_headers(self) -> None:
        if self.request.method == "POST":
            check_json_content_type(self.request.headers.get("Content-Type"))

    def too_large_message(self) -> str:
        return f"the job document is larger than {MAX_BODY_BYTES} bytes"

    async def get(self) -> None:
        query = QueryReader(self)
        states = self._states(query)
        tenant = query.matching("tenant", DNS_LABEL, "must be a tenant name (a DNS label)")
        limit = query.integer("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        offset = query.integer("offset", 0, 0, 10**9)
        query.check()
        wanted = None if states is None else [JobState(name) for name in states]
        page, total = await self.call(self.service.jobs_page, wanted, tenant, offset, limit)
        following = None
        if offset + limit < total:
            args = {
                "state": ",".join(states or ()),
                "tenant": tenant or "",
                "limit": limit,
                "offset": offset + limit,
            }
            following = "/v1/jobs?" + urllib.parse.urlencode({k: v for k, v in args.items() if v != ""})
        self.send_json(
            {
                "jobs": [views.job_summary(job) for job in page],
                "total": total,
                "offset": offset,
                "limit": limit,
                "next": following,
            }
        )

    @staticmethod
    def _states(query: QueryReader) -> list[str] | None:
        raw = query.text("state")
        if raw is None:
            return None
        names = raw.split(",")
        allowed = [s.value for s in JobState]
        if any(name not in allowed for name in names):
            message = f"must be one or more of {', '.join(allowed)}, separated by commas"
            query.errors.append(FieldError("/query/state", message))
            return None
        return names

    async def post(self) -> None:
        body = self.body()
        key = idempotency_key_of(self.request.headers.get("Idempotency-Key"))
        spec = validate_job(parse_json(body), self.context.default_containerizer)
        check_storable(spec, len(body))
        if key is None:
            view, created = await self._submit_nowait(spec)
        else:
            view, created = await self.call(self.service.submit, spec, key)
            if not created:
                check_replay(key, spec, view)
        location = views.job_path(view["id"])
        self.set_header("Location", location)
        if not created:
            self.set_header("Idempotent-Replayed", "true")
        self.send_json(views.job_json(view), 201 if created else 200)

    async def _submit_nowait(self, spec: Any) -> tuple[dict[str, Any], bool]:
        """A submit without a key, awaited on the IOLoop (no worker thread: the scheduler groups
        concurrent submits into one store write)."""
        try:
            pending = self.service.submit_nowait(spec)
        except NotLeaderError:
            raise NotLeaderError(await self._leader()) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(pending), SUBMIT_TIMEOUT)
        except TimeoutError:
            raise UnavailableError(
                f"the scheduler did not take the job within {SUBMIT_TIMEOUT:.0f} s; it may still run: "
                "list the jobs before submitting it again"
            ) from None


class JobHandler(ApiHandler):
    """GET: one job in full. DELETE: kill it (202 with the job)."""

    async def get(self, job_id: str) -> None:
        view = await self.call(self.service.job, job_id_of(job_id))
        self.send_json(views.job_json(view))

    async def delete(self, job_id: str) -> None:
        view = await self.call(self.service.kill, job_id_of(job_id))
        self.send_json(views.job_json(view), 202)


class JobTasksHandler(ApiHandler):
    """GET: the job's tasks (members): Mesos state, agent, GPUs, isolation, exit status."""

    async def get(self, job_id: str) -> None:
        view = await self.call(self.service.job, job_id_of(job_id))
        self.send_json({"job_id": view["id"], "state": view["state"], "tasks": views.tasks_json(view)})


class JobLogsHandler(ApiHandler):
    """GET: a chunk of a task's stdout or stderr, read from its sandbox through the agent; `attempt=N`
    reads launch attempt N (0 first) of the task, located by its task id (`<name>.<N>`) in the master."""

    async def get(self, job_id: str) -> None:
        query = QueryReader(self)
        wanted = query.nonempty("task")
        stream = query.choice("stream", LOG_STREAMS, "stdout") or "stdout"
        offset = query.integer("offset", 0, 0, 2**53)
        length = query.integer("length", DEFAULT_LOG_READ, 1, MAX_LOG_READ)
        attempt = query.integer("attempt", -1, 0, 2**31)
        tail = query.integer("tail", -1, 0, MAX_TAIL_LINES)
        query.check()
        view = await self.call(self.service.job, job_id_of(job_id))
        name, member = self._member(view, wanted)
        task_id, agent_id = member.get("task_id"), member.get("agent_id")
        if not task_id or not agent_id:
            why = view.get("wait_reason") or view.get("message") or "it waits for resources"
            raise ConflictError(f"task {name} of job {view['id']} has not been launched yet: {why}")
        current = int(member.get("attempt", -1))
        if attempt > current:
            had = f"has had attempts 0 to {current}, not {attempt}"
            raise NotFoundError(f"task {name} of job {view['id']} {had}")
        if 0 <= attempt < current:  # an earlier attempt: the master's completed tasks say where it ran
            task_id, agent_id = f"{str(task_id).rpartition('.')[0]}.{attempt}", None
        location = await self._locate(str(task_id), None if agent_id is None else str(agent_id))
        extra: dict[str, Any] = {}
        if tail >= 0:   # the last `tail` lines, at most `length` bytes of them, read backwards from the end
            last = await read_tail(functools.partial(self.context.mesos.read_sandbox, location, stream),
                                   tail, length)
            data, start, extra = last.data, last.offset, {"tail": tail, "truncated": last.truncated}
        else:
            reply = await self.context.mesos.read_sandbox(location, stream, offset, length)
            data, start = str(reply["data"]), int(reply.get("offset", offset))
        self.send_json(
            {
                "job_id": view["id"],
                "task": name,
                "task_id": task_id,
                "attempt": current if agent_id is not None else attempt,
                "agent_id": location.agent_id,
                "stream": stream,
                "offset": start,
                "data": data,
                "next_offset": start + len(data.encode("utf-8")),
                "task_state": member.get("state") if agent_id is not None else None,
                "job_state": view["state"],
                **extra,
            }
        )

    @staticmethod
    def _member(view: dict[str, Any], wanted: str | None) -> tuple[str, dict[str, Any]]:
        members = view.get("members", {})
        names = views.member_names(view)
        if wanted is None:
            return names[0], members[names[0]]
        if wanted in members:
            return wanted, members[wanted]
        for name in names:
            if members[name].get("task_id") == wanted:
                return name, members[name]
        raise NotFoundError(f"job {view['id']} has no task {wanted!r} (its tasks: {', '.join(names)})")

    async def _locate(self, task_id: str, agent_id: str | None) -> TaskLocation:
        state = await self.context.mesos.master_state()
        try:
            return locate_task(state, task_id, agent_id, None)
        except NotFoundError:
            health = await self.call(self.service.health)
            return locate_task(state, task_id, agent_id, health.get("framework_id"))


# ----------------------------------------------------------------------------------------- cluster
class ClusterHandler(ApiHandler):
    """GET: agents, GPUs per agent (total / used / free, model), from the master's /state; the share
    hosts, from the jobs' active share members; the GPU profile in force and the next (`api.profiles`)."""

    async def get(self) -> None:
        state = await self.context.mesos.master_state()
        jobs = await self.call(self.service.jobs)
        profile = cluster_profile(self.service)     # only when profiles are configured
        self.send_json({**cluster_json(state, self.context.mesos.master_base()),
                        "share_hosts": views.share_hosts(jobs), **({"profile": profile} if profile else {})})


# ------------------------------------------------------------------------------------------ documents
class OpenApiHandler(ApiHandler):
    """GET: the OpenAPI 3.1 document (the source of truth for every route and shape)."""

    leader_only = False
    authenticated = False

    def get(self) -> None:
        self.finish(self.context.openapi)


class LauncherHandler(ApiHandler):
    """GET/HEAD: the launcher bundle that TF tasks fetch as a Mesos URI (no token: the fetcher has none)."""

    leader_only = False
    authenticated = False

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/octet-stream")

    def get(self) -> None:
        self.set_header("Content-Disposition", 'attachment; filename="launcher.pyz"')
        self.finish(self.context.launcher_bundle)

    def head(self) -> None:
        self.set_header("ETag", self.context.launcher_etag)
        self.set_header("Content-Length", str(len(self.context.launcher_bundle)))
        self.finish()

    def compute_etag(self) -> str | None:
        return self.context.launcher_etag


class NotFoundHandler(ApiHandler):
    """Every path no route matches: a JSON 404 (whatever the method)."""

    leader_only = False
    authenticated = False

    def check_headers(self) -> None:
        raise NotFoundError(f"no such resource: {self.request.path}")
