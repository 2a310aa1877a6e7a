"""The one submit path: every new job, with or without an idempotency key, goes through one group commit.

`SubmitPath.submit(spec, key)` queues (job id, record, spec, key) and returns a future at once. The group
commit's writer (`mesos_gpu.driver.groupcommit`) takes what queued during the last write and stores it:
the jobs without a key in one `create_many` (one ZooKeeper transaction), each job with a key in its own
`submit` transaction (the key and the job are written atomically: the store has no batch of those). The
jobs created are then handed to the runtime's worker in ONE `JobsStored` message (their versions and one
`JobsSubmitted` event), and each caller is answered with its job's view once the state machine has it.

Every write is fenced (the store's `fence`): a deposed leader's write fails with NotLeaderError and
stores nothing. A job stored before leadership ended is answered as created all the same: it is durable,
and whoever leads next lists it (a 503 would make a client without a key submit a second job). So nothing
after the store writes may fail the whole batch: a failed hand-over, a failed view (answered from the
record written) or a failed leader lookup (the refused jobs get "not the leader", no address: 503).

Answering never reads the store for a job this batch created (its view comes from the snapshot while
leading, else from the record written): while ZooKeeper is away each read would wait up to its command
deadline, one job after another, past the API's `SUBMIT_TIMEOUT`. Only a replayed key whose job the
leading snapshot lacks is read back.

How long a batch takes: each store write is over within ZooKeeper's command deadline (`COMMAND_DEADLINE_S`,
15 s), its retries, its last attempt and the look-up after a refused retry included (they share it:
`mesos_gpu.store.zkrecover`). A batch of jobs without a key (one `create_many`, one transaction while
their records fit one ZooKeeper packet) whose jobs are created is answered within that plus the
hand-over's `HAND_OVER_TIMEOUT` (10 s): 25 s, below `SUBMIT_TIMEOUT` (30 s). Refused jobs instead ask the
election who leads (a read, up to the command deadline again: 30 s at worst), and each keyed job is its
own store call, one after another: while ZooKeeper is slow or away those may pass `SUBMIT_TIMEOUT`, and
the API answers 503 (the job may be stored: list the jobs before submitting it again).

A job's id is its name and 32 random bits (`new_job_id`), so two jobs of one name may draw the same id:
the store refuses the second (Conflict), and that job is written again under a fresh id, up to
`ID_ATTEMPTS` draws in all (then 503: nothing stored, safe to submit again). A client never sees a 409
for an id it did not choose, and the job holding the id is never touched.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from mesos_gpu.core.errors import NotFoundError, NotLeaderError, UnavailableError
from mesos_gpu.core.model import JobSpec
from mesos_gpu.core.state import JobsSubmitted, JobSubmitted, new_job_record
from mesos_gpu.store.base import Conflict, FrameworkStore, JsonDict, VersionConflict, Versioned

from .control import JobsStored
from .groupcommit import GroupCommit, GroupCommitClosedError

log = logging.getLogger(__name__)

SUBMIT_TIMEOUT = 30.0  # how long a submit waits for the state machine to take its job
HAND_OVER_TIMEOUT = 10.0  # how long a batch waits for the state machine before answering (stored: created)
ID_ATTEMPTS = 4  # ids drawn for one job whose id another job holds (32 random bits: a second draw is rare)

JobView = dict[str, Any]
Answer = tuple[JobView, bool]


def new_job_id(name: str) -> str:
    """A new job's id: `name`, a dash and 32 random bits in hex (another job of the name may hold it)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class _Item:
    job_id: str
    record: JsonDict
    spec: JobSpec
    key: str | None


