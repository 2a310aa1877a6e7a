"""Which GPUs a task's container gets: a devices-cgroup probe, the agent's environment, or (on hosts
without Mesos GPU isolation) the host-wide `ExclusiveGpuAllocator`; ids are UUIDs where NVML knows them.

What can be probed, and what cannot:

* cgroup v1 (`/proc/self/cgroup` names a `devices` controller): Mesos' `cgroups/devices` + `gpu/nvidia`
  isolators write the allowed devices into the container cgroup's `devices.list`. GPUs are character
  devices of major 195, `/dev/nvidia<minor>` with minors 0..253 (254 is nvidia-modeset, 255 nvidiactl).
  `a *:* rwm` or `c 195:* ...` means no restriction: nothing can be told from it.
* cgroup v2 (only a `0::/path` line): device access is an eBPF program (BPF_CGROUP_DEVICE) attached to
  the cgroup. Reading it back needs CAP_SYS_ADMIN and bpf(2) (`bpftool cgroup show`), so it is not
  probed: the result says so and selection falls back.
* The local agent (no cgroups) exposes the allocation as NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES
  (host indices or UUIDs). Real Mesos never sets them.

    selector = DeviceSelector(GpuSource.AUTO, os.environ, GpuInventory(), allocator_factory)
    grant = selector.select(2, owner="fw/exec/task")   # GpuGrant(devices, source, detail, owner)
    selector.release(grant)                            # frees an allocator grant; no-op otherwise
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from isolator.allocator import AllocationError, AllocatorStateError, ExclusiveGpuAllocator
from isolator.discovery import GpuInfo, HostGpus, NvmlBackend, NvmlError, discover
from isolator.nvml import real_backend

NVIDIA_MAJOR = 195
MAX_GPU_MINOR = 253  # 254: /dev/nvidia-modeset, 255: /dev/nvidiactl


class GpuSource(enum.Enum):
    """Where the executor looks for its task's GPUs. AUTO: cgroup, then environment, then allocator."""

    AUTO = "auto"
    CGROUP = "cgroup"
    ENV = "env"
    ALLOCATOR = "allocator"


class GpuSelectionError(Exception):
    """The task's GPUs cannot be determined or obtained; the message says why."""


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found: `devices` names exactly the devices allowed (possibly none), or is None
    when the probe cannot tell (unrestricted, absent, unreadable). `detail` says which and why."""

    source: str  # "cgroup-v1", "cgroup-v2", "env"
    devices: tuple[str, ...] | None
    detail: str


@dataclass(frozen=True)
class CgroupPaths:
    """Where the cgroup probe reads (another root in tests)."""

    proc_cgroup: str = "/proc/self/cgroup"
    mountinfo: str = "/proc/self/mountinfo"
    cgroup_root: str = "/sys/fs/cgroup"


# ---- pure parsing -----------------------------------------------------------------------------


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/self/cgroup` as controller -> path; the cgroup v2 entry is under the key ""."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            out[controller] = path
    return out


def devices_mount(mountinfo_text: str) -> tuple[str, str] | None:
    """(mount root, mount point) of the cgroup v1 hierarchy that holds the devices controller."""
    for line in mountinfo_text.splitlines():
        pre, sep, post = line.partition(" - ")
        pre_fields, post_fields = pre.split(), post.split()
        if not sep or len(pre_fields) < 5 or len(post_fields) < 3 or post_fields[0] != "cgroup":
            continue
        if "devices" in post_fields[2].split(","):
            return _unescape(pre_fields[3]), _unescape(pre_fields[4])
    return None


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def parse_devices_list(text: str) -> tuple[int, ...] | None:
    """GPU minors a cgroup v1 `devices.list` allows, sorted; None when GPUs are not restricted."""
    minors: set[int] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, (major, _, minor) = parts[0], parts[1].partition(":")
        access = parts[2] if len(parts) > 2 else "rwm"
        if "r" not in access and "w" not in access:
            continue  # mknod only: the device cannot be opened
        if kind == "a":
            return None  # everything allowed
        if kind != "c" or major not in (str(NVIDIA_MAJOR), "*"):
            continue
        if minor == "*":
            return None  # every NVIDIA device allowed
        if minor.isdigit() and int(minor) <= MAX_GPU_MINOR:
            minors.add(int(minor))
    return tuple(sorted(minors))


def parse_visible_devices(value: str | None) -> tuple[str, ...] | None:
    """A NVIDIA_/CUDA_VISIBLE_DEVICES value: the ids; () for none (void, none, "", -1); None for all/unset."""
    if value is None:
        return None
    text = value.strip()
    if text.lower() == "all":
        return None
    if text.lower() in ("", "void", "none", "-1", "nodevfiles"):
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def ids_for_minors(minors: Sequence[int], minor_to_uuid: Mapping[int, str] | None) -> tuple[str, ...]:
    """Device ids for GPU minors: the UUID where NVML knows the minor, else the minor itself as an
    index (equal to the NVML index on most hosts, though not guaranteed: NVML makes it exact)."""
    known = minor_to_uuid or {}
    return tuple(known.get(minor, str(minor)) for minor in minors)


# ---- probes ------------------------------------------------------------------------------------


def _devices_list_path(paths: CgroupPaths) -> tuple[str | None, str]:
    """The devices.list of this process's cgroup, or None and why there is none."""
    try:
        with open(paths.proc_cgroup) as handle:
            cgroups = parse_proc_cgroup(handle.read())
    except OSError as exc:
        return None, f"{paths.proc_cgroup} cannot be read: {exc.strerror}"
    if "devices" not in cgroups:
        if "" in cgroups:
            return None, "cgroup v2: device access is a BPF program, unreadable without CAP_SYS_ADMIN"
        return None, "no devices cgroup controller"
    path = cgroups["devices"]
    try:
        with open(paths.mountinfo) as handle:
            mount = devices_mount(handle.read())
    except OSError:
        mount = None
    if mount is not None:
        root, point = mount
        if path == root or path.startswith(root.rstrip("/") + "/"):
            directory = os.path.normpath(os.path.join(point, os.path.relpath(path, root)))
            return os.path.join(directory, "devices.list"), f"devices cgroup {path}"
    directory = os.path.join(paths.cgroup_root, "devices", path.lstrip("/"))
    return os.path.join(directory, "devices.list"), f"devices cgroup {path}"


