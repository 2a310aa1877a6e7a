"""In-memory `FrameworkStore`: the same semantics as the ZooKeeper store, for tests and one process.

Several `MemoryStore`s built on one `MemoryBackend` behave like several ZooKeeper clients of one
ensemble (each its own "session"); `expire_session()` plays a session expiry for tests.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mesos_gpu.store.base import (
    Conflict,
    ConnectionState,
    CreateResult,
    FrameworkStore,
    JsonDict,
    LeaderElection,
    NotFound,
    NotLeader,
    StoreUnavailable,
    Submitted,
    VersionConflict,
    Versioned,
    check_job_id,
    decode_record,
    encode_record,
    idempotency_key_name,
    item_error,
)
from mesos_gpu.store.election import Leadership


@dataclass
class MemoryBackend:
    """The shared state ("the ensemble"): records are kept encoded, so readers always get copies."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    jobs: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    key_to_job: dict[str, str] = field(default_factory=dict)
    job_to_key: dict[str, str] = field(default_factory=dict)
    framework_id: str | None = None
    contenders: builtins.list[MemoryLeaderElection] = field(default_factory=builtins.list)
    settings: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # `mesos_gpu.store.settings`

    def update_leadership(self) -> None:
        """The first contender leads; call with `lock` held after any change of `contenders`."""
        for position, contender in enumerate(self.contenders):
            if position == 0:
                contender._leadership_elected()
            else:
                contender._leadership_lost("another contender leads")


