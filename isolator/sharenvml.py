"""What GPU sharing asks of NVML (pure): the `ShareNvml` calls (MIG mode and instances, the processes
running on a GPU with their used memory, where the MPS control binary is), their raw answers, and the
per-host facts `sharing_facts` gathers for `mesos-gpu-agent config`, `doctor` and the share host.

Both backends answer it: `isolator.nvml.PynvmlBackend` (nvmlDeviceGetMigMode,
nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMigDeviceHandleByIndex, nvmlDeviceGetComputeRunningProcesses)
and `isolator.fakenvml.FakeNvml` (a `mig=` layout, an `mps` switch, and per-process memory declared by
test processes in the directory named by MESOS_GPU_FAKE_GPU_PROCESSES).

    facts = sharing_facts(backend)       # HostSharing: every GPU's uuid, memory, MIG mode and instances
    facts.memory_mb(), facts.mig_layout(), facts.mps_capable()
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from isolator.discovery import NvmlError, RawDevice

MPS_CONTROL = "nvidia-cuda-mps-control"
SIMULATED_MPS = "simulated"  # what the fake NVML answers for the MPS control binary
_PROFILE_IN_NAME = re.compile(r"(\d)g\.(\d+)gb")


@dataclass(frozen=True)
class MigInstance:
    """One MIG device of a GPU, in NVML's order (nvmlDeviceGetMigDeviceHandleByIndex)."""

    uuid: str  # MIG-...
    profile: str  # "3g.40gb"
    memory_mib: int


@dataclass(frozen=True)
class RunningProcess:
    """A compute process on a GPU; `used_bytes` None where NVML cannot tell (no permission)."""

    pid: int
    used_bytes: int | None


class ShareNvml(Protocol):
    """The NVML calls sharing needs, besides `isolator.discovery.NvmlBackend`'s (init, device, ...)."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def device_count(self) -> int: ...
    def device(self, index: int) -> RawDevice: ...
    def mig_enabled(self, index: int) -> bool | None:
        """The current MIG mode; None where the GPU has no MIG."""
        ...

    def mig_instances(self, index: int) -> Sequence[MigInstance]:
        """The GPU's MIG devices ([] when MIG is off)."""
        ...

    def running_processes(self, index: int) -> Sequence[RunningProcess]:
        """The compute processes on the GPU (and its MIG devices) with their used memory."""
        ...

    def mps_control(self) -> str | None:
        """The MPS control daemon to run (a path, or SIMULATED_MPS), None when there is none."""
        ...


def profile_from_name(name: str, memory_mib: int, slices: int | None = None) -> str:
    """The MIG profile of a MIG device from its NVML name ("NVIDIA A100 ... MIG 3g.40gb"), else from its
    slice count and memory."""
    found = _PROFILE_IN_NAME.search(name)
    if found:
        return found.group(0)
    return f"{slices or 1}g.{round(memory_mib / 1024)}gb"


@dataclass(frozen=True)
class GpuSharing:
    """What sharing needs to know of one GPU."""

    index: int
    uuid: str
    memory_mib: int
    mig_enabled: bool | None
    mig: tuple[MigInstance, ...] = ()

    @property
    def layout(self) -> str:
        """The `gpu_mig` attribute text of this GPU ("" without MIG instances)."""
        return "/".join(instance.profile for instance in self.mig)


@dataclass(frozen=True)
class HostSharing:
    """Every GPU's sharing facts and the MPS control binary (None: none)."""

    gpus: tuple[GpuSharing, ...]
    mps: str | None
    problems: tuple[str, ...] = ()

    def by_id(self, device: str) -> GpuSharing | None:
        """The GPU named by a UUID or an NVML index."""
        for gpu in self.gpus:
            if device in (gpu.uuid, str(gpu.index)):
                return gpu
        return None

    def memory_mb(self) -> tuple[int, list[str]]:
        """The memory of the agent's GPUs (the smallest) and a note when they differ."""
        sizes = sorted({gpu.memory_mib for gpu in self.gpus})
        if not sizes:
            return 0, []
        notes = []
        if len(sizes) > 1:
            notes.append(f"GPUs differ in memory ({', '.join(map(str, sizes))} MB): gpu_memory_mb is the "
                         f"smallest, {sizes[0]} MB; consider one agent per GPU model")  # fmt: skip
        return sizes[0], notes

    def any_mig(self) -> bool:
        return any(gpu.mig_enabled for gpu in self.gpus)

    def mig_layout(self) -> tuple[str, list[str]]:
        """GPU 0's MIG layout when MIG is on and every GPU has the same one ("" otherwise), and notes."""
        if not self.gpus or not self.any_mig():
            return "", []
        layouts = {gpu.index: gpu.layout for gpu in self.gpus}
        first = layouts[self.gpus[0].index]
        if not first:
            return "", [
                "MIG mode is on but GPU 0 has no MIG instances: create them (nvidia-smi mig -cgi ... -C)"
            ]
        if any(layout != first for layout in layouts.values()):
            text = "; ".join(f"GPU {i}: {layout or 'none'}" for i, layout in sorted(layouts.items()))
            return "", [
                f"GPUs have different MIG layouts ({text}): no gpu_mig attribute; partition them alike"
            ]
        return first, []

    def mps_capable(self) -> tuple[bool, list[str]]:
        """Whether the agent can run an MPS control daemon per GPU, and why not."""
        if self.any_mig():
            return False, [
                "GPUs are in MIG mode: no mps shares on this agent (MPS on MIG is not supported here)"
            ]
        if self.mps is None:
            return False, [
                f"{MPS_CONTROL} is not on PATH: no mps shares (install the driver's compute utilities)"
            ]
        return True, []


def sharing_facts(backend: ShareNvml) -> HostSharing:
    """Ask the backend about every GPU (init .. shutdown); a GPU that cannot be read is a problem."""
    backend.init()
    try:
        gpus, problems = [], []
        for index in range(backend.device_count()):
            try:
                raw = backend.device(index)
                mig_on = backend.mig_enabled(index)
                instances = tuple(backend.mig_instances(index)) if mig_on else ()
            except NvmlError as exc:
                problems.append(f"GPU {index}: {exc}")
                continue
            gpus.append(
                GpuSharing(index, raw.uuid, raw.memory_total_bytes // (1024 * 1024), mig_on, instances)
            )
        return HostSharing(tuple(gpus), backend.mps_control(), tuple(problems))
    finally:
        with contextlib.suppress(NvmlError):
            backend.shutdown()