def probe_devices_cgroup(
    paths: CgroupPaths | None = None, minor_to_uuid: Mapping[int, str] | None = None
) -> ProbeResult:
    """The GPUs this process's devices cgroup allows, as device ids (see `ids_for_minors`)."""
    paths = paths or CgroupPaths()
    list_path, why = _devices_list_path(paths)
    if list_path is None:
        return ProbeResult("cgroup-v2" if why.startswith("cgroup v2") else "cgroup-v1", None, why)
    try:
        with open(list_path) as handle:
            minors = parse_devices_list(handle.read())
    except OSError as exc:
        return ProbeResult("cgroup-v1", None, f"{list_path} cannot be read: {exc.strerror}")
    if minors is None:
        return ProbeResult("cgroup-v1", None, f"{why} does not restrict GPUs")
    return ProbeResult(
        "cgroup-v1", ids_for_minors(minors, minor_to_uuid), f"{why} allows GPU minors {list(minors)}"
    )


def probe_environment(env: Mapping[str, str]) -> ProbeResult:
    """The devices the agent exposed through the environment (the local agent's emulation)."""
    for name in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        devices = parse_visible_devices(env.get(name))
        if devices is not None:
            return ProbeResult("env", devices, f"{name}={env.get(name)}")
    return ProbeResult("env", None, "neither NVIDIA_VISIBLE_DEVICES nor CUDA_VISIBLE_DEVICES names devices")


# ---- inventory and selection -------------------------------------------------------------------


class GpuInventory:
    """The host's GPUs from NVML (or a `--fake-gpus` SPEC), discovered once; absent NVML is no error
    here: `error` says why there is no inventory."""

    def __init__(self, fake_spec: str | None = None) -> None:
        self.fake_spec = fake_spec
        self._loaded = False
        self._host: HostGpus | None = None
        self.error = ""

    def host(self) -> HostGpus | None:
        """The host's GPUs, or None when NVML cannot be used."""
        if not self._loaded:
            self._loaded = True
            try:
                if self.fake_spec:
                    from isolator.fakenvml import parse_fake_spec

                    backend: NvmlBackend = parse_fake_spec(self.fake_spec)
                else:
                    backend = real_backend()
                self._host = discover(backend)
            except (NvmlError, ValueError, ImportError) as exc:
                self.error = f"no NVML inventory: {exc}"
                self._host = None
        return self._host

    def _gpus(self) -> list[GpuInfo]:
        host = self.host()
        return host.ordered() if host is not None else []

    def uuids(self) -> list[str] | None:
        """The healthy GPUs' UUIDs in index order; None when there is no inventory."""
        if self.host() is None:
            return None
        return [g.uuid for g in self._gpus() if g.health.healthy]

    def minor_to_uuid(self) -> dict[int, str]:
        return {g.minor: g.uuid for g in self._gpus()}

    def legacy_minors(self) -> dict[str, int]:
        """Device id (UUID or index) -> minor, for the launcher's legacy device mappings."""
        out: dict[str, int] = {}
        for gpu in self._gpus():
            out[gpu.uuid] = gpu.minor
            out[str(gpu.index)] = gpu.minor
        return out


