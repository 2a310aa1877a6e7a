"""Stored jobs the state machine fails on, and their quarantine (used by the runtime's worker).

A submit batch is stored before the state machine sees it (`JobsStored`). When the state machine raises on
it, the leader resigns so that the next leader lists the jobs from the store (`SchedulerRuntime.
_take_stored`). Should the failure be deterministic, every new leader fails on the same records when it
recovers them, resigns, and leadership bounces forever. So failures are counted per job set
(`StoredFailures`): a batch the state machine failed on, and every record of a recovery that failed with no
such batch among its records (a record that fails only at recovery). The first failure resigns (a fault of
this process gives another one a chance). When a new term's recovery fails again with a counted set among
the records (`QUARANTINE_AFTER`), the jobs really at fault are found (`blame`: a 1-minimal reduction, by
halves, of that set, bounded by `MAX_TRIALS` trial recoveries) and only they are quarantined: written back
FAILED (fenced) with a `quarantined` marker and a message saying why; a batch-mate is never marked.

Should the state machine fail on such a record even FAILED, its marker says `skip`: every later recovery,
on any process, leaves it out (logged once per term). It stays in the store until retention deletes it as
it deletes a finished job (`mesos_gpu.driver.retention`): until then GET /jobs/{id} answers its stored
record (FAILED, the message saying why); the list, made from the state machine, omits it. The leader keeps
the skip records it listed or marked (`StoredFailures.skipped`: their versions, for the sweep's fenced
deletes, and when their age counts from, `age_from`); `mesos_gpu_jobs_quarantined_skipped` counts them.

Should the reduction not single out culprits (a recovery without the whole set fails too, or the bound is
reached), nothing is written and the leader resigns as after a first failure; the whole record set is then
counted, so the next term of this process searches all records (with one culprit among n records the
search takes about 2 log2 n + 1 recoveries: `MAX_TRIALS` covers one culprit among ~30 000 records).
Counts are this process's own (another process's failures are not known here, and a restart forgets them):
with several schedulers, a set is quarantined by the first one that fails on it `QUARANTINE_AFTER` times.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mesos_gpu.store.base import JobStore, Versioned

__all__ = ["MARKER", "MAX_TRIALS", "QUARANTINE_AFTER", "Skipped", "SkippedRecords", "StoredFailures",
           "age_from", "blame", "quarantined", "recover_quarantining", "skipped"]

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
Recover = Callable[[Sequence[Versioned[JsonDict]]], None]

#: Failures on one job set before its culprits are quarantined (the first one resigns, as before).
QUARANTINE_AFTER = 2
#: Trial recoveries one term may run to find the culprits (past it: nothing written, resign).
MAX_TRIALS = 32
#: The record field (additive: older records load without it) marking a quarantined job.
MARKER = "quarantined"

QUARANTINE_MESSAGE = ("quarantined: the scheduler's state machine failed on this job {failures} times "
                      "(when it was stored or when a leader recovered it); it will not be run")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A stored record every recovery leaves out (`skipped`), as this process last listed or wrote it."""

    record: Versioned[JsonDict]
    since: float            # when its age counts from (`age_from`)
    submitted_at: float     # its submission time (`since` when the record has none)


