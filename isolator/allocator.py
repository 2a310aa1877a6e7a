"""Exclusive GPU allocation per host, shared by every process on it: a state file guarded by an
fcntl lock, written atomically (temp file + fsync + os.replace), keyed by GPU UUID.

    allocator = ExclusiveGpuAllocator("/var/lib/mesos-gpu/gpus.json", devices=[g.uuid for g in gpus])
    uuids = allocator.allocate(2, owner="task-7")          # ["GPU-..", "GPU-.."], or AllocationError
    allocator.attach("task-7", container_id)               # the container now holds them too
    allocator.release("task-7")                            # idempotent
    allocator.reconcile()                                  # frees what dead holders left, adopts orphans

A crash at any point leaves either the old or the new state (never a torn file), and the kernel drops
the lock with the process. What a crashed process held stays allocated until `reconcile()` finds that
none of its holders (the allocating process, its container) is alive; probes are injectable.
Errors follow Mesos' GPU allocator: "Requested 3 gpus but only 2 available", "GPU-a are not available".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mesos_gpu.core.errors import ConflictError, MesosGpuError

STATE_VERSION = 1


class AllocationError(ConflictError):
    """An allocation request that cannot be met now (exact Mesos-style message)."""

    code = "gpus_unavailable"


class AllocatorStateError(MesosGpuError):
    """The state file cannot be read or written; the message says what to do."""

    code = "allocator_state"


class AllocatorLockTimeout(AllocatorStateError):  # noqa: N818 - reads as what happened
    """Another process held the allocator lock for too long."""


@dataclass(frozen=True)
class Holder:
    """Who keeps an allocation alive: the allocating process (pid + its start time, so a reused
    pid is not mistaken for it) and, once started, the container."""

    pid: int | None = None
    pid_start: int | None = None
    container_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "pid_start": self.pid_start, "container_id": self.container_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Holder:
        return cls(
            pid=data.get("pid"), pid_start=data.get("pid_start"), container_id=data.get("container_id")
        )

    @classmethod
    def this_process(cls) -> Holder:
        pid = os.getpid()
        return cls(pid=pid, pid_start=process_start_time(pid))


class HolderProbe(Protocol):
    """Says whether a holder still holds its devices: True (alive), False (gone), None (cannot tell)."""

    def alive(self, holder: Holder) -> bool | None: ...


class DeviceUsageProbe(Protocol):
    """Devices in use by holders the allocator may not know of (e.g. running containers): UUID -> holder."""

    def in_use(self) -> Mapping[str, Holder]: ...


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None if gone."""
    state, start = _proc_stat(pid)
    return start if state is not None else None


def _proc_stat(pid: int) -> tuple[str | None, int | None]:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None, None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def process_alive(pid: int, start: int | None = None) -> bool:
    """True if `pid` runs (not a zombie) and, when `start` is given, is the same process."""
    state, started = _proc_stat(pid)
    if state is None or state in ("Z", "X"):
        return False
    return start is None or started == start


class ProcessProbe:
    """A holder is alive while its allocating process runs (pid reuse detected by start time)."""

    def alive(self, holder: Holder) -> bool | None:
        if holder.pid is None:
            return None
        return process_alive(holder.pid, holder.pid_start)


@dataclass
class ContainerProbe:
    """A holder is alive while its container runs. `running` lists running containers as
    (container id, GPU UUIDs it was given), e.g. from `DockerLauncher.list_by_label`."""

    running: Callable[[], Sequence[tuple[str, Sequence[str]]]]

    def alive(self, holder: Holder) -> bool | None:
        if holder.container_id is None:
            return None
        return any(cid == holder.container_id for cid, _ in self.running())

    def in_use(self) -> Mapping[str, Holder]:
        return {uuid: Holder(container_id=cid) for cid, uuids in self.running() for uuid in uuids}


@dataclass
class Allocation:
    owner: str
    devices: list[str]
    holder: Holder
    since: float

    def to_json(self) -> dict[str, Any]:
        return {"devices": self.devices, "holder": self.holder.to_json(), "since": self.since}