@dataclass(frozen=True)
class GpuGrant:
    """The devices a task's container is given, where they came from, and (allocator grants only)
    the allocator owner to release."""

    devices: tuple[str, ...]
    source: str  # "none", "cgroup-v1", "env", "allocator"
    detail: str
    owner: str | None = None


AllocatorFactory = Callable[[list[str] | None], ExclusiveGpuAllocator]


class DeviceSelector:
    """Chooses a task's GPUs from the first source that names any: the devices cgroup (real Mesos with
    `gpu/nvidia`), the environment (the local agent), the host allocator (no GPU isolation)."""

    def __init__(
        self,
        source: GpuSource,
        env: Mapping[str, str],
        inventory: GpuInventory,
        allocator_factory: AllocatorFactory,
        cgroup_paths: CgroupPaths | None = None,
    ) -> None:
        self.source = source
        self.env = env
        self.inventory = inventory
        self.allocator_factory = allocator_factory
        self.cgroup_paths = cgroup_paths or CgroupPaths()

    def probes(self) -> list[ProbeResult]:
        """What the cgroup and environment probes say (for logs and the RUNNING message)."""
        results = []
        if self.source in (GpuSource.AUTO, GpuSource.CGROUP):
            minors = self.inventory.minor_to_uuid() if self.inventory.host() is not None else None
            results.append(probe_devices_cgroup(self.cgroup_paths, minors))
        if self.source in (GpuSource.AUTO, GpuSource.ENV):
            results.append(probe_environment(self.env))
        return results

    def select(self, count: int, owner: str, taken: Collection[str] = ()) -> GpuGrant:
        """`count` devices for `owner`, none of them in `taken` (devices this executor's other tasks
        hold). Raises GpuSelectionError with the reason."""
        if count <= 0:
            return GpuGrant((), "none", "the task asks for no GPUs")
        tried = []
        for probe in self.probes():
            tried.append(f"{probe.source}: {probe.detail}")
            if not probe.devices:  # cannot tell, or names none: the next source decides
                continue
            free = [d for d in probe.devices if d not in taken]
            if len(free) < count:
                raise GpuSelectionError(
                    f"the task needs {count} gpus but {probe.detail} gives this container "
                    f"{len(free)} free ({', '.join(free) or 'none'})"
                )
            return GpuGrant(tuple(free[:count]), probe.source, probe.detail)
        if self.source not in (GpuSource.AUTO, GpuSource.ALLOCATOR):
            raise GpuSelectionError(f"the task needs {count} gpus but no probe names any: {'; '.join(tried)}")
        return self._allocate(count, owner, tried)

    def _allocate(self, count: int, owner: str, tried: list[str]) -> GpuGrant:
        devices = self.inventory.uuids()
        try:
            allocator = self.allocator_factory(devices)
            allocator.reconcile()
            chosen = allocator.allocate(count, owner)
        except (AllocationError, AllocatorStateError) as exc:
            why = f" ({self.inventory.error})" if devices is None and self.inventory.error else ""
            raise GpuSelectionError(f"{exc}{why}") from exc
        detail = f"allocator {allocator.state_path}"
        if tried:
            detail += f" (probes: {'; '.join(tried)})"
        return GpuGrant(tuple(chosen), "allocator", detail, owner)

    def attach(self, grant: GpuGrant, container_id: str) -> None:
        """Record the container holding an allocator grant (it keeps the devices alive on reconcile)."""
        if grant.owner is not None:
            self.allocator_factory(self.inventory.uuids()).attach(grant.owner, container_id)

    def release(self, grant: GpuGrant) -> list[str]:
        """Free an allocator grant; Mesos (or the local agent) frees probed devices itself."""
        if grant.owner is None:
            return []
        return self.allocator_factory(self.inventory.uuids()).release(grant.owner)
