"""The job list index (pure): job ids in the order `GET /v1/jobs` lists them, per state and per tenant.

The API lists jobs by (submitted_at, id), optionally filtered by one or more states and by a tenant,
one page (offset, limit) at a time with the total. `JobList` keeps a sorted list of keys for every
(state or any, tenant or any) a job belongs to, kept up to date by the state machine on every job added,
every state change and every removal. State changes are noted in O(1) and applied to the lists in one
pass before the next read or structural update (an offer cycle moves thousands of jobs at once: one
filter and one merge per list, not a binary-search delete and insert per job). A page of one list is a
slice; a page of several states merges their lists from split points found by binary search:
O(states^2 x log(jobs) + page), whatever the offset, instead of copying, filtering and sorting every
job ever submitted.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from mesos_gpu.core.model import JobState

Key = tuple[float, str]
"""A job's place in the list: (submitted_at, id)."""
Group = tuple[JobState | None, str | None]
"""Which jobs one list holds: (their state, None for any; their tenant, None for any)."""

ALL_STATES = frozenset(JobState)


class Entry(NamedTuple):
    """What the index knows of one job."""

    submitted_at: float
    state: JobState
    tenant: str

    def groups(self) -> tuple[Group, ...]:
        """The lists the job is in."""
        return ((self.state, self.tenant), (self.state, None), (None, self.tenant), (None, None))


