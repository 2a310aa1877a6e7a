"""GPU slots of a local agent: the emulation of Mesos' `gpu/nvidia` isolator allocator.

k distinct indices per holder, never shared while held, released explicitly (at the terminal state).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SIMULATED_GPU_MODEL = "Simulated-GPU"


class GpuAllocationError(Exception):
    """A request the allocator cannot satisfy; the text copies Mesos' allocator messages."""


@dataclass(frozen=True)
class GpuDevice:
    """One GPU slot: its index (the value exposed in CUDA_VISIBLE_DEVICES), identity and model."""

    index: int
    uuid: str
    model: str
    memory_mb: int = 0
    simulated: bool = True


def simulated_devices(
    count: int, model: str = SIMULATED_GPU_MODEL, memory_mb: int = 16384
) -> list[GpuDevice]:
    """`count` simulated GPUs with stable fake UUIDs."""
    if count < 0:
        raise GpuAllocationError("The 'gpus' resource must be an non-negative integer")
    return [
        GpuDevice(index=i, uuid=f"GPU-00000000-0000-0000-0000-{i:012d}", model=model, memory_mb=memory_mb)
        for i in range(count)
    ]


def nvml_devices(backend: Any = None) -> list[GpuDevice]:
    """The host's real GPUs through isolator.nvml (`discover(real_backend())`, or the NVML `backend`
    given, e.g. isolator.fakenvml's); [] when NVML or a driver is absent. Healthy GPUs only."""
    try:
        nvml = importlib.import_module("isolator.nvml")  # the only home of pynvml
    except ImportError:
        return []
    try:
        host = nvml.discover(backend if backend is not None else nvml.real_backend())
    except Exception as exc:  # no driver, no library: not an error for a dev box
        log.info("no NVML GPUs: %s", exc)
        return []
    return [
        GpuDevice(
            index=int(gpu.index),
            uuid=str(gpu.uuid),
            model=str(gpu.model).replace(" ", "-"),
            memory_mb=int(gpu.memory_mib or 0),
            simulated=False,
        )
        for gpu in host.ordered()
        if gpu.health.healthy
    ]


class GpuSlots:
    """Exclusive allocator over a fixed set of GPU devices, keyed by holder (a container or task)."""

    def __init__(self, devices: Sequence[GpuDevice]) -> None:
        self.devices = list(devices)
        self._by_index = {d.index: d for d in self.devices}
        self._available: list[int] = sorted(self._by_index)
        self._held: dict[str, list[int]] = {}

    @property
    def total(self) -> int:
        return len(self.devices)

    @property
    def available(self) -> int:
        return len(self._available)

    @property
    def simulated(self) -> bool:
        return all(d.simulated for d in self.devices)

    @property
    def model(self) -> str | None:
        return self.devices[0].model if self.devices else None

    def held(self, holder: str) -> list[int]:
        return list(self._held.get(holder, []))

    def holders(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self._held.items()}

    def allocate(self, holder: str, count: float) -> list[int]:
        """Give `holder` `count` more distinct indices (lowest first); raise if they are not free."""
        if count != int(count) or count < 0:
            raise GpuAllocationError("The 'gpus' resource must be an unsigned integer")
        wanted = int(count)
        if wanted == 0:
            return []
        if wanted > len(self._available):
            raise GpuAllocationError(f"Requested {wanted} gpus but only {len(self._available)} available")
        granted, self._available = self._available[:wanted], self._available[wanted:]
        self._held.setdefault(holder, []).extend(granted)
        return list(granted)

    def release(self, holder: str) -> list[int]:
        """Return every index `holder` holds to the pool (idempotent)."""
        freed = self._held.pop(holder, [])
        self._available = sorted(self._available + freed)
        return freed

    def release_container(self, container_id: str) -> None:
        """Release what a container holds: its own GPUs and those of its tasks (`<container>/<task>`)."""
        for holder in list(self._held):
            if holder == container_id or holder.startswith(container_id + "/"):
                self.release(holder)

    def check_invariants(self) -> None:
        """No index both free and held, none held twice, none lost."""
        held = [i for v in self._held.values() for i in v]
        assert len(held) == len(set(held)), f"GPU held twice: {held}"
        assert not set(held) & set(self._available), "GPU both held and free"
        assert sorted(held + self._available) == sorted(self._by_index), "GPU lost"


def visible_devices_env(indices: Sequence[int], real: bool) -> dict[str, str]:
    """The environment that emulates device isolation for a process holding `indices`.

    Real Mesos does NOT set these variables: its `gpu/nvidia` isolator restricts /dev/nvidia* with the
    devices cgroup. A process-based local agent has no cgroups, so it sets CUDA_VISIBLE_DEVICES and
    NVIDIA_VISIBLE_DEVICES to the allocated host indices (and PCI bus order so they match NVML's).
    """
    value = ",".join(str(i) for i in indices)
    env = {"CUDA_VISIBLE_DEVICES": value, "NVIDIA_VISIBLE_DEVICES": value if indices else "void"}
    if real:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    return env