class SkippedRecords:
    """The skip records the leader knows of: those its term's recovery listed, and those it marked since.
    Changed on the runtime's worker only (recovery, quarantine, the retention sweep); `len` from any
    thread (`mesos_gpu_jobs_quarantined_skipped`)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Skipped] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Skipped]:
        return iter(list(self._by_id.values()))

    def get(self, job_id: str) -> Skipped | None:
        return self._by_id.get(job_id)

    def listed(self, records: Iterable[Versioned[JsonDict]], now: float) -> None:
        """A new term's listing: exactly these skip `records` (a record without a time of its own keeps
        the time this process first saw it, else `now`)."""
        before, by_id = self._by_id, {}
        for record in records:
            seen = before.get(record.id)
            by_id[record.id] = _skipped(record, now if seen is None else seen.since)
        self._by_id = by_id

    def wrote(self, record: Versioned[JsonDict], now: float) -> None:
        """A record this process just marked `skip` (the version its write returned)."""
        self._by_id[record.id] = _skipped(record, now)

    def forget(self, job_ids: Iterable[str]) -> None:
        """Drop `job_ids` (deleted from the store)."""
        for job_id in job_ids:
            self._by_id.pop(job_id, None)


def _skipped(record: Versioned[JsonDict], first_seen: float) -> Skipped:
    since = age_from(record.data, first_seen)
    submitted = _time(record.data.get("submitted_at"))
    return Skipped(record, since, since if submitted is None else submitted)


def age_from(data: JsonDict, first_seen: float) -> float:
    """When retention counts a skip record's age from: its finished time (as for every finished job; the
    first quarantine sets it), else the time its marker was written, else `first_seen` (an older record
    with neither: when this process first saw it)."""
    marker = data.get(MARKER)
    for value in (data.get("finished_at"), marker.get("at") if isinstance(marker, dict) else None):
        found = _time(value)
        if found is not None:
            return found
    return first_seen


def _time(value: object) -> float | None:
    """`value` as a time (a finite number), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class StoredFailures:
    """How many times the state machine failed on each set of stored jobs (by job ids), and the skip
    records the leader knows of (`skipped`)."""

    def __init__(self, bound: int = QUARANTINE_AFTER) -> None:
        self.bound = bound
        self.counts: dict[frozenset[str], int] = {}
        self.skipped = SkippedRecords()

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
        job ids of those now at the bound (empty: resign, as after a first failure). They are suspects:
        `blame` finds those at fault."""
        out: set[str] = set()
        for key in self.suspects(present):
            if self.failed(key) >= self.bound:
                out |= key & set(present)
        return out

    def count_of(self, job_ids: Collection[str]) -> int:
        """The most failures counted on a set among `job_ids`."""
        return max((self.counts[key] for key in self.suspects(job_ids)), default=0)

    def forget(self, job_ids: Iterable[str]) -> None:
        """Drop the sets of `job_ids` (quarantined)."""
        if not self.counts:
            return      # the common case: nothing ever failed
        ids = set(job_ids)
        for key in [key for key in self.counts if not key.isdisjoint(ids)]:
            del self.counts[key]


def skipped(data: JsonDict) -> bool:
    """Whether the record was quarantined and the state machine fails on it even FAILED: never recovered."""
    marker = data.get(MARKER)
    return isinstance(marker, dict) and marker.get("skip") is True


def quarantined(data: JsonDict, failures: int, now: float, *, skip: bool = False) -> JsonDict:
    """The job record `data` marked FAILED, its message saying it was quarantined and why, with the marker
    (the state it was in; `skip`: later recoveries leave it out)."""
    out = dict(data)
    before = data.get(MARKER)
    was = before.get("was") if isinstance(before, dict) else data.get("state")
    out["state"] = "FAILED"
    out["message"] = QUARANTINE_MESSAGE.format(failures=failures)
    out["finished_at"] = data.get("finished_at") if isinstance(before, dict) else now
    out[MARKER] = {"at": now, "failures": failures, "was": was, "skip": skip}
    return out


def blame(recover: Recover, records: Sequence[Versioned[JsonDict]], suspects: Collection[str],
          max_trials: int = MAX_TRIALS) -> set[str] | None:
    """The suspects at fault for a recovery of `records` that failed: a set B of suspects such that the
    recovery without B succeeds and, for each job in B, fails with it kept in (1-minimal, found by halves:
    a half that recovers kept in is cleared at once). None when the recovery without all the suspects fails
    too (they are not alone to blame), or past `max_trials` recoveries. Assumes, as for a record the state
    machine always fails on, that keeping more records in never makes a failing recovery succeed."""
    trials = 0

    def recovers_without(blamed: set[str]) -> bool:
        nonlocal trials
        trials += 1
        try:
            recover([record for record in records if record.id not in blamed])
        except Exception:
            return False
        return True

    blamed = set(suspects)
    if not recovers_without(blamed):
        return None
    order = sorted(blamed)
    pending = [order[len(order) // 2:], order[:len(order) // 2]] if len(order) > 1 else []
    while pending:
        chunk = pending.pop()
        if not chunk:
            continue
        if trials >= max_trials:
            log.error("no culprit found among %d suspect jobs within %d trial recoveries", len(suspects),
                      max_trials)
            return None
        if recovers_without(blamed - set(chunk)):
            blamed -= set(chunk)                # recovered with the chunk kept in: not to blame
        elif len(chunk) > 1:
            pending += [chunk[len(chunk) // 2:], chunk[:len(chunk) // 2]]
    return blamed


def _leave_out_skipped(records: Sequence[Versioned[JsonDict]], known: SkippedRecords,
                       now: float) -> list[Versioned[JsonDict]]:
    """The records to recover: those not marked `skip` (those are `known` from now on, for retention)."""
    left_out = [record for record in records if skipped(record.data)]
    known.listed(left_out, now)
    if not left_out:
        return list(records)
    log.warning("not recovering quarantined jobs the state machine fails on even FAILED: %s",
                ", ".join(record.id for record in left_out))
    return [record for record in records if not skipped(record.data)]


def recover_quarantining(recover: Recover, records: Sequence[Versioned[JsonDict]], failures: StoredFailures,
                         store: JobStore, now: float) -> None:
    """`recover(records)` (a new term's recovery, on a fresh state each call), leaving out records marked
    `skipped`. Should it raise: the first time, count every record (a record failing only at recovery) and
    raise (the caller resigns); with a set that failed before now at the bound among the records, write
    back FAILED, fenced, the jobs at fault (`blame`) and recover with them FAILED or, should that still
    raise, mark them `skip` and recover without them. Raises when no culprit is found. The records
    marked `skip` (listed or marked now) are kept in `failures.skipped`, for retention."""
    records = _leave_out_skipped(records, failures.skipped, now)
    present = [record.id for record in records]
    try:
        recover(records)
    except Exception as exc:
        first = exc
    else:
        failures.counts.clear()   # every counted set left is recovered fine or no longer stored
        return
    suspects = failures.to_quarantine(present)
    at_fault = blame(recover, records, suspects) if suspects else None
    if not at_fault:
        if frozenset(present) not in failures.counts:
            failures.failed(present)    # the next failed term searches every record
        raise first
    log.error("the state machine failed again on stored jobs, at fault: %s (among %d suspects): "
              "quarantining them", ", ".join(sorted(at_fault)), len(suspects), exc_info=first)
    _quarantine(recover, records, at_fault, count=failures.count_of(at_fault), store=store, now=now,
                known=failures.skipped)
    failures.forget(at_fault)


def _quarantine(recover: Recover, records: Sequence[Versioned[JsonDict]], at_fault: set[str], *,
                count: int, store: JobStore, now: float, known: SkippedRecords) -> None:
    """Write the `at_fault` records FAILED (fenced: the listed versions) and recover with them; should
    that raise, mark them `skip` (fenced again; `known` from then on) and recover without them."""
    marked = [store.compare_and_set(record.id, quarantined(record.data, count, now), record.version)
              if record.id in at_fault else record for record in records]
    for job_id in sorted(at_fault):
        log.error("job %s quarantined (marked FAILED): the state machine failed on it %d times",
                  job_id, count)
    try:
        recover(marked)
    except Exception:
        log.exception("the state machine fails on quarantined jobs %s even FAILED: recovering without "
                      "them, and every later recovery will too", ", ".join(sorted(at_fault)))
        for record in marked:
            if record.id in at_fault:
                known.wrote(store.compare_and_set(record.id, quarantined(record.data, count, now, skip=True),
                                                  record.version), now)
        recover([record for record in records if record.id not in at_fault])