class SubmitPath:
    """See the module docstring. `may_act()`: whether this process leads now; `leader()`: who leads (asks
    the election); `hand_over(message)`: posts a `JobsStored` to the worker, its future completing once
    the state machine has the jobs; `known(job_id)`: the job's view from the leading snapshot, None when
    it has none (never reads the store); `view(job_id)`: the job's view (snapshot, else store), asked for
    replayed keys only."""

    def __init__(
        self, store: FrameworkStore, *, may_act: Callable[[], bool], leader: Callable[[], str | None],
        hand_over: Callable[[JobsStored], Future[Any]], known: Callable[[str], JobView | None],
        view: Callable[[str], JobView], clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._may_act = may_act
        self._leader = leader
        self._hand_over = hand_over
        self._known = known
        self._view = view
        self._clock = clock
        self._commit: GroupCommit[_Item, Answer] | None = None
        self.batches = 0  # store writes that carried submitted jobs (one group commit each)

    def start(self) -> None:
        self._commit = GroupCommit(self._write, name="scheduler-submits")

    def close(self) -> None:
        commit, self._commit = self._commit, None
        if commit is not None:
            commit.close()

    def submit(self, spec: JobSpec, key: str | None = None) -> Future[Answer]:
        """Queue a new job; the future completes with (its view, created now) once it is durable and the
        state machine has it (created False: an earlier submit with the same key made it), or with the
        store's error. NotLeaderError(None) at once on a standby or once stopped."""
        commit = self._commit
        if commit is None or not self._may_act():
            raise NotLeaderError(None)  # the API asks the election who leads, off the IOLoop
        job_id = new_job_id(spec.name)
        try:
            return commit.submit(_Item(job_id, new_job_record(job_id, spec, self._clock()), spec, key))
        except GroupCommitClosedError:
            raise NotLeaderError(None) from None  # stopping: this process leads no more

    def _write(self, batch: list[_Item]) -> list[Answer | Exception]:
        """One batch: the store writes, one hand-over of every job created, then each caller's answer."""
        if not self._may_act():
            raise NotLeaderError(self._leader_or_none())
        self.batches += 1
        stored = self._store_batch(batch)
        created = [(result, item) for result, item in zip(stored, batch, strict=True)
                   if isinstance(result, tuple) and result[1]]
        if created:
            now = self._clock()
            each = tuple(JobSubmitted(record.data, now, item.spec) for (record, _), item in created)
            versions = tuple((record.id, record.version) for (record, _), _ in created)
            try:
                self._hand_over(JobsStored(versions, JobsSubmitted(each, now))).result(HAND_OVER_TIMEOUT)
            except NotLeaderError:
                log.warning("leadership ended after the submitted jobs were stored: answered as created")
            except Exception:   # stored all the same: answered as created, the next leader lists them
                log.exception("the state machine did not take %d stored jobs; answered as created", len(each))
        refused = any(isinstance(result, NotLeaderError) for result in stored)  # by the store's fence
        leader = self._leader_or_none() if refused else None  # API: 307 there, or 503
        return [self._answer(result, leader) for result in stored]

    def _answer(self, result: tuple[Versioned, bool] | Exception, leader: str | None) -> Answer | Exception:
        """One caller's answer: its job's view (from the record written when the view cannot be had), or
        its error (refused by the fence: "not the leader", naming `leader`). A job created now is never
        read back from the store (see the module docstring)."""
        if isinstance(result, NotLeaderError):
            return NotLeaderError(leader)
        if isinstance(result, Exception):
            return result
        record, created = result
        try:
            known = self._known(record.id)
            if known is not None:
                return known, created
            if not created:   # a replayed key: the snapshot lacks its job (deleted meanwhile?): the store
                return self._view(record.id), created
        except NotFoundError as exc:   # a keyed job deleted meanwhile (retention): that caller's answer
            if not created:
                return exc
        except Exception:   # e.g. the store unreachable now: the job is stored, answer what was written
            log.warning("no view of stored job %s; answered from its record", record.id, exc_info=True)
        return dict(record.data, wait_reason=""), created

    def _leader_or_none(self) -> str | None:
        """Who leads, as the election says; None when it cannot say now (ZooKeeper away)."""
        try:
            return self._leader()
        except Exception as exc:
            log.warning("could not ask who leads (%s): the refused submits are answered 503", exc)
            return None

    def _store_batch(self, batch: list[_Item]) -> list[tuple[Versioned, bool] | Exception]:
        """Each item's (record, created) or the store's error; an item whose id another job holds is
        written again under a fresh id (its result names it), `ID_ATTEMPTS` draws in all."""
        batch = list(batch)   # the caller's list keeps its items (only their specs are read afterwards)
        results: list[tuple[Versioned, bool] | Exception] = [Exception("not written")] * len(batch)
        todo = list(range(len(batch)))
        for draw in range(ID_ATTEMPTS):
            if draw:
                for index in todo:
                    item = batch[index]
                    job_id = new_job_id(item.spec.name)
                    log.warning("job id %s is taken by another job: the new job gets %s", item.job_id, job_id)
                    record = new_job_record(job_id, item.spec, float(item.record["submitted_at"]))
                    batch[index] = replace(item, job_id=job_id, record=record)
            written = self._write_items([batch[index] for index in todo])
            for index, result in zip(todo, written, strict=True):
                results[index] = result
            todo = [index for index in todo if _id_taken(results[index])]
            if not todo:
                return results
        for index in todo:
            name = batch[index].spec.name
            results[index] = UnavailableError(f"no free job id for {name!r} in {ID_ATTEMPTS} draws; nothing "
                                              "was stored: submit it again")
        return results

    def _write_items(self, batch: list[_Item]) -> list[tuple[Versioned, bool] | Exception]:
        """Each item's (record, created) or the store's error: the unkeyed in one `create_many`."""
        results: list[tuple[Versioned, bool] | Exception] = [Exception("not written")] * len(batch)
        plain = [index for index, item in enumerate(batch) if item.key is None]
        if plain:
            created = self._store.create_many([(batch[index].job_id, batch[index].record) for index in plain])
            for index, result in zip(plain, created, strict=True):
                results[index] = (result, True) if isinstance(result, Versioned) else result
        for index, item in enumerate(batch):
            if item.key is None:
                continue
            try:   # Store errors are MesosGpuErrors already: unavailable 503, invalid 400, too large 413.
                submitted = self._store.submit(item.job_id, item.record, item.key)
                results[index] = (submitted.record, submitted.created)
            except Exception as exc:
                results[index] = exc
        return results


def _id_taken(result: tuple[Versioned, bool] | Exception) -> bool:
    """Whether the store refused a create because the job id exists (not a lost compare-and-set)."""
    return isinstance(result, Conflict) and not isinstance(result, VersionConflict)
