"""The retention sweep: on the leader, delete the finished jobs `mesos_gpu.core.retention` names.

`RetentionSweeper(runtime, policy).start()` wakes every `interval` seconds; while the runtime leads it
runs one sweep step on the runtime's worker thread (`SchedulerRuntime.call_on_worker`), in order with
the scheduler's events, so the state machine and the store stay in step:

1. pick the jobs to delete (`core.retention.expired`: finished, no active member, past the age or
   count limit, oldest first, at most `policy.batch`) from the state machine's jobs, under its lock, and
   the quarantined records no recovery loads (`mesos_gpu.driver.quarantine`, marked `skip`: the state
   machine never sees them; each counts as a FAILED job finished at `quarantine.age_from`);
2. delete each record from the store with the version the runtime last wrote or listed (a fenced write:
   a deposed leader's delete is refused, NotLeader, and deletes nothing; it also frees the job's
   idempotency key);
3. forget the deleted jobs in the state machine (`SchedulerState.forget`), under the lock, and the
   deleted skip records, so lists, `GET /v1/jobs/{id}` (404), `mesos_gpu_jobs{state}` and
   `mesos_gpu_jobs_quarantined_skipped` no longer show them.

A full batch schedules the next step at once (other events run in between), so a backlog drains
without holding the worker for long. A new leader reads the store: it sees what is left, the same set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mesos_gpu.core.errors import NotLeaderError
from mesos_gpu.core.model import JobState
from mesos_gpu.core.retention import Finished, RetentionPolicy, expired
from mesos_gpu.core.state import SchedulerState
from mesos_gpu.store.base import Conflict, NotFound, StoreError

from .quarantine import SkippedRecords

if TYPE_CHECKING:
    from mesos_gpu.driver.runtime import SchedulerRuntime

__all__ = ["RetentionSweeper", "finished_jobs", "skipped_jobs"]

log = logging.getLogger(__name__)

TERMINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED)
DEFAULT_INTERVAL = 60.0
STEP_TIMEOUT = 120.0


class RetentionSweeper:
    """Applies `policy` on the leader every `interval` seconds (see the module docstring)."""

    def __init__(
        self, runtime: SchedulerRuntime, policy: RetentionPolicy, *, interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be more than 0 seconds, not {interval!r}")
        self.runtime = runtime
        self.policy = policy
        self.interval = interval
        self._clock = clock or runtime._clock
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.deleted = 0  # records deleted by this process (for metrics and tests)

    def start(self) -> RetentionSweeper:
        if self.policy.limited and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="retention-sweeper", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            if self.runtime.is_leader:
                try:
                    self.sweep()
                except NotLeaderError:
                    pass  # deposed meanwhile: the next leader sweeps
                except Exception:  # keep sweeping later whatever happens
                    log.exception("retention sweep failed")

    def sweep(self) -> int:
        """Run sweep steps on the worker until one deletes less than a full batch; how many were deleted."""
        total = 0
        while not self._stopped.is_set():
            step = self.runtime.call_on_worker(self._step).result(STEP_TIMEOUT)
            total += step
            if step < self.policy.batch:
                break
        return total

    def _step(self, still_leading: Callable[[], bool]) -> int:
        """One step, on the runtime's worker thread (no event runs meanwhile)."""
        runtime = self.runtime
        left_out = runtime._stored_failures.skipped     # the worker's, as the state machine
        with runtime._lock:
            state = runtime._state
            chosen = expired([*finished_jobs(state), *skipped_jobs(left_out)], self.policy, self._clock())
            versions = {job_id: _version(runtime._versions, left_out, job_id) for job_id in chosen}
        deleted: list[str] = []
        try:
            for job_id in chosen:
                if not still_leading():
                    break
                try:
                    runtime.store.delete(job_id, versions[job_id])
                except NotFound:
                    pass  # already gone (deleted by hand): forget it too
                except Conflict as exc:  # written by someone else: not ours to delete now
                    log.warning("retention: job %s not deleted: %s", job_id, exc)
                    continue
                deleted.append(job_id)
        except (NotLeaderError, StoreError) as exc:  # refused by the fence, or the store is away
            log.warning("retention: stopped after %d deletes: %s", len(deleted), exc)
            if isinstance(exc, NotLeaderError):
                raise
        finally:
            skipped = [job_id for job_id in deleted if left_out.get(job_id) is not None]
            with runtime._lock:
                state.forget([job_id for job_id in deleted if left_out.get(job_id) is None])
                for job_id in deleted:
                    runtime._versions.pop(job_id, None)
            left_out.forget(skipped)
            self.deleted += len(deleted)
        if deleted:
            log.info("retention: deleted %d finished job(s) (%d of them quarantined, never recovered), "
                     "oldest %s (%s)", len(deleted), len(skipped), deleted[0], self.policy.describe())
        return len(deleted) if len(deleted) == len(chosen) else 0


def skipped_jobs(left_out: SkippedRecords) -> list[Finished]:
    """What retention needs of each quarantined record no recovery loads: a FAILED job without members,
    finished when its age counts from (`quarantine.age_from`)."""
    return [Finished(entry.record.id, JobState.FAILED, entry.submitted_at, entry.since) for entry in left_out]


def _version(versions: dict[str, int], left_out: SkippedRecords, job_id: str) -> int | None:
    """The version to delete `job_id` at: the runtime's for a job of the state machine, the listed or
    written one for a skip record (None: whatever the version, as for a job the runtime never wrote)."""
    entry = left_out.get(job_id)
    return entry.record.version if entry is not None else versions.get(job_id)


def finished_jobs(state: SchedulerState) -> list[Finished]:
    """What retention needs of each finished job of `state`: O(finished jobs), not O(all jobs)."""
    jobs = state.jobs
    found = []
    for job_state in TERMINAL:
        for job_id in state.joblist.ids_in(job_state):
            job = jobs[job_id]
            found.append(Finished(job_id, job.state, job.submitted_at, job.finished_at,
                                  bool(job.active_members())))
    return found
