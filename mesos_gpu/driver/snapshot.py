"""What the API reads: an immutable snapshot of the jobs, published by the runtime's worker after each event.

The worker owns the state machine; readers (the API's threads) never touch it and never wait for it: they
read the snapshot published last, so a GET answers at once even while an offer cycle is being decided.
A snapshot is never changed once published; the next one shares what did not change with it:

- each job's record (`JobRecord.to_dict()`) and wait reason, remade only for the jobs an event changed:
  those it persisted (the `Persist` commands carry the new record: no `to_dict` again), those it names
  (a submit, a kill, a status update), and, after an offer cycle, the waiting jobs whose wait reason
  changed (the record is kept: only the reason is new); a reader gets a view made from them, its own;
- the jobs by id: a large base map shared by many snapshots plus a small map of the recent changes,
  folded into a new base once it holds an eighth of the jobs (so O(1) copies per change, amortised);
- the job list (`mesos_gpu.core.joblist.JobList`'s sorted lists, one per state and tenant): each list a
  snapshot holds is read up to its own length only, so new jobs (submitted now: at the end of the order)
  are appended in place without a copy; a list a job left or entered in its middle is copied.

Cost per event: O(jobs changed) for submits, kills and status updates (plus the copy of each list a job
changed state in); readers never wait.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.joblist import ALL_STATES, Group, JobList, Key
from mesos_gpu.core.model import JobState
from mesos_gpu.core.records import JobRecord
from mesos_gpu.core.state import SchedulerState

JobView = dict[str, Any]
Held = tuple[Mapping[str, Any], str]
"""What a snapshot holds of a job: its record (`to_dict()`, never changed) and its wait reason."""

WAITING = (JobState.PENDING, JobState.RESTARTING)
_STATES = {state.value: state for state in JobState}
_FOLD_AT = 1024   # recent changes folded into the base map past max(this, an eighth of the jobs)


@dataclass(frozen=True)
class Keys:
    """A sorted list of (submitted_at, id) as one snapshot sees it: its first `n` items only (later
    snapshots may append to the same list object; no item below `n` ever changes)."""

    items: list[Key]
    n: int


@dataclass(frozen=True)
class Snapshot:
    """The jobs and the scheduler's standing after one event; never changed after it is published
    (what it shares with later snapshots is never written below its bounds). Readers get views of
    their own."""

    leading: bool = False
    framework_id: str | None = None
    base: dict[str, Held] = field(default_factory=dict)
    recent: dict[str, Held] = field(default_factory=dict)   # newer than `base`
    lists: dict[Group, Keys] = field(default_factory=dict)

    def held(self, job_id: str) -> Held | None:
        held = self.recent.get(job_id)
        return self.base.get(job_id) if held is None else held

    def __contains__(self, job_id: str) -> bool:
        return job_id in self.recent or job_id in self.base

    def job(self, job_id: str) -> JobView | None:
        """The job's view (record plus "wait_reason"), None when the snapshot does not have it."""
        held = self.held(job_id)
        return None if held is None else {**held[0], "wait_reason": held[1]}

    def page(self, states: Collection[JobState] | None, tenant: str | None, offset: int,
             limit: int) -> tuple[list[JobView], int]:
        """Views `offset` to `offset + limit` by (submitted_at, id) of the jobs in `states` of `tenant`
        (None: any), and how many match in all: O(page) (as `JobList.page`)."""
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must be >= 0, not {offset} and {limit}")
        wanted = ALL_STATES if states is None else frozenset(states)
        groups: list[Group] = [(None, tenant)] if wanted == ALL_STATES else [(s, tenant) for s in wanted]
        lists = [keys for group in groups if (keys := self.lists.get(group)) and keys.n]
        total = sum(keys.n for keys in lists)
        if offset >= total or limit == 0:
            return [], total
        if len(lists) == 1:
            ids: Iterable[Key] = lists[0].items[offset : min(offset + limit, lists[0].n)]
        else:
            starts = _split(lists, offset)
            parts = (itertools.islice(keys.items, start, keys.n)
                     for keys, start in zip(lists, starts, strict=True))
            ids = itertools.islice(heapq.merge(*parts), limit)
        return [self.job(job_id) or {} for _, job_id in ids], total

    def all(self, states: Collection[JobState] | None, tenant: str | None) -> list[JobView]:
        """Every matching job's view, by (submitted_at, id)."""
        return self.page(states, tenant, 0, len(self.base) + len(self.recent))[0]


