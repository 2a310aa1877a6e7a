"""What the API needs from the scheduler process (`SchedulerRuntime` provides it): the `SchedulerService`
protocol, plus the optional counters `/metrics` reads when the service has them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from mesos_gpu.core.model import JobSpec, JobState

JobView = dict[str, Any]
"""A job as the runtime shows it: `JobRecord.to_dict()` plus "wait_reason"."""


class SchedulerService(Protocol):
    """The scheduler's service object. Every method but `submit_nowait` may block (store I/O): the API
    calls them from its worker threads, never from the IOLoop. Write calls raise `NotLeaderError` on a
    standby. On the leader, `job`, `jobs`, `jobs_page` and `health` read the snapshot the runtime publishes
    after each event (`mesos_gpu.driver.snapshot`): they never wait for an offer cycle."""

    identifier: str  # this process's API address, "host:port" (what the election publishes)
    launches: int  # tasks handed to Mesos by this process

    @property
    def is_leader(self) -> bool: ...

    @property
    def mesos_connected(self) -> bool: ...

    def submit(self, spec: JobSpec, idempotency_key: str | None = None) -> tuple[JobView, bool]: ...

    def submit_nowait(
        self, spec: JobSpec, idempotency_key: str | None = None
    ) -> Future[tuple[JobView, bool]]:
        """`submit` without blocking (the API calls it on its IOLoop): raises NotLeaderError at once on a
        standby, else the future completes as `submit` returns. With or without a key, every submit goes
        through the same group commit."""
        ...

    def kill(self, job_id: str) -> JobView: ...

    def job(self, job_id: str) -> JobView: ...

    def jobs(self, state: JobState | None = None, tenant: str | None = None) -> list[JobView]:
        """Every job (of `state`, of `tenant`), by (submitted_at, id). O(all jobs): lists use `jobs_page`."""
        ...

    def jobs_page(
        self, states: Collection[JobState] | None = None, tenant: str | None = None, offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[JobView], int]:
        """`jobs()[offset : offset + limit]` for any of `states` (None: all) of `tenant`, and how many
        jobs match in all; costs O(the page), not O(all jobs), on the leader."""
        ...

    def health(self) -> dict[str, Any]: ...


class HistogramLike(Protocol):
    """A cumulative histogram as Prometheus exposes one (`mesos_gpu.api.metrics.Histogram` is one)."""

    def snapshot(self) -> tuple[Sequence[tuple[float, int]], float, int]:
        """((upper bound, cumulative count) for each finite bucket, sum, count)."""
        ...