class MemoryStore:
    """A thread-safe in-memory `FrameworkStore`.

    Example::

        backend = MemoryBackend()
        a, b = MemoryStore(backend), MemoryStore(backend)   # two "clients" of one store
        a.create("job-1", {"name": "x"})
        b.get("job-1").version                               # 0
    """

    def __init__(self, backend: MemoryBackend | None = None) -> None:
        self.backend = backend if backend is not None else MemoryBackend()
        self._closed = False
        self._outage: str | None = None
        self._listeners: builtins.list[Callable[[ConnectionState], None]] = []
        self._elections: builtins.list[MemoryLeaderElection] = []
        self._fence: LeaderElection | None = None

    # -- jobs ----------------------------------------------------------------------------------

    def create(self, job_id: str, data: JsonDict) -> Versioned[JsonDict]:
        """See `JobStore.create`."""
        return self.submit(job_id, data, None).record

    def create_many(self, items: Sequence[tuple[str, JsonDict]]) -> builtins.list[CreateResult]:
        """See `JobStore.create_many`."""
        results: builtins.list[CreateResult] = []
        for job_id, data in items:
            try:
                results.append(self.create(job_id, data))
            except Exception as exc:  # each item fails alone, whatever it raises
                results.append(item_error(job_id, exc))
        return results

    def submit(self, job_id: str, data: JsonDict, idempotency_key: str | None) -> Submitted:
        """See `JobStore.submit`."""
        check_job_id(job_id)
        encoded = encode_record(data)
        key_name = idempotency_key_name(idempotency_key) if idempotency_key is not None else None
        with self.backend.lock:
            self._check_writable()
            if key_name is not None and key_name in self.backend.key_to_job:
                existing = self.backend.key_to_job[key_name]
                return Submitted(self.get(existing), created=False)
            if job_id in self.backend.jobs:
                raise Conflict(f"job {job_id!r} already exists")
            self.backend.jobs[job_id] = (encoded, 0)
            if key_name is not None:
                self.backend.key_to_job[key_name] = job_id
                self.backend.job_to_key[job_id] = key_name
            return Submitted(Versioned(job_id, decode_record(encoded), 0), created=True)

    def job_for_idempotency_key(self, idempotency_key: str) -> str | None:
        """See `JobStore.job_for_idempotency_key`."""
        key_name = idempotency_key_name(idempotency_key)
        with self.backend.lock:
            self._check_open()
            return self.backend.key_to_job.get(key_name)

    def get(self, job_id: str) -> Versioned[JsonDict]:
        """See `JobStore.get`."""
        with self.backend.lock:
            self._check_open()
            try:
                encoded, version = self.backend.jobs[job_id]
            except KeyError:
                raise NotFound(f"job {job_id!r} does not exist") from None
        return Versioned(job_id, decode_record(encoded), version)

    def ids(self) -> builtins.list[str]:
        """See `JobStore.ids`."""
        with self.backend.lock:
            self._check_open()
            return sorted(self.backend.jobs)

    def list(self) -> builtins.list[Versioned[JsonDict]]:
        """See `JobStore.list`."""
        with self.backend.lock:
            self._check_open()
            items = sorted(self.backend.jobs.items())
        return [Versioned(job_id, decode_record(encoded), version) for job_id, (encoded, version) in items]

    def compare_and_set(self, job_id: str, data: JsonDict, expected_version: int) -> Versioned[JsonDict]:
        """See `JobStore.compare_and_set`."""
        encoded = encode_record(data)
        with self.backend.lock:
            self._check_writable()
            current = self.backend.jobs.get(job_id)
            if current is None:
                raise NotFound(f"job {job_id!r} does not exist")
            if current[1] != expected_version:
                raise VersionConflict(job_id, expected_version, current[1])
            self.backend.jobs[job_id] = (encoded, expected_version + 1)
        return Versioned(job_id, decode_record(encoded), expected_version + 1)

    def compare_and_set_many(self, items: Sequence[tuple[str, JsonDict, int]]) -> builtins.list[int]:
        """See `JobStore.compare_and_set_many`: all or nothing here (one write under the lock)."""
        encoded = [(job_id, encode_record(data), version) for job_id, data, version in items]
        with self.backend.lock:
            self._check_writable()
            jobs = self.backend.jobs
            for job_id, _, version in encoded:
                current = jobs.get(job_id)
                if current is None:
                    raise NotFound(f"job {job_id!r} does not exist")
                if current[1] != version:
                    raise VersionConflict(job_id, version, current[1])
            for job_id, record, version in encoded:
                jobs[job_id] = (record, version + 1)
        return [version + 1 for _, _, version in encoded]

    def delete(self, job_id: str, expected_version: int | None) -> None:
        """See `JobStore.delete`."""
        with self.backend.lock:
            self._check_writable()
            current = self.backend.jobs.get(job_id)
            if current is None:
                raise NotFound(f"job {job_id!r} does not exist")
            if expected_version is not None and current[1] != expected_version:
                raise VersionConflict(job_id, expected_version, current[1])
            del self.backend.jobs[job_id]
            key_name = self.backend.job_to_key.pop(job_id, None)
            if key_name is not None:
                del self.backend.key_to_job[key_name]

    # -- framework id --------------------------------------------------------------------------

    def get_framework_id(self) -> str | None:
        """See `FrameworkIdStore.get_framework_id`."""
        with self.backend.lock:
            self._check_open()
            return self.backend.framework_id

    def set_framework_id(self, value: str) -> None:
        """See `FrameworkIdStore.set_framework_id`."""
        if not isinstance(value, str) or not value:
            raise ValueError(f"framework id must be a non-empty string, got {value!r}")
        with self.backend.lock:
            self._check_writable()
            self.backend.framework_id = value

    def clear_framework_id(self) -> None:
        """See `FrameworkIdStore.clear_framework_id`."""
        with self.backend.lock:
            self._check_writable()
            self.backend.framework_id = None

    # -- settings records (`mesos_gpu.store.settings`: the tenants) ------------------------------

    def read_setting(self, name: str) -> Versioned[JsonDict] | None:
        """See `mesos_gpu.store.settings.SettingsStore.read_setting`."""
        with self.backend.lock:
            self._check_open()
            found = self.backend.settings.get(check_job_id(name))
        return None if found is None else Versioned(name, decode_record(found[0]), found[1])

    def write_setting(self, name: str, data: JsonDict) -> Versioned[JsonDict]:
        """See `mesos_gpu.store.settings.SettingsStore.write_setting`."""
        encoded = encode_record(data)
        with self.backend.lock:
            self._check_writable()
            found = self.backend.settings.get(check_job_id(name))
            version = 0 if found is None else found[1] + 1
            self.backend.settings[name] = (encoded, version)
        return Versioned(name, decode_record(encoded), version)

    def delete_setting(self, name: str) -> bool:
        """See `mesos_gpu.store.settings.SettingsStore.delete_setting`."""
        with self.backend.lock:
            self._check_writable()
            return self.backend.settings.pop(check_job_id(name), None) is not None

    # -- session -------------------------------------------------------------------------------

    def leader_election(self) -> MemoryLeaderElection:
        """See `FrameworkStore.leader_election`."""
        with self.backend.lock:
            self._check_open()
            election = MemoryLeaderElection(self)
            self._elections.append(election)
            return election

    def fence(self, election: LeaderElection) -> None:
        """See `FrameworkStore.fence`: each write, atomic under the backend's lock, checks that
        `election` leads."""
        self._fence = election

    def add_connection_listener(self, listener: Callable[[ConnectionState], None]) -> None:
        """See `FrameworkStore.add_connection_listener`."""
        with self.backend.lock:
            self._listeners.append(listener)

    def expire_session(self) -> None:
        """Test hook: play a ZooKeeper session expiry and reconnection.

        Listeners see SUSPENDED, LOST, CONNECTED, as kazoo reports them; this store's contenders
        lose leadership ("ZooKeeper session lost"), leave the election and join again at its end.
        """
        with self.backend.lock:
            self._check_open()
            listeners = builtins.list(self._listeners)
            for listener in listeners:
                listener(ConnectionState.SUSPENDED)
            for election in self._elections:
                election._leave("ZooKeeper connection suspended")
            for listener in listeners:
                listener(ConnectionState.LOST)
            for listener in listeners:
                listener(ConnectionState.CONNECTED)
            for election in self._elections:
                election._join()
            self.backend.update_leadership()

    def drop_connection(self) -> None:
        """Test hook: play a dropped connection that reconnects within the session.

        Listeners see SUSPENDED then CONNECTED; a leader loses leadership ("ZooKeeper connection
        suspended") and, still first in the election, is elected again.
        """
        with self.backend.lock:
            self._check_open()
            listeners = builtins.list(self._listeners)
            for listener in listeners:
                listener(ConnectionState.SUSPENDED)
            for election in self._elections:
                election._leadership_lost("ZooKeeper connection suspended")
            for listener in listeners:
                listener(ConnectionState.CONNECTED)
            self.backend.update_leadership()

    def start_outage(self, reason: str = "the job store did not answer (a test outage)") -> None:
        """Test hook: play a backend that stops answering (ZooKeeper unreachable past the retry
        deadline): every call raises StoreUnavailable(reason) until `end_outage()`. Unlike
        `expire_session`, listeners and leadership are left alone."""
        with self.backend.lock:
            self._outage = reason

    def end_outage(self) -> None:
        """Test hook: the backend answers again (see `start_outage`)."""
        with self.backend.lock:
            self._outage = None

    def close(self) -> None:
        """See `FrameworkStore.close`. Later calls raise StoreUnavailable."""
        with self.backend.lock:
            if self._closed:
                return
            elections, self._elections = self._elections, []
        for election in elections:
            election.resign()
        with self.backend.lock:
            self._closed = True
            listeners = builtins.list(self._listeners)
        for listener in listeners:
            listener(ConnectionState.LOST)

    def _check_writable(self) -> None:
        """`_check_open`, and NotLeader when fenced by an election that does not lead (hold the lock)."""
        self._check_open()
        if self._fence is not None and not self._fence.is_leader:
            raise NotLeader()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if self._outage is not None:
            raise StoreUnavailable(self._outage)


