"""The runtime's reads for the API: each job's view from the published snapshot while it leads, else
from the store (a standby, or a leader that stepped down: a past term's snapshot is never read).

`JobReads` is a part of `mesos_gpu.driver.runtime.SchedulerRuntime`, which publishes `_snapshot`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mesos_gpu.core.errors import NotFoundError
from mesos_gpu.core.model import JobState
from mesos_gpu.store.base import FrameworkStore, NotFound

from . import snapshot
from .snapshot import Snapshot

JobView = dict[str, Any]


class JobReads:
    """See the module docstring."""

    store: FrameworkStore
    _snapshot: Snapshot

    def _snapshot_view(self, job_id: str) -> JobView | None:
        """The job's view from the last snapshot while it leads (a past term's is not read), else None."""
        current = self._snapshot
        return current.job(job_id) if current.leading else None

    def job(self, job_id: str) -> JobView:
        """The job's view (its record plus why it waits) from the last snapshot, else from the store."""
        view = self._snapshot_view(job_id)
        if view is not None:
            return view
        try:
            return dict(self.store.get(job_id).data, wait_reason="")
        except NotFound as exc:
            raise NotFoundError(f"no job {job_id!r}") from exc

    def jobs(self, state: JobState | None = None, tenant: str | None = None) -> list[JobView]:
        """Every job's view (of `state`, of `tenant`), by (submitted_at, id): O(all jobs), see `jobs_page`."""
        states = None if state is None else (state,)
        current = self._snapshot
        if current.leading:
            return current.all(states, tenant)
        return snapshot.matching([dict(record.data, wait_reason="") for record in self.store.list()],
                                 states, tenant)

    def jobs_page(
        self, states: Collection[JobState] | None = None, tenant: str | None = None, offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[JobView], int]:
        """`jobs()[offset : offset + limit]` for any of `states` (None: all), and how many jobs match in
        all. While leading, from the snapshot's job list: views of the page's jobs only."""
        current = self._snapshot
        if current.leading:
            return current.page(states, tenant, offset, limit)
        views = snapshot.matching([dict(record.data, wait_reason="") for record in self.store.list()],
                                  states, tenant)
        return views[offset : offset + limit], len(views)