@dataclass
class AllocatorState:
    """The state file's content: the devices managed and who holds which."""

    devices: list[str] = field(default_factory=list)
    allocations: dict[str, Allocation] = field(default_factory=dict)

    def allocated(self) -> dict[str, str]:
        """UUID -> owner."""
        return {uuid: a.owner for a in self.allocations.values() for uuid in a.devices}

    def available(self) -> list[str]:
        taken = self.allocated()
        return [uuid for uuid in self.devices if uuid not in taken]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "devices": self.devices,
            "allocations": {owner: a.to_json() for owner, a in sorted(self.allocations.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AllocatorState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {data.get('version')!r}")
        allocations = {
            owner: Allocation(
                owner=owner,
                devices=list(entry["devices"]),
                holder=Holder.from_json(entry.get("holder") or {}),
                since=float(entry.get("since", 0.0)),
            )
            for owner, entry in data.get("allocations", {}).items()
        }
        state = cls(devices=list(data.get("devices", [])), allocations=allocations)
        seen: dict[str, str] = {}
        for allocation in allocations.values():
            for uuid in allocation.devices:
                if uuid in seen:
                    raise ValueError(f"{uuid} is held by both {seen[uuid]!r} and {allocation.owner!r}")
                seen[uuid] = allocation.owner
        return state


@dataclass(frozen=True)
class ReconcileReport:
    """What `reconcile()` changed: owners released (with their devices) and devices adopted."""

    released: Mapping[str, tuple[str, ...]]
    adopted: Mapping[str, tuple[str, ...]]


class ExclusiveGpuAllocator:
    """Gives each GPU to at most one owner at a time, across every process that uses `state_path`."""

    def __init__(
        self,
        state_path: str,
        devices: Sequence[str] | None = None,
        *,
        holder_probes: Sequence[HolderProbe] = (ProcessProbe(),),
        usage_probes: Sequence[DeviceUsageProbe] = (),
        lock_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_path = os.path.abspath(state_path)
        self.lock_path = self.state_path + ".lock"
        self.devices = list(devices) if devices is not None else None
        if self.devices is not None and len(set(self.devices)) != len(self.devices):
            raise ValueError("duplicate GPU UUIDs in devices")
        self.holder_probes = list(holder_probes)
        self.usage_probes = list(usage_probes)
        self.lock_timeout = lock_timeout
        self.clock = clock
        self._before_replace: Callable[[], None] | None = None  # test hook: crash between write and rename

    # ---- public operations -------------------------------------------------------------------

    def allocate(self, count: int, owner: str, holder: Holder | None = None) -> list[str]:
        """Give `count` free GPUs to `owner` and return their UUIDs (in device order).

        Asking again for the same count by an owner that already holds that many returns the same
        GPUs (a retried launch); any other request by a current owner is an error."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise AllocationError("The 'gpus' resource must be an non-negative integer")
        holder = holder or Holder.this_process()
        with self._transaction() as state:
            existing = state.allocations.get(owner)
            if existing is not None:
                if len(existing.devices) != count:
                    held = ", ".join(existing.devices)
                    raise AllocationError(f"{owner!r} already holds {len(existing.devices)} gpus ({held})")
                existing.holder = _merge(existing.holder, holder)
                return list(existing.devices)
            if count == 0:
                return []
            available = state.available()
            if len(available) < count:
                raise AllocationError(f"Requested {count} gpus but only {len(available)} available")
            chosen = available[:count]
            state.allocations[owner] = Allocation(owner, chosen, holder, self.clock())
            return list(chosen)

    def claim(self, uuids: Sequence[str], owner: str, holder: Holder | None = None) -> list[str]:
        """Record that `owner` holds exactly these GPUs (e.g. found by a devices-cgroup probe)."""
        holder = holder or Holder.this_process()
        with self._transaction() as state:
            existing = state.allocations.get(owner)
            if existing is not None and sorted(existing.devices) == sorted(uuids):
                existing.holder = _merge(existing.holder, holder)
                return list(existing.devices)
            taken = state.allocated()
            unknown = [u for u in uuids if u not in state.devices]
            busy = [u for u in uuids if u in taken and taken[u] != owner]
            if unknown or busy or existing is not None:
                bad = unknown + busy or list(uuids)
                raise AllocationError(f"{', '.join(bad)} are not available")
            state.allocations[owner] = Allocation(owner, list(uuids), holder, self.clock())
            return list(uuids)

    def attach(self, owner: str, container_id: str) -> None:
        """Record the container that now holds `owner`'s GPUs (it keeps them alive on reconcile)."""
        with self._transaction() as state:
            allocation = state.allocations.get(owner)
            if allocation is None:
                raise AllocationError(f"{owner!r} holds no gpus")
            allocation.holder = Holder(allocation.holder.pid, allocation.holder.pid_start, container_id)

    def release(self, owner: str) -> list[str]:
        """Free everything `owner` holds; return the UUIDs freed ([] if it held nothing)."""
        with self._transaction() as state:
            allocation = state.allocations.pop(owner, None)
            return list(allocation.devices) if allocation is not None else []

    def reconcile(self) -> ReconcileReport:
        """Free the allocations whose holders are all gone; adopt devices that running holders use
        without an allocation (as owner "adopted:<container or pid>")."""
        released: dict[str, tuple[str, ...]] = {}
        adopted: dict[str, tuple[str, ...]] = {}
        with self._transaction() as state:
            for owner, allocation in list(state.allocations.items()):
                if self._gone(allocation.holder):
                    released[owner] = tuple(state.allocations.pop(owner).devices)
            taken = state.allocated()
            found: dict[str, list[str]] = {}
            holders: dict[str, Holder] = {}
            for probe in self.usage_probes:
                for uuid, holder in probe.in_use().items():
                    if uuid in state.devices and uuid not in taken:
                        name = f"adopted:{holder.container_id or holder.pid}"
                        found.setdefault(name, []).append(uuid)
                        holders[name] = holder
                        taken[uuid] = name
            for name, uuids in found.items():
                state.allocations[name] = Allocation(name, uuids, holders[name], self.clock())
                adopted[name] = tuple(uuids)
        return ReconcileReport(released=released, adopted=adopted)

    def snapshot(self) -> AllocatorState:
        """The current state (read under the lock, not modified)."""
        with self._locked():
            return self._read()

    def allocations(self) -> dict[str, list[str]]:
        """owner -> UUIDs held."""
        return {owner: list(a.devices) for owner, a in self.snapshot().allocations.items()}

    def available(self) -> list[str]:
        return self.snapshot().available()

    # ---- internals -----------------------------------------------------------------------------

    def _gone(self, holder: Holder) -> bool:
        answers = [probe.alive(holder) for probe in self.holder_probes]
        return False in answers and True not in answers

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        directory = os.path.dirname(self.state_path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise AllocatorStateError(
                f"cannot open the GPU allocator lock {self.lock_path}: {exc.strerror}; "
                "check that the directory exists and is writable by this user"
            ) from exc
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise AllocatorLockTimeout(
                            f"the GPU allocator lock {self.lock_path} was held for more than "
                            f"{self.lock_timeout:g}s by another process"
                        ) from exc
                    time.sleep(0.002)
            yield
        finally:
            os.close(fd)  # closing the descriptor drops the lock

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[AllocatorState]:
        with self._locked():
            state = self._read()
            before = state.to_json()
            yield state
            if state.to_json() != before:
                self._write(state)

    def _read(self) -> AllocatorState:
        try:
            with open(self.state_path) as handle:
                data = json.load(handle)
            state = AllocatorState.from_json(data)
        except FileNotFoundError:
            state = AllocatorState()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AllocatorStateError(
                f"the GPU allocator state {self.state_path} is unreadable ({exc}); stop the GPU tasks "
                "of this host, then delete the file so the allocator starts afresh"
            ) from exc
        if self.devices is not None:
            state.devices = list(self.devices)
        return state

    def _write(self, state: AllocatorState) -> None:
        directory = os.path.dirname(self.state_path)
        data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode()
        # Under the lock nobody else writes: a temp file here is what a killed writer left.
        for name in os.listdir(directory):
            if name.startswith(".gpus-") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))
        fd, tmp = tempfile.mkstemp(prefix=".gpus-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if self._before_replace is not None:
                self._before_replace()
            os.replace(tmp, self.state_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _merge(old: Holder, new: Holder) -> Holder:
    return Holder(
        pid=new.pid if new.pid is not None else old.pid,
        pid_start=new.pid_start if new.pid is not None else old.pid_start,
        container_id=new.container_id or old.container_id,
    )
