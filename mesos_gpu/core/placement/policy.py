"""Placement policy (pure): the operator's switches and the scorers' weights, one frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Where new share hosts open (`PlacementPolicy.share_hosts`).
SHARE_HOST_PLACEMENTS = ("pack", "spread")

#: Named placement strategies (`PlacementPolicy.strategy`; each documented in `placement.strategies`).
#: "default" is mesos-gpu's own; the others are the published policies `mesos-gpu simulate` compares.
STRATEGIES = ("default", "random", "first-fit", "best-fit", "worst-fit", "tetris", "gpu-packing", "fgd")


def _default_weights() -> Mapping[str, float]:
    # Spreading parameter servers outweighs packing: two ps of a job on one agent share its NIC.
    return MappingProxyType({"gpu_binpack": 1.0, "ps_spread": 2.0, "job_locality": 1.0})


@dataclass(frozen=True)
class PlacementPolicy:
    """How placement behaves; the defaults follow DESIGN section 5.

    `cpu_tasks_on_gpu_agents`: a CPU-only task may go to a GPU agent when no CPU agent fits (Marathon's
    "restricted" default is False: GPU agents are kept for GPU work).
    `candidate_limit`: how many feasible agents are scored per task (Nomad's LimitIterator); candidates
    are visited in GPU best-fit order, so a small limit keeps the packing while bounding the work.
    `cpu_aware_gpu_fit`: a lone GPU task goes, in GPU best-fit order, to the first agents whose free GPU
    it does not strand behind their cpus (after FGD's cpu-aware fragmentation; `stack._unstranded`);
    False: plain GPU best fit.
    `share_hosts`: where a GPU share opens a new share host (one whole GPU) when no existing host has
    room. "pack" (the default): GPU best fit with FGD's fragmentation score, so agents with whole GPUs
    free stay free for multi-GPU tasks. "spread": Tetris' alignment score (Grandl et al., SIGCOMM '14)
    over the agents with the most whole GPUs free, so share hosts go where cpus and GPUs are both
    plentiful: more small tasks fit in a full cluster, at the cost of multi-GPU tasks, which then find
    fewer whole agents (measured on the openb trace: benchmarks/sharing.py).
    `strategy`: which agent (and device, for a share) a feasible task goes to: "default" (the above),
    or one of the published policies in `STRATEGIES` (`placement.strategies`), which replace the choice
    only: filters, reasons, gangs and the share ledger are the same. `seed`: for "random".
    `backfill`: jobs behind one that waits may be placed in the same cycle (the default); False is
    strict FIFO: once a job in priority order waits, the jobs after it wait too (`core.scheduling`).
    """

    cpu_tasks_on_gpu_agents: bool = False
    gpu_model_attribute: str = "gpu_model"
    gpu_health_attribute: str = "gpu_health"
    unhealthy_gpus_attribute: str = "unhealthy_gpus"
    locality_attribute: str = "rack"
    candidate_limit: int = 4
    cpu_aware_gpu_fit: bool = True
    share_hosts: str = "pack"
    strategy: str = "default"
    seed: int = 0
    backfill: bool = True
    weights: Mapping[str, float] = field(default_factory=_default_weights)

    def __post_init__(self) -> None:
        if self.candidate_limit < 1:
            raise ValueError(f"candidate_limit must be at least 1, got {self.candidate_limit}")
        if self.share_hosts not in SHARE_HOST_PLACEMENTS:
            raise ValueError(f"share_hosts must be one of {', '.join(SHARE_HOST_PLACEMENTS)}, "
                             f"got {self.share_hosts!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if any(weight < 0 for weight in self.weights.values()):
            raise ValueError(f"scorer weights must not be negative: {dict(self.weights)}")
