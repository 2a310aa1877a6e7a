"""A hand-written in-memory NVML backend that answers like the real one, with switches that inject
failures, and the `--fake-gpus SPEC` parser that builds one (tests and demos).

Sharing (`isolator.sharenvml.ShareNvml`): each GPU has a memory size, optionally MIG instances (the spec's
`mig=3g.40gb/2g.20gb/1g.10gb/1g.10gb`: every GPU in MIG mode with those instances, uuids `MIG-...`), the
host an MPS switch (`mps`: a simulated control daemon), and per-process used memory: a process declares
its usage in a file named by its pid in the directory MESOS_GPU_FAKE_GPU_PROCESSES, holding
"<device uuid> <MiB>" (a GPU's or one of its MIG instances' uuid); `running_processes` lists the live
ones as nvmlDeviceGetComputeRunningProcesses would (pid, usedGpuMemory bytes). `seed=TEXT` mixes TEXT
into every UUID, so that the simulated GPUs of two agents (each passing its own id) never share one.

    echo "$CUDA_VISIBLE_DEVICES 9000" > "$MESOS_GPU_FAKE_GPU_PROCESSES/$$"   # in a test task
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from isolator.discovery import (
    DRIVER_NOT_LOADED,
    FUNCTION_NOT_FOUND,
    GPU_IS_LOST,
    LIB_RM_VERSION_MISMATCH,
    LIBRARY_NOT_FOUND,
    NO_PERMISSION,
    NOT_SUPPORTED,
    TIMEOUT,
    UNKNOWN,
    NvmlCallError,
    RawDevice,
    RawHealth,
    unavailable,
)
from isolator.sharenvml import SIMULATED_MPS, MigInstance, RunningProcess
from mesos_gpu.core.sharing import parse_mig_layout

PROCESSES_ENV = "MESOS_GPU_FAKE_GPU_PROCESSES"


@dataclass
class FakeGpu:
    """One simulated GPU."""

    uuid: str
    name: str = "NVIDIA A100-SXM4-40GB"
    memory_mib: int = 40960
    minor: int | None = None  # defaults to the index
    bus_id: str | None = None  # defaults from the index
    health: RawHealth = field(default_factory=lambda: RawHealth(0, 0, 0, 0, False, False, False))
    mig: tuple[str, ...] = ()  # MIG instance profiles; MIG mode is on when there are some


@dataclass
class FakeNvml:
    """An in-memory NVML that answers like the real one, with switches that inject failures.

    Switches: `init_error` (an NVML return code for nvmlInit: LIBRARY_NOT_FOUND, DRIVER_NOT_LOADED,
    NO_PERMISSION, ...), `fail_calls` (backend method name -> NVML code, host-wide), `lost` (indices
    whose every query fails with GPU_IS_LOST), `health_errors` (indices whose health query fails),
    `xids` ((index, xid) events), `nvlink_unsupported`, `xid_unsupported`."""

    gpus: list[FakeGpu] = field(default_factory=list)
    driver: str = "535.104.05"
    cuda: int = 12020
    nvlinks: dict[tuple[int, int], int] = field(default_factory=dict)
    pcie: dict[tuple[int, int], int] = field(default_factory=dict)
    init_error: int | None = None
    fail_calls: dict[str, int] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)
    health_errors: set[int] = field(default_factory=set)
    xids: list[tuple[int, int]] = field(default_factory=list)
    nvlink_unsupported: bool = False
    xid_unsupported: bool = False
    mps: bool = False
    processes_dir: str | None = None  # None: $MESOS_GPU_FAKE_GPU_PROCESSES at each call
    seed: str = ""  # mixed into the UUIDs (the spec's `seed=`): "" keeps the plain fa4e0000-... ones
    initialised: int = 0
    calls: list[str] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: str) -> FakeNvml:
        """Build from a `--fake-gpus` SPEC; see `parse_fake_spec`."""
        return parse_fake_spec(spec)

    def _check(self, call: str, index: int | None = None) -> None:
        self.calls.append(call)
        if call != "init" and self.initialised <= 0:
            raise NvmlCallError(call, 1, "Uninitialized")
        if call in self.fail_calls:
            code = self.fail_calls[call]
            raise NvmlCallError(call, code, _FAKE_MESSAGES.get(code, "Unknown Error"))
        if index is not None:
            if not 0 <= index < len(self.gpus):
                raise NvmlCallError(call, 2, "Invalid Argument")
            if index in self.lost:
                raise NvmlCallError(call, GPU_IS_LOST, "GPU is lost")

    def init(self) -> None:
        self.calls.append("init")
        if self.init_error is not None:
            raise unavailable(self.init_error, _FAKE_MESSAGES.get(self.init_error, "Unknown Error"))
        self.initialised += 1

    def shutdown(self) -> None:
        self._check("shutdown")
        self.initialised -= 1

    def driver_version(self) -> str:
        self._check("driver_version")
        return self.driver

    def cuda_driver_version(self) -> int:
        self._check("cuda_driver_version")
        return self.cuda

    def device_count(self) -> int:
        self._check("device_count")
        return len(self.gpus)

    def _bus_id(self, index: int) -> str:
        return self.gpus[index].bus_id or f"00000000:{0x10 + index:02X}:00.0"

    def device(self, index: int) -> RawDevice:
        self._check("device", index)
        gpu = self.gpus[index]
        return RawDevice(
            index=index,
            uuid=gpu.uuid,
            minor=index if gpu.minor is None else gpu.minor,
            name=gpu.name,
            memory_total_bytes=gpu.memory_mib * 1024 * 1024,
            pci_bus_id=self._bus_id(index),
        )

    def health(self, index: int) -> RawHealth:
        self._check("health", index)
        if index in self.health_errors:
            raise NvmlCallError("nvmlDeviceGetTotalEccErrors", UNKNOWN, "Unknown Error")
        return self.gpus[index].health

    def nvlink_peers(self, index: int) -> Mapping[str, int]:
        self._check("nvlink_peers", index)
        if self.nvlink_unsupported:
            raise NvmlCallError("nvmlDeviceGetNvLinkState", NOT_SUPPORTED, "Not Supported")
        peers: dict[str, int] = {}
        for (a, b), count in self.nvlinks.items():
            if index in (a, b):
                other = b if index == a else a
                # Peers come back in NVLink's short form, as the real library gives them.
                peers[self._bus_id(other)[4:]] = count
        return peers

    def common_ancestor(self, index_a: int, index_b: int) -> int:
        self._check("common_ancestor", index_a)
        self._check("common_ancestor", index_b)
        key = (min(index_a, index_b), max(index_a, index_b))
        return self.pcie.get(key, 50 if (index_a < 4) != (index_b < 4) else 30)

    def xid_events(self, timeout_ms: int) -> Sequence[tuple[int, int]]:
        self._check("xid_events")
        if self.xid_unsupported:
            raise NvmlCallError("nvmlDeviceRegisterEvents", NOT_SUPPORTED, "Not Supported")
        return [(i, x) for i, x in self.xids if i not in self.lost]

    # ---- sharing (isolator.sharenvml.ShareNvml) ----

    def mig_enabled(self, index: int) -> bool | None:
        self._check("mig_enabled", index)
        return bool(self.gpus[index].mig)

    def mig_instances(self, index: int) -> Sequence[MigInstance]:
        self._check("mig_instances", index)
        return [
            MigInstance(fake_mig_uuid(index, slot, self.seed), profile.name, profile.memory)
            for slot, profile in enumerate(parse_mig_layout("/".join(self.gpus[index].mig)))
        ]

    def running_processes(self, index: int) -> Sequence[RunningProcess]:
        self._check("running_processes", index)
        gpu = self.gpus[index]
        ids = {gpu.uuid} | {fake_mig_uuid(index, slot, self.seed) for slot in range(len(gpu.mig))}
        return [RunningProcess(pid, mib * 1024 * 1024) for pid, uuid, mib in self._declared() if uuid in ids]

    def _declared(self) -> list[tuple[int, str, int]]:
        """(pid, device uuid, MiB) of every live process that declared its usage."""
        directory = self.processes_dir or os.environ.get(PROCESSES_ENV)
        if not directory or not os.path.isdir(directory):
            return []
        out = []
        for name in os.listdir(directory):
            if not name.isdigit() or not os.path.exists(f"/proc/{name}"):
                continue
            try:
                with open(os.path.join(directory, name)) as handle:
                    uuid, mib = handle.read().split()[:2]
                out.append((int(name), uuid, int(float(mib))))
            except (OSError, ValueError):
                continue  # being written, or not ours
        return out

    def mps_control(self) -> str | None:
        self._check("mps_control")
        return SIMULATED_MPS if self.mps and not any(gpu.mig for gpu in self.gpus) else None


def _seed_parts(seed: str) -> tuple[str, str, str]:
    """Three UUID groups drawn from `seed` ("0000", "000", "000" without one)."""
    if not seed:
        return "0000", "000", "000"
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return digest[:4], digest[4:7], digest[7:10]


def fake_mig_uuid(index: int, slot: int, seed: str = "") -> str:
    """The uuid of the fake's MIG instance `slot` of GPU `index` (of a spec with `seed=`)."""
    a, b, c = _seed_parts(seed)
    return f"MIG-fa4e{index:04x}-{a}-4{b}-8{c}-{slot:012x}"


