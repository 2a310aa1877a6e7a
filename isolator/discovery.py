"""GPU discovery, the pure side: the NVML backend interface (`NvmlBackend`), the raw answers it gives,
the NVML errors, and the mapping of those answers into `HostGpus` / `GpuInfo`, keyed by GPU UUID.

    host = discover(isolator.nvml.real_backend())   # or discover(parse_fake_spec("4xA100-SXM4-40GB"))
    host.gpus["GPU-..."].minor, host.ordered(), host.nvlink_groups(), host.healthy()

Errors: `NvmlUnavailable` (no library, no driver, no permission: the message says which and what to
do), `NvmlCallError` (a call failed; `.call`, `.nvml_code`). A GPU that cannot be read at all is left out
of `HostGpus.gpus` and named in `HostGpus.problems`; fields a GPU does not support are None. The real
backend is `isolator.nvml` (pynvml's only home), the fake one `isolator.fakenvml`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mesos_gpu.core.errors import MesosGpuError

# NVML return codes (nvml.h) used by the mapping layer; the fake raises the same ones.
INVALID_ARGUMENT = 2
NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
TIMEOUT = 10
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
LIB_RM_VERSION_MISMATCH = 18
UNKNOWN = 999

# Common-ancestor levels (nvmlGpuTopologyLevel_t) and the names `nvidia-smi topo -m` gives them.
TOPOLOGY_LEVELS = {
    0: "same-board",  # INTERNAL
    10: "single-switch",  # PIX
    20: "multiple-switches",  # PXB
    30: "host-bridge",  # PHB
    40: "numa-node",  # NODE
    50: "system",  # SYS
}

# XIDs caused by the application, not the GPU (NVIDIA k8s-device-plugin's skip list).
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})
RETIRED_PAGES_LIMIT = 60  # DCGM treats this many retired pages as a failing memory


class NvmlError(MesosGpuError):
    """Base of the NVML errors."""

    code = "nvml_error"
    http_status = 503


class NvmlUnavailable(NvmlError):  # noqa: N818 - the name the project documents
    """NVML cannot be used on this host: no library, no loaded driver, or no permission."""

    code = "nvml_unavailable"


class NvmlCallError(NvmlError):
    """One NVML call failed with return code `code`."""

    def __init__(self, call: str, code: int, message: str) -> None:
        super().__init__(f"{call} failed: {message} (NVML error {code})")
        self.call = call
        self.nvml_code = code


_UNAVAILABLE_FIX = {
    LIBRARY_NOT_FOUND: "libnvidia-ml.so.1 was not found: install the NVIDIA driver "
    "(e.g. apt-get install nvidia-driver) or add its library directory to the loader path",
    DRIVER_NOT_LOADED: "the NVIDIA kernel driver is not loaded: load it (modprobe nvidia) or reboot "
    "after installing the driver",
    NO_PERMISSION: "no permission to open the NVIDIA devices: run as root or give this user access "
    "to /dev/nvidia*",
    LIB_RM_VERSION_MISMATCH: "the NVML library and the loaded kernel driver differ in version: "
    "reboot (or reload the nvidia modules) after a driver upgrade",
    FUNCTION_NOT_FOUND: "this NVIDIA driver is too old for NVML: install driver 340.29 or newer",
}


def unavailable(code: int, message: str) -> NvmlUnavailable:
    """The typed error for an NVML that cannot start, with what to do about it."""
    fix = _UNAVAILABLE_FIX.get(code, "check the NVIDIA driver installation")
    return NvmlUnavailable(f"NVML is unavailable: {message} (NVML error {code}); {fix}")


# ---- raw answers (what a backend returns) ----------------------------------------------------


@dataclass(frozen=True)
class RawHealth:
    """Health counters as NVML gives them; None where the GPU does not support the query."""

    ecc_uncorrected_volatile: int | None = None
    ecc_corrected_volatile: int | None = None
    retired_pages_double_bit: int | None = None
    retired_pages_single_bit: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None


@dataclass(frozen=True)
class RawDevice:
    """One device's identity as NVML gives it."""

    index: int
    uuid: str
    minor: int
    name: str
    memory_total_bytes: int
    pci_bus_id: str


