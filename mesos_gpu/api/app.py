"""The API's tornado application: `make_app(service, settings=..., launcher_bundle=..., master_url=...)`.

Routes (the OpenAPI document `openapi.json` beside this module is the source of truth)::

    POST   /v1/jobs                 submit (201 + Location; Idempotency-Key makes a retry return 200)
    GET    /v1/jobs                 list (state, tenant, limit, offset)
    GET    /v1/jobs/{id}            one job: spec, state, tasks, wait reason, TF cluster
    DELETE /v1/jobs/{id}            kill (202)
    GET    /v1/jobs/{id}/tasks      its tasks
    GET    /v1/jobs/{id}/logs       a chunk of a task's stdout/stderr (through the agent's /files/read)
    GET    /v1/cluster              agents and GPUs (from the master's /state)
    GET    /v1/health               200 while the process runs (leader or standby); kept for compatibility
    GET    /v1/health/live          liveness: 200 while the process and its API loop answer
    GET    /v1/health/ready         readiness: 200 when this instance can serve its role, else 503
    GET    /metrics                 Prometheus text
    GET    /openapi.json            the OpenAPI 3.1 document
    GET    /v1/launcher.pyz         the TF launcher bundle tasks fetch
    POST   /v1/uploads              keep a gzipped tar (`mesos-gpu run`'s directory), answer its URI
    GET    /v1/uploads              the upload limit
    GET    /v1/uploads/{sha}.tar.gz an upload, as tasks fetch it (no token, like the launcher)
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import tornado.web

from mesos_gpu.api.auth import TokenAuthenticator
from mesos_gpu.api.context import ApiContext, ZooKeeperConnection
from mesos_gpu.api.handlers import (
    ClusterHandler,
    JobHandler,
    JobLogsHandler,
    JobsHandler,
    JobTasksHandler,
    LauncherHandler,
    NotFoundHandler,
    OpenApiHandler,
)
from mesos_gpu.api.health import HealthHandler, LivenessHandler, ReadinessHandler
from mesos_gpu.api.mesos import MesosReader
from mesos_gpu.api.scrape import MetricsHandler
from mesos_gpu.api.service import SchedulerService
from mesos_gpu.api.tenants import routes as tenant_routes
from mesos_gpu.api.uploads import UploadStore
from mesos_gpu.api.uploads import routes as upload_routes
from mesos_gpu.api.web import routes as web_routes
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.model import Containerizer
from mesos_gpu.core.wire import MasterUrl

log = logging.getLogger(__name__)

#: Worker threads for blocking service calls (store reads/writes); 32 matches the benchmark's clients.
WORKER_THREADS = 32

JOB_ID = r"([^/]+)"


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, parsed."""
    parsed: dict[str, Any] = json.loads(openapi_bytes())
    return parsed


def openapi_bytes() -> bytes:
    return resources.files("mesos_gpu.api").joinpath("openapi.json").read_bytes()


def make_app(
    service: SchedulerService,
    *,
    settings: SchedulerSettings,
    launcher_bundle: bytes,
    master_url: MasterUrl,
    executor: Executor | None = None,
    mesos_timeout: float = 5.0,
    uploads: UploadStore | None = None,
    **tornado_settings: Any,
) -> tornado.web.Application:
    """The API application for `service` (a `SchedulerRuntime`).

    `settings`: the API tokens (`api_tokens`, `api_tokens_file`) and whether reads need them
    (`api_auth_reads`). `launcher_bundle`: the bytes served at `/v1/launcher.pyz`. `master_url`: the
    Mesos master's HTTP address ("host:port" or "http://host:port"), or a callable returning it (None
    while unknown), read for `/v1/cluster` and the logs. `executor`: where blocking service calls run
    (default: a pool of WORKER_THREADS threads; `app.settings["api_executor"]`, shut it down with
    `close_app`). `uploads`: where `POST /v1/uploads` keeps archives and how their URIs start (default:
    `settings.upload_dir` or a temporary directory, `settings.upload_max_mb`, URIs from the address the
    client used; `close_app` removes a temporary one). The ZooKeeper connection shown by the health
    endpoints and `/metrics` (readiness needs it connected) comes from
    `service.store.add_connection_listener` when the service has a store. Other keyword arguments go
    to `tornado.web.Application` (e.g. `debug`).
    """
    auth = TokenAuthenticator(settings.api_tokens, settings.api_tokens_file, settings.api_auth_reads)
    context = ApiContext(
        service=service,
        auth=auth,
        mesos=MesosReader(master_url, timeout=mesos_timeout),
        executor=executor or ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="mesos-gpu-api"),
        launcher_bundle=launcher_bundle,
        openapi=openapi_bytes(),
        default_containerizer=Containerizer(settings.default_containerizer),
    )
    _track_store_connection(service, context.zookeeper)
    if uploads is None:
        directory = Path(settings.upload_dir) if settings.upload_dir else None
        uploads = UploadStore(settings.upload_max_bytes, directory)
    args = {"context": context}
    routes: list[Any] = [
        (r"/v1/jobs/?", JobsHandler, args),
        (rf"/v1/jobs/{JOB_ID}/tasks/?", JobTasksHandler, args),
        (rf"/v1/jobs/{JOB_ID}/logs/?", JobLogsHandler, args),
        (rf"/v1/jobs/{JOB_ID}/?", JobHandler, args),
        (r"/v1/cluster/?", ClusterHandler, args),
        (r"/v1/health/?", HealthHandler, args),
        (r"/v1/health/live/?", LivenessHandler, args),
        (r"/v1/health/ready/?", ReadinessHandler, args),
        (r"/metrics", MetricsHandler, args),
        (r"/openapi\.json", OpenApiHandler, args),
        (r"/v1/launcher\.pyz", LauncherHandler, args),
        *upload_routes(context, uploads),
        *tenant_routes(context, settings),
        *web_routes(context),
    ]
    app = tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=args,
        compress_response=False,
        api_context=context,
        api_executor=context.executor,
        api_uploads=uploads,
        **tornado_settings,
    )
    return app


def close_app(app: tornado.web.Application) -> None:
    """Release what `make_app` started (its worker threads, a temporary uploads directory)."""
    executor = app.settings.get("api_executor")
    if isinstance(executor, ThreadPoolExecutor):
        executor.shutdown(wait=False, cancel_futures=True)
    uploads = app.settings.get("api_uploads")
    if isinstance(uploads, UploadStore):
        uploads.close()


def _track_store_connection(service: object, tracker: ZooKeeperConnection) -> None:
    store = getattr(service, "store", None)
    add_listener = getattr(store, "add_connection_listener", None)
    if callable(add_listener):
        add_listener(tracker.update)
