"""GPU slots of a local agent: the emulation of Mesos' `gpu/nvidia` isolator allocator, and the
simulated GPUs' sharing capabilities (memory, MIG layout, MPS).

k distinct indices per holder, never shared while held, released explicitly (at the terminal state).
A simulated agent also describes its GPUs to the processes it starts as a fake NVML inventory
(`fake_nvml_env`: isolator.fakenvml reads it), so the share host and its watchdog see the same devices
(same UUIDs, memory, MIG instances) as the agent's attributes announce. An agent passes its id as the
fake NVML's `seed`, so no two agents of a local cluster offer a GPU of the same UUID.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesos_gpu.core.sharing import (
    ATTR_GPU_MEMORY,
    ATTR_GPU_MIG,
    ATTR_GPU_MPS,
    device_labels,
    parse_mig_layout,
)

log = logging.getLogger(__name__)

SIMULATED_GPU_MODEL = "Simulated-GPU"
DEFAULT_GPU_MEMORY_MB = 16384

# What isolator.fakenvml reads (isolator.executorconfig: MESOS_GPU_FAKE_GPUS is the `--fake-gpus` SPEC).
ENV_FAKE_GPUS = "MESOS_GPU_FAKE_GPUS"
# The directory where a process declares its simulated GPU memory use (a file named by its pid holding
# "<device uuid> <MiB>"), which the fake NVML reports as the process's used memory (the share host's
# watchdog reads it): isolator.fakenvml.PROCESSES_ENV.
ENV_FAKE_NVML_DIR = "MESOS_GPU_FAKE_GPU_PROCESSES"

# Mesos' grammar of an attribute's name and text value (docs/attributes-resources.md: text :
# [a-zA-Z0-9_/.-]); an agent given anything else is refused at start.
_ATTRIBUTE_TEXT = re.compile(r"^[A-Za-z0-9_/.-]+$")


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
    seed: str = ""  # a simulated GPU's fake NVML seed (its agent's id): part of its UUID


def simulated_devices(
    count: int, model: str = SIMULATED_GPU_MODEL, memory_mb: int = DEFAULT_GPU_MEMORY_MB, seed: str = ""
) -> list[GpuDevice]:
    """`count` simulated GPUs of `memory_mb` each, with the UUIDs the fake NVML gives the same indices
    and `seed` (the agent's id: unique per agent; stable in every process that reads `fake_nvml_env`)."""
    if count < 0:
        raise GpuAllocationError("The 'gpus' resource must be an non-negative integer")
    uuids = _fake_uuids(count, memory_mb, seed)
    return [
        GpuDevice(index=i, uuid=uuids[i], model=model, memory_mb=memory_mb, seed=seed) for i in range(count)
    ]


def _fake_uuids(count: int, memory_mb: int, seed: str = "") -> list[str]:
    """The UUIDs isolator.fakenvml gives `count` GPUs (its own scheme, read from it)."""
    if count == 0:
        return []
    try:
        fakenvml = importlib.import_module("isolator.fakenvml")
        spec = fake_spec(count, memory_mb, seed=seed)
        return [str(gpu.uuid) for gpu in fakenvml.parse_fake_spec(spec).gpus]
    except (ImportError, ValueError, AttributeError) as exc:  # the isolator package is not installed
        log.info("simulated GPU UUIDs without isolator.fakenvml: %s", exc)
        tag = f"{zlib.crc32(seed.encode()):08x}" if seed else "00000000"
        return [f"GPU-{tag}-0000-0000-0000-{i:012d}" for i in range(count)]


@dataclass(frozen=True)
class GpuSharing:
    """What an agent's GPUs can do for shares, as announced in its attributes (core.sharing names):
    the memory of each GPU (MB), the MIG layout every GPU is partitioned into ("" when none, else
    "3g.40gb/2g.20gb/..."), and whether a CUDA MPS daemon can run on them."""

    memory_mb: int = DEFAULT_GPU_MEMORY_MB
    mig: str = ""
    mps: bool = False

    def __post_init__(self) -> None:
        if self.memory_mb <= 0:
            raise ValueError(f"GPU memory must be a positive number of MB, not {self.memory_mb}")
        if self.mig and self.mps:
            raise ValueError(
                "MPS is simulated only on GPUs not in MIG mode (as `mesos-gpu-agent config` announces "
                "gpu_mps only then): give --mig or --mps, not both"
            )
        if self.mig:
            profiles = parse_mig_layout(self.mig)  # ValueError when malformed or over 7 slices
            if not profiles:
                raise ValueError(f"MIG layout {self.mig!r} names no instance")
            largest = max(p.memory for p in profiles)
            if sum(p.memory for p in profiles) > self.memory_mb or largest > self.memory_mb:
                raise ValueError(
                    f"MIG layout {self.mig!r} needs more memory than a GPU of {self.memory_mb} MB has"
                )

    @property
    def layout(self) -> str:
        """The MIG layout as written in the attribute (profiles joined by '/', no spaces)."""
        return "/".join(p.name for p in parse_mig_layout(self.mig)) if self.mig else ""

    def attributes(self, devices: Sequence[GpuDevice]) -> dict[str, str | float]:
        """The agent attributes for these devices (none without GPUs), as `mesos-gpu-agent config`
        writes them on a real agent: gpu_memory_mb (a scalar: the smallest device's memory, else this
        setting), gpu_mps ("true" or "false") and gpu_mig (when partitioned)."""
        if not devices:
            return {}
        memories = [d.memory_mb for d in devices if d.memory_mb > 0]
        memory = min(memories) if memories else self.memory_mb
        attrs: dict[str, str | float] = {
            ATTR_GPU_MEMORY: float(memory),
            ATTR_GPU_MPS: "true" if self.mps else "false",
        }
        if self.mig:
            attrs[ATTR_GPU_MIG] = self.layout
        return attrs


def fake_spec(count: int, memory_mb: int, sharing: GpuSharing | None = None, seed: str = "") -> str:
    """The `--fake-gpus` SPEC (isolator.fakenvml) of an agent's `count` simulated GPUs (`seed`: its
    agent's id, mixed into the UUIDs)."""
    spec = f"{count}x{SIMULATED_GPU_MODEL}@{memory_mb}M" if count else "0"
    options = [f"seed={seed}"] if seed else []
    if sharing is not None and sharing.mig:
        options.append(f"mig={sharing.layout}")
    if sharing is not None and sharing.mps:
        options.append("mps")
    return ";".join([spec, *options])


def fake_nvml_env(
    devices: Sequence[GpuDevice], sharing: GpuSharing, state_dir: Path | None
) -> dict[str, str]:
    """What a process holding simulated GPUs needs to see them through the fake NVML: the whole agent's
    inventory (NVML lists every GPU of the host; the visible-devices variables name the process's own)
    and, when given, the agent's directory where processes declare their GPU memory use."""
    if not devices or not all(d.simulated for d in devices):
        return {}
    env = {ENV_FAKE_GPUS: fake_spec(len(devices), devices[0].memory_mb, sharing, devices[0].seed)}
    if state_dir is not None:
        env[ENV_FAKE_NVML_DIR] = str(state_dir)
    return env


def check_attributes(attributes: Mapping[str, str | float]) -> None:
    """ValueError for an attribute name or text value outside Mesos' attribute grammar."""
    for name, value in attributes.items():
        if not _ATTRIBUTE_TEXT.match(name):
            raise ValueError(f"agent attribute name {name!r} is not of [a-zA-Z0-9_/.-]")
        if isinstance(value, str) and not _ATTRIBUTE_TEXT.match(value):
            raise ValueError(f"agent attribute {name}:{value!r}: a text value must be of [a-zA-Z0-9_/.-]")


class NvmlUnavailableError(Exception):
    """The host's GPUs cannot be listed: no NVML library, no driver (the text is NVML's message)."""


def host_devices(backend: Any = None) -> list[GpuDevice]:
    """The host's healthy GPUs through isolator.nvml: the NVML `backend` given, else the fake NVML of
    MESOS_GPU_FAKE_GPUS when set (as the share host reads it), else the real one.
    NvmlUnavailableError, with NVML's message, when NVML or a driver is absent."""
    try:
        nvml = importlib.import_module("isolator.nvml")  # the only home of pynvml
    except ImportError as exc:
        message = f"NVML is unavailable: the isolator package is not installed ({exc})"
        raise NvmlUnavailableError(message) from exc
    if backend is None and os.environ.get(ENV_FAKE_GPUS):
        backend = importlib.import_module("isolator.fakenvml").parse_fake_spec(os.environ[ENV_FAKE_GPUS])
    try:
        host = nvml.discover(backend if backend is not None else nvml.real_backend())
    except Exception as exc:  # no driver, no library
        text = str(exc)
        raise NvmlUnavailableError(text if "NVML" in text else f"NVML is unavailable: {text}") from exc
    return [
        GpuDevice(
            index=int(gpu.index),
            uuid=str(gpu.uuid),
            model=re.sub(r"[^A-Za-z0-9_/.-]", "-", str(gpu.model)),  # a valid attribute text
            memory_mb=int(gpu.memory_mib or 0),
            simulated=False,
        )
        for gpu in host.ordered()
        if gpu.health.healthy
    ]


def nvml_devices(backend: Any = None) -> list[GpuDevice]:
    """`host_devices`, or [] when NVML or a driver is absent (not an error for a dev box)."""
    try:
        return host_devices(backend)
    except NvmlUnavailableError as exc:
        log.info("no NVML GPUs: %s", exc)
        return []


def split_devices(devices: Sequence[GpuDevice], agents: int) -> list[list[GpuDevice]]:
    """The host's `devices` shared out between `agents` agents of one machine, each device to exactly
    one agent (as each GPU of a real cluster belongs to one agent): consecutive blocks, the first agents
    taking one more when they do not divide evenly (and the only ones when fewer devices than agents)."""
    share, extra = divmod(len(devices), agents)
    parts: list[list[GpuDevice]] = []
    start = 0
    for i in range(agents):
        end = start + share + (1 if i < extra else 0)
        parts.append(list(devices[start:end]))
        start = end
    return parts


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

    def device_labels(self, indices: Sequence[int]) -> dict[str, str]:
        """The TASK_RUNNING labels naming the devices of `indices` (their UUIDs, as the fake NVML or
        NVML gives them, and the indices): `core.devicelabels`."""
        return device_labels([(i, self._by_index[i].uuid if i in self._by_index else None) for i in indices])

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
