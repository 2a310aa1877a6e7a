"""Decline filters in step (pure): while jobs wait, every refusal ends on one shared grid.

While a job waits, the scheduler declines the offers it cannot use with a short filter
(`SchedulerState.refuse_seconds_pending`). Started at each offer's own moment, those filters end out of
step: an agent declined in one offer round comes back alone, is declined again, and so on, while another
agent keeps its own phase. Mesos' allocator offers an agent when its filter has ended and the next batch
allocation runs (`HierarchicalAllocatorProcess::expire` only drops the filter); a gang whose members
need free GPUs on two agents whose offers alternate is then never offered both at once (the long fault
soak saw 2 x 1-GPU gangs wait out its whole drain so). Ending every such filter at the next multiple of
the filter's length, on the scheduler's clock, puts the agents declined in different rounds back into one
round: the master's next batch after that instant offers them together.

Example::

    aligned_refuse(10.3, 2.0)   # 1.7: the filter ends at 12.0, as one set at 11.4 (0.6 s)
"""

from __future__ import annotations

import math

__all__ = ["aligned_refuse"]


def aligned_refuse(now: float, refuse: float) -> float:
    """The `refuse_seconds` that ends a filter set at `now` on the grid of multiples of `refuse`: the first
    grid instant at least `refuse / 2` away (so the filter lasts between `refuse / 2` and `1.5 * refuse`,
    `refuse` on average), in whole milliseconds. `refuse` itself when it is not a positive finite number,
    or `now` is not finite."""
    if not (math.isfinite(refuse) and refuse > 0 and math.isfinite(now)):
        return refuse
    end = math.ceil((now + refuse / 2) / refuse) * refuse
    return round(max(end - now, refuse / 2), 3)
