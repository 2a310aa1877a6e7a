"""Stored jobs the state machine fails on, and their quarantine (used by the runtime's worker).

A submit batch is stored before the state machine sees it (`JobsStored`). When the state machine raises on
it, the leader resigns so that the next leader lists the jobs from the store (`SchedulerRuntime.
_take_stored`). Should the failure be deterministic, every new leader fails on the same records when it
recovers them, resigns, and leadership bounces forever. So the failures are counted per job set
(`StoredFailures`); when a new term's recovery fails and a set that failed before is among the records,
its count grows, and once it reaches the bound (`QUARANTINE_AFTER`), if the recovery succeeds without them
(they are to blame), those records are quarantined instead of resigning again: written back FAILED with a
message saying why (`quarantined`), and the recovery is run again (without them, should it still fail
with them FAILED). The first failure still resigns, and so does a recovery that fails without them.

Only what this process saw is counted (another process's failures are not known here): with several
schedulers, a set is quarantined by the first one that fails on it `QUARANTINE_AFTER` times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from mesos_gpu.store.base import JobStore, Versioned

__all__ = ["QUARANTINE_AFTER", "StoredFailures", "quarantined", "recover_quarantining"]

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]

#: Failures on one job set before its records are quarantined (the first one resigns, as before).
QUARANTINE_AFTER = 2

QUARANTINE_MESSAGE = ("quarantined: the scheduler's state machine failed on this job {failures} times "
                      "(when it was stored and when a leader recovered it); it will not be run")


class StoredFailures:
    """How many times the state machine failed on each set of stored jobs (by job ids)."""

    def __init__(self, bound: int = QUARANTINE_AFTER) -> None:
        self.bound = bound
        self.counts: dict[frozenset[str], int] = {}

    def failed(self, job_ids: Iterable[str]) -> int:
        """Count one more failure on `job_ids`; the failures counted for that set."""
        key = frozenset(job_ids)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def suspects(self, present: Collection[str]) -> list[frozenset[str]]:
        """The sets that failed before with a job among `present` (the records a recovery failed on)."""
        return [key for key in self.counts if not key.isdisjoint(present)]

    def to_quarantine(self, present: Collection[str]) -> set[str]:
        """Count one more failure on each suspect set among `present` (a recovery failed with them); the
        job ids of those now at the bound (empty: resign, as after a first failure)."""
        out: set[str] = set()
        for key in self.suspects(present):
            if self.failed(key) >= self.bound:
                out |= key & set(present)
        return out

    def forget(self, job_ids: Iterable[str]) -> None:
        """Drop the sets of `job_ids` (quarantined, or recovered fine)."""
        if not self.counts:
            return      # the common case: nothing ever failed (a term recovers every record)
        ids = set(job_ids)
        for key in [key for key in self.counts if not key.isdisjoint(ids)]:
            del self.counts[key]


def quarantined(data: dict[str, Any], failures: int, now: float) -> dict[str, Any]:
    """The job record `data` marked FAILED, its message saying it was quarantined and why."""
    out = dict(data)
    out["state"] = "FAILED"
    out["message"] = QUARANTINE_MESSAGE.format(failures=failures)
    out["finished_at"] = now
    return out


def recover_quarantining(recover: Callable[[Sequence[Versioned[JsonDict]]], None],
                         records: Sequence[Versioned[JsonDict]], failures: StoredFailures, store: JobStore,
                         now: float) -> None:
    """`recover(records)` (a new term's recovery, on a fresh state each call). Should it raise with a job
    set that failed before among `records`, count it; at the bound, write those records back FAILED
    (`quarantined`, fenced like every write of ours) once a recovery without them succeeded (they are to
    blame), log it, and recover again with them FAILED, or, should that still raise, without them. Any
    other failure raises (the caller resigns)."""
    try:
        recover(records)
    except Exception:
        ids = failures.to_quarantine([record.id for record in records])
        if not ids:
            raise
        log.exception("the state machine failed again on stored jobs %s: quarantining them",
                      ", ".join(sorted(ids)))
    else:
        failures.forget(record.id for record in records)
        return
    count = max(failures.counts[key] for key in failures.suspects(ids))
    without = [record for record in records if record.id not in ids]
    recover(without)    # raises when they are not (alone) to blame: nothing is quarantined, resign
    marked = [store.compare_and_set(record.id, quarantined(record.data, count, now), record.version)
              if record.id in ids else record for record in records]
    failures.forget(ids)
    for job_id in sorted(ids):
        log.error("job %s quarantined (marked FAILED): the state machine failed on it %d times",
                  job_id, count)
    try:
        recover(marked)
    except Exception:
        log.exception("the state machine fails on quarantined jobs %s even FAILED: recovering without them",
                      ", ".join(sorted(ids)))
        recover(without)
