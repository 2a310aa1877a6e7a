"""`/v1/tenants`: the tenants' GPU quotas, what each uses, borrows and has waiting; changed at run time.

    GET    /v1/tenants   where the terms come from, the terms, and per tenant: quota, limit, may_borrow,
                         weight, GPUs used and borrowed, jobs and GPUs waiting (leader only, as /v1/jobs);
                         the GPU profile in force (`profile`: current and next, and the tenants' terms it
                         overrides, which the tenants' rows then show, `profile_terms: true`; null
                         without profiles)
    PUT    /v1/tenants   replace the terms (a tenants document, `mesos_gpu.core.tenancy`): validated
                         (400 with the JSON path of each problem), stored in ZooKeeper (a fenced write:
                         a new leader applies it too), in force from the next offer cycle
    DELETE /v1/tenants   forget the stored terms: the file's (`MESOS_GPU_TENANTS_FILE`) apply, or none

Writes need a bearer token when the API has tokens (as every write; there is no separate admin token).
`routes(context, settings)` uses the scheduler runtime's `TenantsBook` (`service.tenancy`, whose state
machine applies it); for a service built without one it builds the book and hands it over.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mesos_gpu.api.context import ApiContext
from mesos_gpu.api.handlers import ApiHandler
from mesos_gpu.api.requests import check_json_content_type, parse_json
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.errors import MesosGpuError
from mesos_gpu.core.profilesapply import active_profile
from mesos_gpu.core.tenancyadmit import TenantSummary
from mesos_gpu.store.settings import TenantsBook, read_tenants_file

__all__ = ["TenantsHandler", "routes", "tenants_json"]

log = logging.getLogger(__name__)

#: What the errors of `PUT /v1/tenants` call its body.
TENANTS_DOCUMENT = "tenants document"

#: The largest tenants document accepted (the record must fit one ZooKeeper node).
MAX_TENANTS_BODY = 512 * 1024


def routes(context: ApiContext, settings: SchedulerSettings) -> list[Any]:
    """The `/v1/tenants` route; reads `settings.tenants_file` (ValueError naming the file and each
    problem when it is not a valid tenants document) and gives the service its `TenantsBook`."""
    service = context.service
    store = getattr(service, "store", None)
    fallback = read_tenants_file(settings.tenants_file) if settings.tenants_file else None
    given = getattr(service, "tenancy", None)   # the book scheduler_main gave the runtime, when it has one
    book = given if given is not None else TenantsBook(
        store if hasattr(store, "read_setting") else None, fallback, settings.tenants_file)
    try:
        book.reload()       # a leader elected before the API was made applies the stored terms too
    except MesosGpuError as exc:
        log.warning("the stored tenants could not be read now (%s); a new leader reads them again", exc)
    if given is None and hasattr(service, "tenancy"):
        service.tenancy = book   # a service built without a book gets this one (a given one is kept)
    return [(r"/v1/tenants/?", TenantsHandler, {"context": context, "book": book})]


def tenants_json(book: TenantsBook, summaries: list[TenantSummary] | None,
                 now: float | None = None) -> dict[str, Any]:
    """The body of every `/v1/tenants` answer. Without quotas, each tenant shows its usage only (its
    quota, limit and borrowed GPUs are null). `profile`: the GPU profile in force at `now` (default:
    the clock's), see `profilesapply.active_profile`."""
    described = book.describe()
    config = described.pop("config")
    current = book.current()
    profile = active_profile(getattr(current, "profiles", None), time.time() if now is None else now)
    overridden = profile["tenants"] if profile is not None else {}
    tenants = []
    for summary in summaries or ():
        item = summary.to_dict()
        if config is None:
            item.update(quota=None, limit=None, borrowed_gpus=None, listed=False)
        item["profile_terms"] = summary.name in overridden
        tenants.append(item)
    return {**described, "quotas": config is not None, "profile": profile,
            "default": None if config is None else config["default"],
            "unassigned_gpus": None if config is None else config["unassigned_gpus"],
            "tenants": tenants}


class TenantsHandler(ApiHandler):
    """GET the tenants; PUT a new tenants document; DELETE the stored one."""

    max_body_bytes = MAX_TENANTS_BODY

    def initialize(self, context: ApiContext, book: TenantsBook | None = None) -> None:
        super().initialize(context)
        assert book is not None
        self.book = book

    def check_headers(self) -> None:
        if self.request.method == "PUT":
            check_json_content_type(self.request.headers.get("Content-Type"), TENANTS_DOCUMENT)

    def too_large_message(self) -> str:
        return f"the tenants document is larger than {MAX_TENANTS_BODY} bytes"

    async def get(self) -> None:
        self.send_json(await self.call(self._view))

    async def put(self) -> None:
        document = parse_json(self.body(), TENANTS_DOCUMENT)
        await self.call(self.book.replace, document)
        self.send_json(await self.call(self._view))

    async def delete(self) -> None:
        await self.call(self.book.reset)
        self.send_json(await self.call(self._view))

    def _view(self) -> dict[str, Any]:
        summaries = getattr(self.service, "tenant_summaries", None)
        return tenants_json(self.book, summaries() if callable(summaries) else None)