class NvmlBackend(Protocol):
    """The NVML calls discovery needs. Each method raises `NvmlUnavailable` (init only) or
    `NvmlCallError`; indices are NVML's device indices."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def driver_version(self) -> str: ...
    def cuda_driver_version(self) -> int: ...
    def device_count(self) -> int: ...
    def device(self, index: int) -> RawDevice: ...
    def health(self, index: int) -> RawHealth: ...
    def nvlink_peers(self, index: int) -> Mapping[str, int]:
        """PCI bus id of each NVLink peer -> number of active links to it."""
        ...

    def common_ancestor(self, index_a: int, index_b: int) -> int:
        """The NVML topology level of the closest common PCIe ancestor."""
        ...

    def xid_events(self, timeout_ms: int) -> Sequence[tuple[int, int]]:
        """Critical XID events seen within timeout_ms, as (device index, xid)."""
        ...


# ---- project types ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuHealth:
    """Whether a GPU may be given to tasks, and why not."""

    healthy: bool
    reasons: tuple[str, ...] = ()
    ecc_uncorrected: int | None = None
    retired_pages: int | None = None
    xids: tuple[int, ...] = ()


@dataclass(frozen=True)
class GpuInfo:
    """One GPU, as the project sees it."""

    uuid: str
    index: int
    minor: int
    model: str
    memory_mib: int
    pci_bus_id: str
    health: GpuHealth = field(default_factory=lambda: GpuHealth(healthy=True))

    @property
    def device_path(self) -> str:
        return f"/dev/nvidia{self.minor}"


@dataclass(frozen=True)
class GpuLink:
    """How two GPUs reach each other: NVLink (with a link count) or through PCIe."""

    a: str  # UUID
    b: str  # UUID
    nvlinks: int
    pcie: str | None  # a TOPOLOGY_LEVELS name, None when unknown

    @property
    def kind(self) -> str:
        return "nvlink" if self.nvlinks > 0 else "pcie"


@dataclass(frozen=True)
class HostGpus:
    """Every GPU of a host, keyed by UUID, with the versions and the topology between them."""

    driver_version: str
    cuda_version: str
    gpus: Mapping[str, GpuInfo]
    links: tuple[GpuLink, ...] = ()
    problems: tuple[str, ...] = ()

    def ordered(self) -> list[GpuInfo]:
        """The GPUs by NVML index."""
        return sorted(self.gpus.values(), key=lambda g: g.index)

    def healthy(self) -> list[GpuInfo]:
        return [g for g in self.ordered() if g.health.healthy]

    def link(self, a: str, b: str) -> GpuLink | None:
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        return None

    def nvlink_groups(self) -> list[list[str]]:
        """Connected components of the NVLink graph (UUIDs by index); a GPU without NVLink is alone."""
        parent = {uuid: uuid for uuid in self.gpus}

        def root(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for link in self.links:
            if link.nvlinks > 0 and link.a in parent and link.b in parent:
                parent[root(link.a)] = root(link.b)
        groups: dict[str, list[GpuInfo]] = {}
        for gpu in self.ordered():
            groups.setdefault(root(gpu.uuid), []).append(gpu)
        return sorted(
            ([g.uuid for g in members] for members in groups.values()), key=lambda m: self.gpus[m[0]].index
        )

    def models(self) -> list[str]:
        """The distinct model names, in index order."""
        seen: list[str] = []
        for gpu in self.ordered():
            if gpu.model not in seen:
                seen.append(gpu.model)
        return seen


# ---- the pure mapping layer ---------------------------------------------------------------------


def cuda_version_text(value: int) -> str:
    """NVML's CUDA driver version integer (e.g. 12040) as "12.4"."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def gpu_health(raw: RawHealth, xids: Iterable[int] = ()) -> GpuHealth:
    """Decide a GPU's health from its counters and the critical XIDs seen on it."""
    reasons = []
    if raw.ecc_uncorrected_volatile:
        reasons.append(f"{raw.ecc_uncorrected_volatile} uncorrectable ECC errors since the driver loaded")
    if raw.retired_pages_pending:
        reasons.append("a page retirement is pending: reset the GPU or reboot")
    retired = None
    if raw.retired_pages_double_bit is not None or raw.retired_pages_single_bit is not None:
        retired = (raw.retired_pages_double_bit or 0) + (raw.retired_pages_single_bit or 0)
        if retired >= RETIRED_PAGES_LIMIT:
            reasons.append(f"{retired} retired memory pages (limit {RETIRED_PAGES_LIMIT}): replace the GPU")
    if raw.remapped_rows_failure:
        reasons.append("row remapping failed: replace the GPU")
    if raw.remapped_rows_pending:
        reasons.append("a row remapping is pending: reset the GPU or reboot")
    critical = tuple(sorted({x for x in xids if x not in APPLICATION_XIDS}))
    if critical:
        reasons.append("critical XID events: " + ", ".join(str(x) for x in critical))
    return GpuHealth(
        healthy=not reasons,
        reasons=tuple(reasons),
        ecc_uncorrected=raw.ecc_uncorrected_volatile,
        retired_pages=retired,
        xids=critical,
    )