_FAKE_MESSAGES = {
    1: "Uninitialized",
    NOT_SUPPORTED: "Not Supported",
    NO_PERMISSION: "Insufficient Permissions",
    DRIVER_NOT_LOADED: "Driver Not Loaded",
    TIMEOUT: "Timeout",
    LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    FUNCTION_NOT_FOUND: "Function Not Found",
    GPU_IS_LOST: "GPU is lost",
    LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
    UNKNOWN: "Unknown Error",
}

_INIT_ERRORS = {
    "nolib": LIBRARY_NOT_FOUND,
    "nodriver": DRIVER_NOT_LOADED,
    "noperm": NO_PERMISSION,
    "mismatch": LIB_RM_VERSION_MISMATCH,
}
_GROUP = re.compile(r"^(?P<count>\d+)x(?P<model>[A-Za-z0-9_.-]+?)(?:@(?P<mem>\d+)(?P<unit>[GM])i?B?)?$")


class FakeSpecError(ValueError):
    """A `--fake-gpus` SPEC that cannot be parsed."""


def parse_fake_spec(spec: str) -> FakeNvml:
    """Parse a `--fake-gpus` SPEC into a `FakeNvml`.

    SPEC is GROUP[,GROUP...][;OPTION...]. GROUP is COUNTxMODEL[@MEM], e.g. `4xA100-SXM4-40GB`,
    `2xTesla_V100-SXM2-16GB@16G` (`_` becomes a space; "NVIDIA " is prefixed unless the model starts
    with Tesla/Quadro/GeForce; MEM defaults to the "NNGB" in the name, else 16G); `0` means no GPU.
    OPTIONs: `nvlink=none|pairs|quads|all` or `nvlink=0-1:4/2-3:4` (index pairs with link counts),
    `driver=535.104.05`, `cuda=12.2`, `fail=nolib|nodriver|noperm|mismatch` (nvmlInit fails),
    `fail=CALL` (a host-wide backend call fails: driver_version, device_count, ...),
    `lost=I[/J]`, `ecc=I:N`, `retired=I:N`, `pending=I`, `remap-failure=I`, `xid=I:XID`,
    `health-error=I`, `nvlink-unsupported`, `xid-unsupported`; sharing: `mig=3g.40gb/2g.20gb/...` (every
    GPU in MIG mode with these instances), `mps` (MPS available, simulated), `processes=DIR` (where
    processes declare their GPU memory; default $MESOS_GPU_FAKE_GPU_PROCESSES), `seed=TEXT` (mixed into
    the GPU and MIG UUIDs: distinct seeds, distinct UUIDs)."""
    parts = [p.strip() for p in spec.split(";")]
    groups, options = parts[0], [p for p in parts[1:] if p]
    fake = FakeNvml()
    if groups not in ("", "0", "none"):
        for group in groups.split(","):
            match = _GROUP.match(group.strip())
            if match is None:
                raise FakeSpecError(f"bad GPU group {group!r} in --fake-gpus: expected COUNTxMODEL[@MEM]")
            model = match["model"].replace("_", " ")
            if not model.startswith(("NVIDIA", "Tesla", "Quadro", "GeForce")):
                model = f"NVIDIA {model}"
            if match["mem"]:
                memory = int(match["mem"]) * (1024 if match["unit"] == "G" else 1)
            else:
                found = re.search(r"(\d+)GB", model)
                memory = int(found.group(1)) * 1024 if found else 16384
            for _ in range(int(match["count"])):
                index = len(fake.gpus)
                fake.gpus.append(FakeGpu(uuid=_fake_uuid(index), name=model, memory_mib=memory))
    healths: dict[int, RawHealth] = {}
    for option in options:
        key, _, value = option.partition("=")
        try:
            if key.strip() in ("mig", "mps", "processes", "seed"):
                _apply_share_option(fake, key.strip(), value.strip())
            else:
                _apply_option(fake, healths, key.strip(), value.strip())
        except (ValueError, IndexError) as exc:
            raise FakeSpecError(f"bad option {option!r} in --fake-gpus: {exc}") from exc
    for index, gpu in enumerate(fake.gpus):
        gpu.uuid = _fake_uuid(index, fake.seed)
    for index, health in healths.items():
        if not 0 <= index < len(fake.gpus):
            raise FakeSpecError(f"--fake-gpus names GPU {index} but has {len(fake.gpus)} GPUs")
        fake.gpus[index].health = health
    return fake


