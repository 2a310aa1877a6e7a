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
that ours cannot be: at version 0, or from another transaction); the refusal (no node: nothing stored);
or `outcome_unknown` (a node modified since, with nothing to tell whose it is, or ZooKeeper did not
answer the look-up). `look_up_submit` does the same for a keyed submit: its idempotency node,
never modified, names our job exactly when our transaction committed.

Example::

    try:
        call_with_retry(deadline, attempt)          # attempts > 1 and NotLeader
    except NotLeader as refused:
        results = look_up_creates(calls, deadline, [("j-1", path, encoded)], refused)
"""

from __future__ import annotations

import json
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
    calls: BoundedCalls, deadline: float, entries: Sequence[Entry], refused: NotLeader
) -> list[CreateResult]:
    """Each job's answer after a fenced create, retried after a lost answer, was refused (see the module
    docstring): its record at version 0 when the lost attempt stored it, else why not."""
    try:
        found = call_with_retry(deadline, calls.get_many, [path for _, path, _ in entries])
    except StoreError as exc:
        return [outcome_unknown(job_id, f"the look-up failed: {exc}") for job_id, _, _ in entries]
    anchor = next((node[1].czxid for (_, _, encoded), node in zip(entries, found, strict=True)
                   if node is not None and node[0] == encoded), None)  # the lost transaction's zxid
    results: list[CreateResult] = []
    for (job_id, _, encoded), node in zip(entries, found, strict=True):
        if node is None:
            results.append(NotLeader(f"{refused}; job {job_id!r} was not stored"))
        elif node[0] == encoded or node[1].czxid == anchor:
            results.append(Versioned(job_id, decode_record(encoded), 0))
        elif node[1].version == 0 or anchor is not None:
            results.append(Conflict(f"job {job_id!r} already exists"))
        else:
            results.append(outcome_unknown(job_id, "its node was modified since: whose, cannot be told"))
    return results


def look_up_create(
    calls: BoundedCalls, deadline: float, entry: Entry, refused: NotLeader
) -> Versioned[JsonDict]:
    """`look_up_creates` of one job: its record, or raises why it is not ours."""
    (answer,) = look_up_creates(calls, deadline, [entry], refused)
    if isinstance(answer, StoreError):
        raise answer from refused
    return answer


def look_up_submit(
    calls: BoundedCalls, deadline: float, key_path: str, record: Versioned[JsonDict], refused: NotLeader
) -> Submitted:
    """`record` (the job at version 0), created, when a keyed submit's lost attempt stored it (the
    idempotency node at `key_path` names `record.id`); else raises `refused` (nothing of ours stored) or
    `outcome_unknown`."""
    try:
        (node,) = call_with_retry(deadline, calls.get_many, [key_path])
    except StoreError as exc:
        raise outcome_unknown(record.id, f"the look-up failed: {exc}") from exc
    if node is not None and json.loads(node[0].decode("utf-8")).get("job_id") == record.id:
        return Submitted(record, created=True)
    raise refused
