"""What a refused retry leaves to find out: a fenced create whose answer was lost, retried and refused.

`BoundedCalls` gives up waiting for an answer (ConnectionLoss, OperationTimeout) and `command_retry`
tries the write again. When that first attempt did commit and the leader's session then expired (a
paused process), the retry's fence check fails: NotLeader, although the jobs are stored (durable: the
next leader lists them). Answering "not the leader" would make a client without an idempotency key submit
the job a second time. So the store looks: the retry's refusal means the election node is gone, and a
lost attempt, still queued or applied late, would fail the same check: what is there now is all that
will ever be there.

`look_up_creates` answers each job of a transaction: created (its node holds exactly our record,
or, the transaction being all or nothing, another node of ours in it holds our record and this one was
created in the same transaction: modified since by the next leader); Conflict (a node with other data
that ours cannot be: at version 0, from another transaction, created before our first attempt was sent,
or in a transaction that could not commit: one of its jobs was already there); the refusal (no node:
nothing stored); or `outcome_unknown` (ZooKeeper did not answer the look-up, or a node modified since
and created after our first attempt was sent, with nothing else to tell whose it is). `look_up_submit`
does the same for a keyed submit: its idempotency node, never modified, names our job exactly when our
transaction committed.

Why a lone job modified since stays unknown: it was created either by our lost transaction (while our
election node existed) or by a later leader after that node was gone (when ours did not commit), and
ZooKeeper keeps no trace of when our node went: a later leader's election node may be older than our
transaction (it waited as a standby), and one that led briefly, created the job and died leaves no node
at all. So no zxid that can still be read lies between the two cases.

The look-up is part of the write: it gets what is left of the write's deadline, never a fresh one, and
any failure of it (an outage, no read permission, a malformed node) is `outcome_unknown`.

Example::

    try:
        call_with_retry(deadline, attempt)          # attempts > 1 and NotLeader
    except NotLeader as refused:
        results = look_up_creates(calls, left, [("j-1", path, encoded)], refused, since)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from mesos_gpu.store.base import (
    Conflict,
    CreateResult,
    JsonDict,
    NotLeader,
    StoreError,
    StoreUnavailable,
    Submitted,
    Versioned,
    decode_record,
)
from mesos_gpu.store.zkclient import BoundedCalls, call_with_retry

log = logging.getLogger(__name__)

Entry = tuple[str, str, bytes]
"""A job of a refused create: (job id, node path, its encoded record)."""


def outcome_unknown(job_id: str, why: str) -> StoreUnavailable:
    """The honest answer when a job may or may not be stored (503: retry, but not blindly)."""
    return StoreUnavailable(
        f"job {job_id!r} may or may not be stored: the answer to its write was lost and this "
        f"scheduler stopped leading before the retry ({why}); list the jobs before submitting it again "
        "(a submit without an Idempotency-Key may make a second job)"
    )


def look_up_creates(
    calls: BoundedCalls, deadline: float, entries: Sequence[Entry], refused: NotLeader, since: int = 0
) -> list[CreateResult]:
    """Each job's answer after a fenced create, retried after a lost answer, was refused (see the module
    docstring): its record at version 0 when the lost attempt stored it, else why not. `deadline`: the
    seconds left to look; `since`: a zxid seen before the first attempt was sent (`BoundedCalls.seen_zxid`,
    0 when unknown): a node created no later was there before our transaction."""
    try:
        found = call_with_retry(deadline, calls.get_many, [path for _, path, _ in entries])
        stats = [None if node is None else (bytes(node[0]), int(node[1].czxid), int(node[1].version))
                 for node in found]
    except Exception as exc:  # whatever it is, what was stored stays unknown: 503, never a 500
        return [outcome_unknown(job_id, _look_up_failed(exc)) for job_id, _, _ in entries]
    # a job already there when our transaction was sent made it fail as a whole: nothing here is ours
    failed = any(stat is not None and stat[1] <= since for stat in stats)
    anchor = None if failed else next(  # the zxid of our transaction, when it committed
        (stat[1] for (_, _, encoded), stat in zip(entries, stats, strict=True)
         if stat is not None and stat[0] == encoded), None)
    results: list[CreateResult] = []
    for (job_id, _, encoded), stat in zip(entries, stats, strict=True):
        if stat is None:
            results.append(NotLeader(f"{refused}; job {job_id!r} was not stored"))
            continue
        data, czxid, version = stat
        if data == encoded or czxid == anchor:
            results.append(Versioned(job_id, decode_record(encoded), 0))
        elif version == 0 or anchor is not None or failed:
            results.append(Conflict(f"job {job_id!r} already exists"))
        else:
            results.append(outcome_unknown(job_id, "its node was modified since: whose, cannot be told"))
    return results


def look_up_create(
    calls: BoundedCalls, deadline: float, entry: Entry, refused: NotLeader, since: int = 0
) -> Versioned[JsonDict]:
    """`look_up_creates` of one job: its record, or raises why it is not ours."""
    (answer,) = look_up_creates(calls, deadline, [entry], refused, since)
    if isinstance(answer, StoreError):
        raise answer from refused
    return answer


def look_up_submit(
    calls: BoundedCalls, deadline: float, key_path: str, record: Versioned[JsonDict], refused: NotLeader
) -> Submitted:
    """`record` (the job at version 0), created, when a keyed submit's lost attempt stored it (the
    idempotency node at `key_path` names `record.id`); else raises `refused` (nothing of ours stored) or
    `outcome_unknown` (`deadline`: the seconds left to look)."""
    try:
        (node,) = call_with_retry(deadline, calls.get_many, [key_path])
        named = None if node is None else json.loads(bytes(node[0]).decode("utf-8"))
        if named is not None and not isinstance(named, dict):
            raise ValueError(f"the idempotency node {key_path} holds no JSON object")
    except Exception as exc:  # whatever it is, what was stored stays unknown: 503, never a 500
        raise outcome_unknown(record.id, _look_up_failed(exc)) from exc
    if named is not None and named.get("job_id") == record.id:
        return Submitted(record, created=True)
    raise refused


def _look_up_failed(exc: Exception) -> str:
    """Why the look-up told nothing; an error other than an outage is logged with its traceback."""
    if not isinstance(exc, StoreError):
        log.warning("the look-up after a refused retry failed", exc_info=exc)
    return f"the look-up failed: {type(exc).__name__}: {exc}"
