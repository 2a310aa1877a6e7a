"""GPU shares (pure): the contract between the job model, placement, the state machine and the share host.

Mesos hands out whole GPUs only, so a share (a fraction of one GPU) runs on a **share host**: an executor
of ours (`python3 -m isolator.sharehost`) whose ExecutorInfo holds one whole GPU taken from an offer.
Share tasks are launched to it (same ExecutorInfo, their own cpus/mem only); it runs each on its
device with the environment of its isolation level, and exits once it has had no task for
`linger_seconds` (its GPU then returns to Mesos). The scheduler keeps the ledger (what each host has
given) and stops placing on an empty host `LINGER_MARGIN_SECONDS` before it would exit.

Names here are shared by every side: agent attributes (written by `mesos-gpu-agent config`, read by
placement), the JSON payloads in ExecutorInfo.data / TaskInfo.data, the environment of a share task,
the labels of its TASK_RUNNING, and what each isolation level enforces (`STATEMENTS`), which every API
and CLI view of a task repeats. Fractions are kept in thousandths of a GPU ("milli"), memory in MB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.profiles import Profile

__all__ = [
    "ATTR_GPU_MEMORY", "ATTR_GPU_MIG", "ATTR_GPU_MPS", "DEFAULT_LINGER_SECONDS", "ENV_GPU_MEMORY_LIMIT",
    "ENV_GPU_SHARE", "ENV_ISOLATION", "LABEL_DEVICE", "LABEL_DEVICE_INDEX", "LABEL_ENFORCEMENT",
    "LABEL_GPU_MEMORY", "LABEL_ISOLATION", "LABEL_SHARE", "LABEL_SHARE_HOST", "LINGER_MARGIN_SECONDS",
    "MIG_SLICES", "SHARE_HOST_COMMAND", "SHARE_HOST_RESOURCES", "STATEMENTS", "MigProfile", "ShareGrant",
    "ShareHostView", "ShareHostViews", "ShareNeed", "device_labels", "milli", "parse_mig_layout", "statement",
]

# -- agent attributes (Mesos agent `--attributes`, written by `mesos-gpu-agent config`) -----------------
ATTR_GPU_MEMORY = "gpu_memory_mb"  # scalar: memory of each GPU of the agent, MB (GPUs of an agent alike)
ATTR_GPU_MPS = "gpu_mps"  # text "true" when the agent can run a CUDA MPS control daemon per GPU
ATTR_GPU_MIG = "gpu_mig"  # text: the MIG instances of each GPU, '/'-separated ("3g.40gb/2g.20gb/1g.10gb")

MIG_SLICES = 7  # compute slices of a MIG-capable GPU (A100, H100, H200); a profile "Ng.." is N/7 of it

# -- the share host ---------------------------------------------------------------------------------
SHARE_HOST_COMMAND = "python3 -m isolator.sharehost"
SHARE_HOST_RESOURCES = {"cpus": 0.1, "mem": 64.0}  # the executor's own, besides its one whole GPU
DEFAULT_LINGER_SECONDS = 30.0
LINGER_MARGIN_SECONDS = 5.0  # the scheduler stops placing on an empty host this long before it exits

# -- what a share task sees -----------------------------------------------------------------------------
ENV_ISOLATION = "MESOS_GPU_ISOLATION"  # the level ("capped", ...)
ENV_GPU_SHARE = "MESOS_GPU_SHARE"  # the fraction granted ("0.25")
ENV_GPU_MEMORY_LIMIT = "MESOS_GPU_MEMORY_LIMIT_MB"  # the memory granted, MB (the launcher tells TF)

# -- TASK_RUNNING labels the share host reports (and the scheduler shows) ---------------------------------
# LABEL_DEVICE and LABEL_DEVICE_INDEX are also sent for whole-GPU tasks by the local agent and the docker
# executor (`mesos_gpu.core.devicelabels`); a real Mesos agent's own executors send neither.
LABEL_DEVICE = "mesos-gpu/device"  # GPU UUID, or MIG-<uuid> for a MIG instance; several: comma-separated
LABEL_DEVICE_INDEX = "mesos-gpu/device-index"  # the GPUs' NVML indices, in LABEL_DEVICE's order
LABEL_SHARE = "mesos-gpu/share"  # fraction granted ("0.25")
LABEL_GPU_MEMORY = "mesos-gpu/gpu-memory"  # MB granted
LABEL_ISOLATION = "mesos-gpu/isolation"
LABEL_SHARE_HOST = "mesos-gpu/share-host"  # the executor id of the share host
LABEL_ENFORCEMENT = "mesos-gpu/enforcement"  # one sentence: what the share host enforces for this task


def milli(gpus: float) -> int:
    """A GPU amount in thousandths (0.25 -> 250), rounded to the nearest."""
    return round(gpus * 1000)


def device_labels(devices: Sequence[tuple[int | None, str | None]]) -> dict[str, str]:
    """The TASK_RUNNING labels naming a whole-GPU task's `devices` ((NVML index, UUID) each, None where
    unknown): LABEL_DEVICE and LABEL_DEVICE_INDEX, each only when known for every device. The scheduler
    reads them back with `core.devicelabels.devices_from_labels`."""
    labels: dict[str, str] = {}
    if devices and all(uuid for _, uuid in devices):
        labels[LABEL_DEVICE] = ",".join(str(uuid) for _, uuid in devices)
    if devices and all(index is not None for index, _ in devices):
        labels[LABEL_DEVICE_INDEX] = ",".join(str(index) for index, _ in devices)
    return labels


# ------------------------------------------------------------------------------------- statements
# Plain-command shares run inside the share host's own container: its devices cgroup holds the whole GPU
# and every share runs as the same uid, so for them `mig` is only CUDA_VISIBLE_DEVICES=MIG-<uuid> in the
# environment and `mps` limits are client-side variables a task can raise; an image share gets a Docker
# device request for exactly its device (its MIG instance), where hardware isolation holds. What holds
# for one task on its host is also reported in its TASK_RUNNING (LABEL_ENFORCEMENT).
STATEMENTS: dict[Isolation, dict[str, str]] = {
    Isolation.EXCLUSIVE: {
        "memory": "isolated: whole GPUs, no other task can open them",
        "compute": "isolated: whole GPUs",
        "faults": "isolated",
        "enforced_by": "Mesos GPU isolator (devices cgroup) or the Docker device request",
        "cost": "a whole GPU per task, however little it uses",
    },
    Isolation.MIG: {
        "memory": "isolated for image shares: the MIG instance's own memory (hardware); a plain command "
                  "only gets CUDA_VISIBLE_DEVICES=MIG-<uuid> and could open another instance or the "
                  "parent GPU",
        "compute": "isolated for image shares: the instance's own compute slices (hardware); a plain "
                   "command is only pointed at its instance by its environment",
        "faults": "isolated for image shares: a fault stays in its instance; a plain command is only pointed "
                  "at its instance by its environment",
        "enforced_by": "NVIDIA Multi-Instance GPU and a Docker device request for the instance (image shares "
                       "only); for a plain command only CUDA_VISIBLE_DEVICES, in the share host's container, "
                       "whose devices cgroup holds the whole GPU",
        "cost": "fixed sizes only (the partition's profiles); needs an A100/A30/H100-class GPU; hardware "
                "isolation needs an image",
    },
    Isolation.MPS: {
        "memory": "limited client-side: CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, an environment variable the "
                  "task can raise itself (a client that keeps it gets allocations beyond it refused)",
        "compute": "limited client-side: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, an environment variable the "
                   "task can raise itself",
        "faults": "NOT isolated: a fatal fault in one MPS client can affect every client on the GPU",
        "enforced_by": "CUDA MPS control daemon, one per share host GPU, with limits each client reads from "
                       "its own environment (an image share also gets a device request for its GPU only)",
        "cost": "CUDA programs only; one daemon per GPU; a task can raise its own limits",
    },
    Isolation.CAPPED: {
        "memory": "capped: a task over its share is killed by the share host's NVML watchdog, only where "
                  "NVML reports per-process memory (elsewhere NOT enforced, as the task's running status "
                  "says); a TensorFlow member is also told the limit (logical device memory limit)",
        "compute": "NOT isolated: time-sliced with the GPU's other tasks",
        "faults": "NOT isolated",
        "enforced_by": "the share host's NVML watchdog where NVML reports per-process memory (per-process "
                       "used memory, checked every second)",
        "cost": "a task over its memory share is killed, not throttled; the check runs every second",
    },
    Isolation.SHARED: {
        "memory": "NOT isolated: nothing enforced (the share is bookkeeping only)",
        "compute": "NOT isolated: time-sliced",
        "faults": "NOT isolated",
        "enforced_by": "nothing",
        "cost": "tasks can starve or crash each other",
    },
}


def statement(isolation: Isolation | str) -> dict[str, str]:
    """What an isolation level enforces and by what (a copy, with the level named)."""
    level = Isolation(isolation)
    return {"level": level.value, **STATEMENTS[level]}


# ----------------------------------------------------------------------------------------- MIG
_MIG_PROFILE = re.compile(r"^(\d)g\.(\d+)gb$")


@dataclass(frozen=True)
class MigProfile:
    """A MIG profile as NVML names it ("2g.20gb"): compute slices and memory."""

    name: str
    slices: int
    memory: int  # MB

    @property
    def gpus(self) -> int:
        """Its fraction of the GPU, in thousandths (slices / MIG_SLICES, rounded down)."""
        return self.slices * 1000 // MIG_SLICES

    @classmethod
    def parse(cls, name: str) -> MigProfile:
        match = _MIG_PROFILE.match(name.strip())
        if match is None or not 1 <= int(match.group(1)) <= MIG_SLICES:
            raise ValueError(f"not a MIG profile: {name!r} (expected e.g. 1g.10gb)")
        return cls(name.strip(), int(match.group(1)), int(match.group(2)) * 1024)


def parse_mig_layout(text: str) -> tuple[MigProfile, ...]:
    """The `gpu_mig` attribute ("3g.40gb/2g.20gb/1g.10gb") as profiles; ValueError when malformed or
    when the instances take more than the GPU's slices."""
    profiles = tuple(MigProfile.parse(part) for part in text.split("/") if part.strip())
    if sum(p.slices for p in profiles) > MIG_SLICES:
        raise ValueError(f"MIG layout {text!r} uses more than {MIG_SLICES} compute slices")
    return profiles