def _fake_uuid(index: int, seed: str = "") -> str:
    a, b, c = _seed_parts(seed)
    return f"GPU-fa4e0000-{a}-4{b}-8{c}-{index:012x}"


def _apply_option(fake: FakeNvml, healths: dict[int, RawHealth], key: str, value: str) -> None:
    def health(index: str) -> tuple[int, RawHealth]:
        i = int(index)
        if not 0 <= i < len(fake.gpus):
            raise ValueError(f"no GPU {i}")
        return i, healths.get(i, fake.gpus[i].health)

    def pair(text: str) -> tuple[str, str]:
        left, sep, right = text.partition(":")
        if not sep:
            raise ValueError(f"expected I:N, got {text!r}")
        return left, right

    count = len(fake.gpus)
    if key == "nvlink":
        fake.nvlinks = _nvlink_layout(value, count)
    elif key == "driver":
        fake.driver = value
    elif key == "cuda":
        major, _, minor = value.partition(".")
        fake.cuda = int(major) * 1000 + int(minor or 0) * 10
    elif key == "fail":
        if value in _INIT_ERRORS:
            fake.init_error = _INIT_ERRORS[value]
        elif value in ("driver_version", "cuda_driver_version", "device_count", "xid_events"):
            fake.fail_calls[value] = UNKNOWN
        else:
            raise ValueError(f"unknown failure {value!r}")
    elif key == "lost":
        fake.lost.update(int(i) for i in value.split("/"))
    elif key == "health-error":
        fake.health_errors.update(int(i) for i in value.split("/"))
    elif key == "ecc":
        index, n = pair(value)
        i, h = health(index)
        healths[i] = replace(h, ecc_uncorrected_volatile=int(n))
    elif key == "retired":
        index, n = pair(value)
        i, h = health(index)
        healths[i] = replace(h, retired_pages_double_bit=int(n))
    elif key == "pending":
        i, h = health(value)
        healths[i] = replace(h, retired_pages_pending=True)
    elif key == "remap-failure":
        i, h = health(value)
        healths[i] = replace(h, remapped_rows_failure=True)
    elif key == "xid":
        index, xid = pair(value)
        fake.xids.append((int(index), int(xid)))
    elif key == "nvlink-unsupported":
        fake.nvlink_unsupported = True
    elif key == "xid-unsupported":
        fake.xid_unsupported = True
    else:
        raise ValueError(f"unknown option {key!r}")


