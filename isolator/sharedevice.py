"""The share host's one GPU (`find_device`): which GPU Mesos gave it (the devices cgroup, else
NVIDIA_/CUDA_VISIBLE_DEVICES, as `isolator.devices` finds it), what NVML says of it (uuid, memory, MIG
instances) and whether NVML reports per-process used memory there (probed once, at start: the capped
level's watchdog depends on it, and the host says so in each task's TASK_RUNNING when it does not).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from isolator.allocator import ExclusiveGpuAllocator, ProcessProbe
from isolator.devices import DeviceSelector, GpuInventory, GpuSelectionError
from isolator.discovery import NvmlError
from isolator.executorconfig import ExecutorConfig
from isolator.sharenvml import GpuSharing, MigInstance, ShareNvml, sharing_facts

log = logging.getLogger("isolator.sharehost")


@dataclass(frozen=True)
class ShareDevice:
    """The host's GPU: its id (uuid, or what the agent named when NVML does not know it), its memory
    and MIG instances, and whether NVML answers for it (the watchdog needs it)."""

    id: str
    index: int | None = None
    memory_mib: int = 0
    mig: tuple[MigInstance, ...] = ()
    nvml: bool = False
    process_memory: bool = False  # NVML reports per-process used memory (probed once at start)


def find_device(
    config: ExecutorConfig,
    env: Mapping[str, str],
    inventory: GpuInventory,
    backend: ShareNvml | None,
    device_memory: int = 0,
) -> tuple[ShareDevice | None, str, bool]:
    """(the device or None, why not, whether NVML was opened and left open for the watchdog).
    `device_memory`: the agent's attribute, used when NVML does not know the GPU."""
    allocator = lambda devices: ExclusiveGpuAllocator(  # noqa: E731
        config.allocator_state, devices, holder_probes=(ProcessProbe(),)
    )
    selector = DeviceSelector(config.gpu_source, env, inventory, allocator, config.cgroup_paths)
    try:
        grant = selector.select(1, config.owner("share-host"))
    except GpuSelectionError as exc:
        return None, f"cannot tell which GPU Mesos gave this share host: {exc}", False
    device_id = grant.devices[0]
    gpu: GpuSharing | None = None
    nvml_open = False
    if backend is not None:
        try:
            gpu = sharing_facts(backend).by_id(device_id)
            backend.init()  # kept open for the watchdog and the MPS check
            nvml_open = True
        except NvmlError as exc:
            log.warning("no NVML for GPU %s: %s", device_id, exc)
    if gpu is None or backend is None:
        return ShareDevice(device_id, memory_mib=device_memory), "", nvml_open
    memory = process_memory(backend, gpu.index)
    return ShareDevice(gpu.uuid, gpu.index, gpu.memory_mib, gpu.mig, True, memory), "", nvml_open


def process_memory(backend: ShareNvml, index: int) -> bool:
    """Whether NVML reports per-process used memory on GPU `index` (asked once, at start)."""
    try:
        running = backend.running_processes(index)
    except NvmlError as exc:
        log.warning("NVML lists no processes of GPU %d (%s): capped memory is not enforced", index, exc)
        return False
    if any(process.used_bytes is None for process in running):
        log.warning("NVML does not report per-process memory on GPU %d: capped memory is not enforced", index)
        return False
    return True
