"""What an agent's GPUs offer GPU shares (pure): device memory, CUDA MPS, the MIG layout, read from the
agent attributes `mesos-gpu-agent config` writes (`sharing.ATTR_GPU_MEMORY`, `ATTR_GPU_MPS`,
`ATTR_GPU_MIG`); and `share_capable`, the filter that keeps a share host off an agent that cannot run
the share's isolation level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import reasons
from mesos_gpu.core.placement.demand import Needs
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.state import AgentState, JobContext
from mesos_gpu.core.sharing import (
    ATTR_GPU_MEMORY,
    ATTR_GPU_MIG,
    ATTR_GPU_MPS,
    MigProfile,
    ShareNeed,
    parse_mig_layout,
)


class ShareCaps(NamedTuple):
    """What an agent's GPUs offer shares, from its attributes."""

    device_memory: int  # MB (0: unknown)
    mps: bool
    mig: tuple[MigProfile, ...]


_NO_CAPS = ShareCaps(0, False, ())


def caps_of(agent: AgentState) -> ShareCaps:
    """The agent's share capabilities (parsed once per cycle; a malformed attribute offers nothing)."""
    caps = agent.share_caps
    if isinstance(caps, ShareCaps):
        return caps
    attributes = agent.attributes
    if not attributes or not (ATTR_GPU_MEMORY in attributes or ATTR_GPU_MPS in attributes
                              or ATTR_GPU_MIG in attributes):
        found = _NO_CAPS
    else:
        try:
            memory = max(0, int(float(attributes.get(ATTR_GPU_MEMORY, "0"))))
        except ValueError:
            memory = 0
        try:
            mig = parse_mig_layout(attributes.get(ATTR_GPU_MIG, ""))
        except ValueError:
            mig = ()
        found = ShareCaps(memory, attributes.get(ATTR_GPU_MPS, "").strip().lower() == "true", mig)
    agent.share_caps = found
    return found


def smallest_instance(layout: Sequence[MigProfile], free: Iterable[int], need: ShareNeed) -> int | None:
    """The index of the smallest free MIG instance that holds the share (compute and memory), or None."""
    best: int | None = None
    for index in free:
        profile = layout[index]
        if profile.gpus < need.gpus_min or profile.memory < need.memory:
            continue
        if best is None or (profile.slices, profile.memory) < (layout[best].slices, layout[best].memory):
            best = index
    return best


def share_capable(agent: AgentState, needs: Needs, job: JobContext, policy: PlacementPolicy) -> str | None:
    """Opening a share host: the agent offers the share's level (`mps`: gpu_mps; `mig`: an instance that
    holds it; a MIG-mode agent (`gpu_mig`) takes `mig` shares only) and, when it states memory, GPUs
    with that much (when known). Passes any other demand."""
    need = needs.share
    if need is None:
        return None
    caps = caps_of(agent)
    if need.isolation is Isolation.MIG:
        if smallest_instance(caps.mig, range(len(caps.mig)), need) is None:
            return reasons.no_mig_instance(need.gpus_min)
        return None
    if caps.mig:
        # The agent's GPUs are partitioned: CUDA runs only in their MIG instances, never on the parent
        # GPU a capped, shared or mps share would be given.
        return reasons.MIG_MODE
    if need.isolation is Isolation.MPS and not caps.mps:
        return reasons.NO_MPS
    if need.memory and caps.device_memory and need.memory > caps.device_memory:
        return reasons.gpu_memory_short(need.memory)
    return None