def gpu_info(raw: RawDevice, health: GpuHealth) -> GpuInfo:
    return GpuInfo(
        uuid=raw.uuid,
        index=raw.index,
        minor=raw.minor,
        model=raw.name,
        memory_mib=raw.memory_total_bytes // (1024 * 1024),
        pci_bus_id=normalise_bus_id(raw.pci_bus_id),
        health=health,
    )


def normalise_bus_id(bus_id: str) -> str:
    """NVML gives "00000000:07:00.0" for devices and sometimes "0000:07:00.0" for NVLink peers."""
    text = bus_id.strip().lower()
    domain, _, rest = text.partition(":")
    if not rest:
        return text
    return f"{int(domain, 16):08x}:{rest}"


def discover(backend: NvmlBackend, xid_timeout_ms: int = 0) -> HostGpus:
    """Ask the backend about every GPU and map the answers into a `HostGpus`.

    Raises `NvmlUnavailable` when NVML cannot start and `NvmlCallError` when host-wide queries
    fail; a GPU whose own queries fail is reported in `problems` instead."""
    backend.init()
    try:
        driver = backend.driver_version()
        cuda = cuda_version_text(backend.cuda_driver_version())
        count = backend.device_count()
        problems: list[str] = []
        raw_devices: dict[int, RawDevice] = {}
        for index in range(count):
            try:
                raw_devices[index] = backend.device(index)
            except NvmlCallError as exc:
                problems.append(f"GPU {index}: cannot be read: {exc}")
        xids: dict[int, list[int]] = {}
        try:
            for index, xid in backend.xid_events(xid_timeout_ms):
                xids.setdefault(index, []).append(xid)
        except NvmlCallError as exc:
            if exc.nvml_code != NOT_SUPPORTED:
                problems.append(f"XID events cannot be read: {exc}")
        gpus: dict[str, GpuInfo] = {}
        for index, raw in raw_devices.items():
            try:
                raw_health = backend.health(index)
            except NvmlCallError as exc:
                problems.append(f"GPU {index} ({raw.uuid}): health cannot be read: {exc}")
                health = GpuHealth(healthy=False, reasons=(f"health cannot be read: {exc}",))
            else:
                health = gpu_health(raw_health, xids.get(index, ()))
            gpus[raw.uuid] = gpu_info(raw, health)
        links = _links(backend, raw_devices, problems)
        return HostGpus(
            driver_version=driver,
            cuda_version=cuda,
            gpus=dict(sorted(gpus.items(), key=lambda kv: kv[1].index)),
            links=links,
            problems=tuple(problems),
        )
    finally:
        with contextlib.suppress(NvmlError):
            backend.shutdown()


def _links(
    backend: NvmlBackend, devices: Mapping[int, RawDevice], problems: list[str]
) -> tuple[GpuLink, ...]:
    by_bus = {normalise_bus_id(raw.pci_bus_id): raw for raw in devices.values()}
    nvlinks: dict[frozenset[str], int] = {}
    for index, raw in devices.items():
        try:
            peers = backend.nvlink_peers(index)
        except NvmlCallError as exc:
            if exc.nvml_code != NOT_SUPPORTED:
                problems.append(f"GPU {index}: NVLink state cannot be read: {exc}")
            continue
        for bus_id, count in peers.items():
            peer = by_bus.get(normalise_bus_id(bus_id))
            if peer is not None and peer.uuid != raw.uuid:
                key = frozenset((raw.uuid, peer.uuid))
                # Each side reports the same links; keep the larger count (one side may be down).
                nvlinks[key] = max(nvlinks.get(key, 0), count)
    links = []
    ordered = sorted(devices.items())
    for i, (index_a, a) in enumerate(ordered):
        for index_b, b in ordered[i + 1 :]:
            try:
                level: str | None = TOPOLOGY_LEVELS.get(backend.common_ancestor(index_a, index_b), "unknown")
            except NvmlCallError:
                level = None
            links.append(
                GpuLink(a=a.uuid, b=b.uuid, nvlinks=nvlinks.get(frozenset((a.uuid, b.uuid)), 0), pcie=level)
            )
    return tuple(links)