def _apply_share_option(fake: FakeNvml, key: str, value: str) -> None:
    if key == "mig":
        profiles = tuple(p.name for p in parse_mig_layout(value))
        if not profiles:
            raise ValueError("a MIG layout names at least one instance")
        for gpu in fake.gpus:
            gpu.mig = profiles
    elif key == "mps":
        fake.mps = value.lower() not in ("false", "0", "no")
    elif key == "seed":
        fake.seed = value
    else:
        fake.processes_dir = value


def _nvlink_layout(value: str, count: int) -> dict[tuple[int, int], int]:
    if value == "none":
        return {}
    if value in ("pairs", "quads", "all"):
        size = {"pairs": 2, "quads": 4, "all": max(count, 1)}[value]
        links = {}
        for start in range(0, count, size):
            members = list(range(start, min(start + size, count)))
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    links[(a, b)] = 4 if size == 2 else 2
        return links
    links = {}
    for item in value.split("/"):
        ends, _, n = item.partition(":")
        left, _, right = ends.partition("-")
        ia, ib = int(left), int(right)
        if not (0 <= ia < count and 0 <= ib < count) or ia == ib:
            raise ValueError(f"bad NVLink pair {ends!r} for {count} GPUs")
        links[(min(ia, ib), max(ia, ib))] = int(n or 1)
    return links