@dataclass(eq=False)
class JobList:
    """Job ids by (submitted_at, id), in one sorted list per group; empty lists are dropped."""

    _entries: dict[str, Entry] = field(default_factory=dict)
    _lists: dict[Group, list[Key]] = field(default_factory=dict)
    _moved: dict[str, JobState] = field(default_factory=dict)
    """Jobs whose state changed since the lists were last brought up to date: their state in the lists."""

    @classmethod
    def of(cls, jobs: Iterable[tuple[str, float, JobState, str]]) -> JobList:
        """The index of (id, submitted_at, state, tenant) for each job."""
        index = cls()
        index.add_many(jobs)
        return index

    def __len__(self) -> int:
        return len(self._entries)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobList):
            return NotImplemented
        return self._entries == other._entries and self.lists() == other.lists()

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def entry(self, job_id: str) -> Entry | None:
        return self._entries.get(job_id)

    # ------------------------------------------------------------------------------------- updates
    def add(self, job_id: str, submitted_at: float, state: JobState, tenant: str) -> None:
        """Index a job (again: an indexed id is moved to its new place)."""
        self._settle()
        self.discard(job_id)
        entry = self._entries[job_id] = Entry(float(submitted_at), state, tenant)
        key = (entry.submitted_at, job_id)
        for group in entry.groups():
            bisect.insort(self._lists.setdefault(group, []), key)

    def add_many(self, jobs: Iterable[tuple[str, float, JobState, str]]) -> None:
        """`add` each of (id, submitted_at, state, tenant), the last one of an id winning; sorts each
        list once, so a recovered leader indexes its jobs in O(n log n) whatever their order."""
        entries = {job_id: Entry(float(at), state, tenant) for job_id, at, state, tenant in jobs}
        self._settle()
        for job_id in entries:
            self.discard(job_id)
        touched: set[Group] = set()
        for job_id, entry in entries.items():
            self._entries[job_id] = entry
            key = (entry.submitted_at, job_id)
            for group in entry.groups():
                self._lists.setdefault(group, []).append(key)
                touched.add(group)
        for group in touched:
            self._lists[group].sort()

    def set_state(self, job_id: str, state: JobState) -> None:
        """The job's new state (it keeps its place in the order); O(1), the lists follow before the next
        read."""
        entry = self._entries[job_id]
        if entry.state is state:
            return
        self._moved.setdefault(job_id, entry.state)
        self._entries[job_id] = Entry(entry.submitted_at, state, entry.tenant)

    def _settle(self) -> None:
        """Apply the state changes noted since the last call to the lists: per list, one pass that drops
        the jobs that left it and one sort that merges those that joined (two sorted runs)."""
        if not self._moved:
            return
        left: dict[Group, set[str]] = {}
        joined: dict[Group, list[Key]] = {}
        entries = self._entries
        for job_id, before in self._moved.items():
            entry = entries[job_id]
            if entry.state is before:
                continue
            key = (entry.submitted_at, job_id)
            was: tuple[Group, Group] = ((before, entry.tenant), (before, None))
            now: tuple[Group, Group] = ((entry.state, entry.tenant), (entry.state, None))
            for group in was:
                left.setdefault(group, set()).add(job_id)
            for group in now:
                joined.setdefault(group, []).append(key)
        self._moved.clear()
        lists = self._lists
        for group, gone in left.items():
            keys = [key for key in lists[group] if key[1] not in gone]
            if len(keys) != len(lists[group]) - len(gone):
                raise KeyError(f"jobs {sorted(gone)[:5]} are not all in the job list of {group}")
            if keys:
                lists[group] = keys
            else:
                del lists[group]
        for group, keys in joined.items():
            keys.sort()
            current = lists.get(group)
            if current is None:
                lists[group] = keys
            else:
                current.extend(keys)
                current.sort()

    def lists(self) -> dict[Group, list[Key]]:
        """Every non-empty group's sorted keys, up to date (the live lists: read, never change them)."""
        self._settle()
        return self._lists

    def discard(self, job_id: str) -> None:
        """Forget a job (nothing when it is not indexed)."""
        self._settle()
        entry = self._entries.pop(job_id, None)
        if entry is not None:
            for group in entry.groups():
                self._remove(group, (entry.submitted_at, job_id))

    def _remove(self, group: Group, key: Key) -> None:
        keys = self._lists[group]
        position = bisect.bisect_left(keys, key)
        if position == len(keys) or keys[position] != key:
            raise KeyError(f"{key} is not in the job list of {group}")
        del keys[position]
        if not keys:
            del self._lists[group]

    # --------------------------------------------------------------------------------------- reads
    def page(
        self, states: Collection[JobState] | None, tenant: str | None, offset: int, limit: int
    ) -> tuple[list[str], int]:
        """The ids of jobs `offset` to `offset + limit` (by submitted_at, then id) among those in one of
        `states` (None: any) of `tenant` (None: any), and how many such jobs there are."""
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must be >= 0, not {offset} and {limit}")
        self._settle()
        wanted = ALL_STATES if states is None else frozenset(states)
        groups: list[Group] = [(None, tenant)] if wanted == ALL_STATES else [(s, tenant) for s in wanted]
        lists = [keys for group in groups if (keys := self._lists.get(group))]
        total = sum(len(keys) for keys in lists)
        if offset >= total or limit == 0:
            return [], total
        if len(lists) == 1:
            return [job_id for _, job_id in lists[0][offset : offset + limit]], total
        starts = _split(lists, offset)
        parts = (itertools.islice(keys, start, None) for keys, start in zip(lists, starts, strict=True))
        return [job_id for _, job_id in itertools.islice(heapq.merge(*parts), limit)], total

    def ids_in(self, state: JobState) -> list[str]:
        """The ids of every job in `state`, by (submitted_at, id): O(those jobs), not O(all jobs)."""
        self._settle()
        return [job_id for _, job_id in self._lists.get((state, None), ())]

    def count(self, states: Collection[JobState] | None = None, tenant: str | None = None) -> int:
        """How many jobs `page` would list in all."""
        return self.page(states, tenant, 0, 0)[1]


def _split(lists: list[list[Key]], rank: int) -> list[int]:
    """Where each sorted list splits so that the lists' first parts hold the `rank` smallest keys of all
    (keys are distinct). A binary search that halves the widest undecided range at each step:
    O(lists^2 x log(keys)) comparisons, whatever `rank` is."""
    low = [0] * len(lists)
    high = [len(keys) if rank else 0 for keys in lists]
    while True:
        widest = max(range(len(lists)), key=lambda i: high[i] - low[i])
        if high[widest] == low[widest]:
            return low
        pivot = lists[widest][(low[widest] + high[widest]) // 2]
        below = [bisect.bisect_left(keys, pivot) for keys in lists]
        if sum(below) < rank:
            # The pivot is among the first `rank` keys, and so is every key up to it.
            low = [max(low[i], bisect.bisect_right(keys, pivot)) for i, keys in enumerate(lists)]
        else:
            # Every one of the first `rank` keys is below the pivot.
            high = [min(high[i], below[i]) for i in range(len(lists))]