class MemoryLeaderElection:
    """A contender in a `MemoryBackend`'s election: the first to join leads. See `LeaderElection`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._backend = store.backend
        self._leadership: Leadership | None = None
        self._campaigning = False

    def campaign(
        self, identifier: str, on_elected: Callable[[], None], on_lost: Callable[[str], None]
    ) -> None:
        """See `LeaderElection.campaign`."""
        with self._backend.lock:
            self._store._check_open()
            if self._campaigning:
                raise RuntimeError(f"already campaigning as {self._identifier()!r}")
            self._campaigning = True
            self._leadership = Leadership(identifier, on_elected, on_lost)
            self._join()
            self._backend.update_leadership()

    def resign(self) -> None:
        """See `LeaderElection.resign`."""
        with self._backend.lock:
            if not self._campaigning:
                return
            self._campaigning = False
            leadership = self._leadership
            self._leave("resigned")
            self._backend.update_leadership()
        if leadership is not None:
            leadership.close()

    @property
    def is_leader(self) -> bool:
        """See `LeaderElection.is_leader`."""
        leadership = self._leadership
        return leadership is not None and leadership.is_leader

    def verify_leadership(self) -> bool:
        """See `LeaderElection.verify_leadership` (in memory, the flag is the truth)."""
        return self.is_leader

    def leader_identifier(self) -> str | None:
        """See `LeaderElection.leader_identifier`."""
        contenders = self.contenders()
        return contenders[0] if contenders else None

    def contenders(self) -> list[str]:
        """See `LeaderElection.contenders`."""
        with self._backend.lock:
            self._store._check_open()
            return [contender._identifier() for contender in self._backend.contenders]

    def _identifier(self) -> str:
        return self._leadership.identifier if self._leadership is not None else ""

    def _join(self) -> None:
        if self._campaigning and self not in self._backend.contenders:
            self._backend.contenders.append(self)

    def _leave(self, reason: str) -> None:
        if self in self._backend.contenders:
            self._backend.contenders.remove(self)
        self._leadership_lost(reason)

    def _leadership_elected(self) -> None:
        if self._leadership is not None:
            self._leadership.elected()

    def _leadership_lost(self, reason: str) -> None:
        if self._leadership is not None:
            self._leadership.lost(reason)


if TYPE_CHECKING:  # mypy checks that the classes keep the contract

    def _conforms(store: MemoryStore) -> tuple[FrameworkStore, LeaderElection]:
        return store, store.leader_election()
