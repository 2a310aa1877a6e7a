"""The named placement configurations `mesos-gpu simulate` compares (each a `PlacementPolicy`).

Every case is the product's own planner with one policy; the published ones are cited where they are
defined (`core.placement.strategies`, `core.placement.fgd`). "fifo-first-fit" is the baseline of the
replay in time: strict FIFO (no backfill) with first fit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mesos_gpu.core.placement import PlacementPolicy


@dataclass(frozen=True)
class PolicyCase:
    """A named placement configuration: `strategy` and `backfill` of a `PlacementPolicy`."""

    name: str
    strategy: str
    description: str
    backfill: bool = True

    def policy(self, *, seed: int = 0, cpu_fallback: bool = True) -> PlacementPolicy:
        """The `PlacementPolicy` of this case (CPU tasks may use GPU agents when `cpu_fallback`)."""
        return PlacementPolicy(strategy=self.strategy, backfill=self.backfill, seed=seed,
                               cpu_tasks_on_gpu_agents=cpu_fallback)

    def with_backfill(self, backfill: bool) -> PolicyCase:
        return dataclasses.replace(self, backfill=backfill)


CASES: tuple[PolicyCase, ...] = (
    PolicyCase("random", "random", "a feasible agent (and device) drawn uniformly at random"),
    PolicyCase("first-fit", "first-fit", "the first feasible agent in node-list order"),
    PolicyCase("best-fit", "best-fit", "the feasible agent with the least left after placement"),
    PolicyCase("worst-fit", "worst-fit", "the feasible agent with the most left after placement (spread)"),
    PolicyCase("tetris", "tetris", "the highest dot product of demand and free resources (Grandl et al., "
               "SIGCOMM '14)"),
    PolicyCase("gpu-packing", "gpu-packing", "GPUs in use first, then idle GPUs of busy nodes, then idle "
               "nodes (FGD's GpuPacking baseline)"),
    PolicyCase("fgd", "fgd", "fragmentation gradient descent (Weng et al., USENIX ATC '23)"),
    PolicyCase("default", "default", "mesos-gpu's default placement"),
)
#: Strict FIFO first fit without backfill: the replay's baseline.
FIFO_FIRST_FIT = PolicyCase("fifo-first-fit", "first-fit", "strict FIFO, first fit, no backfill",
                            backfill=False)
BY_NAME: dict[str, PolicyCase] = {case.name: case for case in (*CASES, FIFO_FIRST_FIT)}