def _split(lists: list[Keys], rank: int) -> list[int]:
    """`mesos_gpu.core.joblist._split` on bounded lists: where each splits so that the first parts hold
    the `rank` smallest keys of all."""
    low = [0] * len(lists)
    high = [keys.n if rank else 0 for keys in lists]
    while True:
        widest = max(range(len(lists)), key=lambda i: high[i] - low[i])
        if high[widest] == low[widest]:
            return low
        pivot = lists[widest].items[(low[widest] + high[widest]) // 2]
        below = [bisect.bisect_left(keys.items, pivot, 0, keys.n) for keys in lists]
        if sum(below) < rank:
            low = [max(low[i], bisect.bisect_right(keys.items, pivot, 0, keys.n))
                   for i, keys in enumerate(lists)]
        else:
            high = [min(high[i], below[i]) for i in range(len(lists))]


def _copied(joblist: JobList) -> dict[Group, Keys]:
    return {group: Keys(list(keys), len(keys)) for group, keys in joblist.lists().items()}


def full(state: SchedulerState, leading: bool) -> Snapshot:
    """A snapshot made from scratch (after recovery): O(all jobs)."""
    jobs: dict[str, Held] = {job_id: (job.to_dict(), job.wait_reason) for job_id, job in state.jobs.items()}
    return Snapshot(leading, state.framework_id, jobs, {}, _copied(state.joblist))


def following(
    previous: Snapshot, state: SchedulerState, leading: bool, *, records: Mapping[str, Mapping[str, Any]],
    named: Iterable[str] = (), listed: bool = False, waiting: bool = False,
) -> Snapshot:
    """The snapshot after an event, sharing what did not change with `previous`.

    `records`: the records the event persisted or handed over (job id -> `to_dict()`); `named`: other
    jobs it may have changed; `listed`: whether jobs may have been forgotten (a full rebuild of the job
    list); `waiting`: whether waiting jobs' wait reasons may have changed (an offer cycle)."""
    jobs = state.jobs
    changed: dict[str, Held] = {}
    for job_id, record in records.items():
        job = jobs.get(job_id)
        if job is not None:
            changed[job_id] = (record, job.wait_reason)
    for job_id in named:
        job = jobs.get(job_id)
        if job is not None and job_id not in changed:
            changed[job_id] = (job.to_dict(), job.wait_reason)
    if waiting:
        _reasons(previous, jobs, state.joblist, changed)
    if listed:
        merged = {**previous.base, **previous.recent, **changed}
        base = {job_id: held for job_id, held in merged.items() if job_id in jobs}
        return Snapshot(leading, state.framework_id, base, {}, _copied(state.joblist))
    if not changed and leading == previous.leading and state.framework_id == previous.framework_id:
        return previous
    lists = _relisted(previous, state.joblist, changed)
    base, recent = previous.base, {**previous.recent, **changed}
    if len(recent) > max(_FOLD_AT, len(base) // 8):
        base, recent = {**base, **recent}, {}
    return Snapshot(leading, state.framework_id, base, recent, lists)


def _reasons(previous: Snapshot, jobs: Mapping[str, JobRecord], joblist: JobList,
             changed: dict[str, Held]) -> None:
    """Into `changed`: each waiting job whose wait reason is new (its record kept: it was not persisted)."""
    for job_state in WAITING:
        for job_id in joblist.ids_in(job_state):
            held, reason = previous.held(job_id), jobs[job_id].wait_reason
            if job_id in changed or (held is not None and held[1] == reason):
                continue
            changed[job_id] = (jobs[job_id].to_dict() if held is None else held[0], reason)


def _relisted(previous: Snapshot, current: JobList, changed: Mapping[str, Held]) -> dict[Group, Keys]:
    """The snapshot's lists after `changed` jobs changed (the job list changes only as they do: added,
    or in a new state; a job keeps its tenant and submission time). A list only new jobs entered, all
    after its last key, is extended in place (earlier snapshots read their own length only); a list a
    job left or entered in its middle is copied; every other list is shared with `previous`."""
    added: dict[Group, list[Key]] = {}
    moved: set[Group] = set()
    for job_id in changed:
        after = current.entry(job_id)
        if after is None:
            continue
        held = previous.held(job_id)
        if held is None:
            for group in after.groups():
                added.setdefault(group, []).append((after.submitted_at, job_id))
        elif held[0]["state"] != after.state.value:
            old, new = _STATES[held[0]["state"]], after.state
            moved.update(((old, after.tenant), (old, None), (new, after.tenant), (new, None)))
    if not added and not moved:
        return previous.lists
    lists = dict(previous.lists)
    for group in moved | set(added):
        keys = previous.lists.get(group)
        new_keys = sorted(added.get(group, ()))
        if group not in moved and keys is not None and len(keys.items) == keys.n and new_keys \
                and (not keys.n or keys.items[keys.n - 1] < new_keys[0]):
            keys.items.extend(new_keys)          # past every earlier snapshot's bound
            lists[group] = Keys(keys.items, keys.n + len(new_keys))
            continue
        live = current.lists().get(group)
        if live is None:
            lists.pop(group, None)
        else:
            lists[group] = Keys(list(live), len(live))
    return lists


def matching(views: list[JobView], states: Collection[JobState] | None, tenant: str | None) -> list[JobView]:
    """The views in one of `states` of `tenant` (None: any), by (submitted_at, id): the list's order."""
    wanted = None if states is None else {state.value for state in states}
    kept = [view for view in views if (wanted is None or view["state"] in wanted)
            and (tenant is None or view["spec"].get("tenant") == tenant)]
    return sorted(kept, key=lambda view: (view["submitted_at"], view["id"]))
