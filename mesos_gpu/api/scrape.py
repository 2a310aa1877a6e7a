"""`GET /metrics`: reads what the scheduler, the store and the Mesos master say, and writes it through
`mesos_gpu.api.metrics` (prometheus_client) with the app's own registry.

On the leader the figures come from the state machine's indexes: jobs by state are counts of the job
list (no job is copied) and the GPU figures come from the views of the unfinished jobs only, so a scrape
costs O(unfinished jobs), not O(every job ever kept); it also counts the stored jobs no recovery loads
(quarantined, `mesos_gpu.driver.quarantine`). A standby reads the store once. The cluster's GPUs
by agent state come from the master's `/state`, read at most every `CLUSTER_REFRESH_SECONDS` per app and
left out while the master cannot be read (a scrape never waits more than `CLUSTER_TIMEOUT_SECONDS` on it).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mesos_gpu.api import views
from mesos_gpu.api.handlers import ApiHandler
from mesos_gpu.api.mesos import MesosReader
from mesos_gpu.api.metrics import (
    CONTENT_TYPE,
    ClusterCapacity,
    cluster_capacity,
    render,
    scheduler_families,
    tenant_families,
)
from mesos_gpu.api.service import SchedulerService
from mesos_gpu.core.errors import MesosGpuError
from mesos_gpu.core.model import JobState

__all__ = ["MetricsHandler", "job_figures", "quarantined_skipped"]

UNFINISHED = tuple(state for state in JobState if not state.is_terminal)
ALL_JOBS = 1 << 62
CLUSTER_REFRESH_SECONDS = 10.0
CLUSTER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class JobFigures:
    """What `/metrics` shows of the jobs."""

    by_state: dict[str, int]
    gpus_allocated: int             # whole-GPU tasks' GPUs
    share_hosts: list[dict[str, Any]]
    tenant_gpus: dict[str, float]
    tenants: list[Any] | None = None     # the leader's `TenantSummary`s (None on a standby)
    quotas: bool = False                 # whether tenants' quotas are in force
    quarantined_skipped: int | None = None   # stored jobs no recovery loads (None on a standby)


def job_figures(service: SchedulerService) -> JobFigures:
    """The job figures (blocking: run it on the API's worker threads)."""
    if service.is_leader:
        by_state = {state.value: service.jobs_page((state,), None, 0, 0)[1] for state in JobState}
        holding, _ = service.jobs_page(UNFINISHED, None, 0, ALL_JOBS)
    else:
        every = service.jobs()
        counts = Counter(str(job["state"]) for job in every)
        by_state = {state.value: counts.get(state.value, 0) for state in JobState}
        holding = [job for job in every if job["state"] in {state.value for state in UNFINISHED}]
    return JobFigures(
        by_state=by_state,
        gpus_allocated=sum(views.gpus_allocated(job) for job in holding),
        share_hosts=views.share_hosts(holding),
        tenant_gpus=tenant_gpus(holding),
        quarantined_skipped=quarantined_skipped(service),
        **tenant_terms(service),
    )


def quarantined_skipped(service: SchedulerService) -> int | None:
    """How many stored jobs the leader's recovery left out (quarantined, marked `skip`: the runtime's
    `quarantined_skipped`, `mesos_gpu.driver.quarantine`); None on a standby (it recovers nothing)
    or for a service without them."""
    return _optional_int(service, "quarantined_skipped") if service.is_leader else None


def tenant_terms(service: SchedulerService) -> dict[str, Any]:
    """The leader's tenant summaries and whether quotas are in force (`JobFigures.tenants`, `.quotas`)."""
    summaries = getattr(service, "tenant_summaries", None)
    tenants = summaries() if callable(summaries) else None
    book = getattr(service, "tenancy", None)
    current = getattr(book, "current", None)
    return {"tenants": tenants, "quotas": bool(callable(current) and current() is not None)}


def tenant_gpus(jobs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """GPUs held per tenant: its whole-GPU tasks' GPUs plus the fractions of its active share tasks."""
    held: dict[str, float] = {}
    for job in jobs:
        tenant = str(job.get("spec", {}).get("tenant", ""))
        shares = sum(float((member.get("share") or {}).get("gpus") or 0)
                     for member in job.get("members", {}).values()
                     if member.get("state") in views.ACTIVE_TASK_STATES)
        held[tenant] = round(held.get(tenant, 0.0) + views.gpus_allocated(job) + shares, 3)
    return held


class _ClusterCache:
    """The last capacity read from the master, and when it was read (a failed read counts as one)."""

    def __init__(self) -> None:
        self.read_at = -CLUSTER_REFRESH_SECONDS
        self.capacity: ClusterCapacity | None = None

    async def get(self, mesos: MesosReader) -> ClusterCapacity | None:
        now = time.monotonic()
        if now - self.read_at >= CLUSTER_REFRESH_SECONDS:
            self.read_at = now
            try:
                state = await asyncio.wait_for(mesos.master_state(), CLUSTER_TIMEOUT_SECONDS)
                self.capacity = cluster_capacity(state)
            except (MesosGpuError, TimeoutError):
                self.capacity = None    # not known now: left out rather than shown stale
        return self.capacity


_CLUSTER: weakref.WeakKeyDictionary[MesosReader, _ClusterCache] = weakref.WeakKeyDictionary()


class MetricsHandler(ApiHandler):
    """GET: Prometheus text exposition of the scheduler's state, the cluster's GPUs, the API's traffic
    and the process."""

    leader_only = False

    async def get(self) -> None:
        service = self.service
        figures = await self.call(job_figures, service)
        cache = _CLUSTER.setdefault(self.context.mesos, _ClusterCache())
        families = scheduler_families(
            jobs_by_state=figures.by_state,
            gpus_allocated=figures.gpus_allocated,
            launches=int(getattr(service, "launches", 0)),
            leader=bool(service.is_leader),
            mesos_connected=bool(service.mesos_connected),
            zookeeper_connected=self.context.zookeeper.connected,
            offers_received=_optional_int(service, "offers_received"),
            offers_declined=_optional_int(service, "offers_declined"),
            placement_latency=getattr(service, "placement_latency", None),
            submit_batches=_optional_int(service, "submit_batches"),
            share_hosts=figures.share_hosts,
            tenant_gpus=figures.tenant_gpus,
            cluster=await cache.get(self.context.mesos),
            quarantined_skipped=figures.quarantined_skipped,
        )
        if figures.tenants is not None:
            families += tenant_families(figures.tenants, figures.quotas)
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(render(families, self.context.requests))


def _optional_int(service: object, name: str) -> int | None:
    value = getattr(service, name, None)
    return int(value) if isinstance(value, int | float) else None