# ------------------------------------------------------------------------------ placement's contract
@dataclass(frozen=True)
class ShareNeed:
    """What a share task asks of placement: its level, the fraction (max and min, thousandths; equal
    unless elastic) and its GPU memory (MB; 0: not stated, counted as its fraction of the device)."""

    isolation: Isolation
    gpus: int
    gpus_min: int
    memory: int = 0

    @property
    def elastic(self) -> bool:
        return self.gpus_min < self.gpus


@dataclass(frozen=True)
class ShareHostView:
    """A share host the scheduler knows (input to placement): where, its level, the device's memory,
    what its running shares take, and whether it still takes new shares (False once it lingers past
    the cut-off). For MIG hosts, `mig_free` lists the instances not given yet (indexes into the agent's
    `gpu_mig` layout)."""

    host_id: str
    agent_id: str
    isolation: Isolation
    device_memory: int  # MB (0: unknown)
    used: int  # thousandths of the GPU given to shares
    used_memory: int  # MB given to shares
    accepting: bool = True
    mig_free: tuple[int, ...] = ()
    # A preemption closed it (`ShareHostRecord.closing`): it still holds its GPU but is already leaving.
    closing: bool = False


@dataclass(frozen=True)
class ShareGrant:
    """Placement's answer for one share task: the host (an existing one, or `new_host`: opened by this
    launch with one whole GPU of the offer), the level, the fraction and memory granted, and for MIG the
    instance (index into the agent's layout, and its profile name)."""

    host_id: str
    new_host: bool
    isolation: Isolation
    gpus: int  # thousandths granted (for MIG: the instance's fraction)
    memory: int  # MB granted (the cap for capped / mps; the instance's memory for mig)
    device_memory: int  # MB of the whole device (0: unknown)
    mig_index: int | None = None
    mig_profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "host": self.host_id, "isolation": self.isolation.value, "gpus": self.gpus / 1000,
            "gpu_memory": self.memory, "device_memory": self.device_memory,
        }
        if self.mig_index is not None:
            out["mig_index"] = self.mig_index
            out["mig_profile"] = self.mig_profile
        return out


class ShareHostViews(tuple[ShareHostView, ...]):
    """The share hosts placement is given, with the GPU profile in force (`mesos_gpu.core.profiles`; None:
    none): its agent groups keep GPUs of each agent for share hosts and cap the GPUs holding them
    (`mesos_gpu.core.placement.sharekeep`), offer levels and sizes, and the hosts that leave the share set
    take no new share (`mesos_gpu.core.profilesapply.draining`).
    A plain tuple of views is read as no profile."""

    profile: Profile | None

    def __new__(cls, views: Sequence[ShareHostView] = (), profile: Profile | None = None) -> ShareHostViews:
        made = super().__new__(cls, views)
        made.profile = profile
        return made
