"""Named placement strategies (pure): which feasible agent (and device, for a GPU share) a task goes to.

`PlacementPolicy.strategy` names one of `policy.STRATEGIES`; `stacks_for` gives the pair of stacks the
planner uses for it: a `PlacementStack` (whole-GPU and CPU tasks) and a `ShareStack` (GPU shares).
"default" is mesos-gpu's own pair; the published policies subclass it and replace the choice only, so
filters, failure reasons, gangs, the share ledger and its roll-back are the product's, for every policy.

(The published heuristics are defined below as they land; FGD lives in `placement.fgd`.)
"""

from __future__ import annotations

from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.shares import ShareStack
from mesos_gpu.core.placement.stack import PlacementStack

Stacks = tuple[type[PlacementStack], type[ShareStack]]

_DEFAULT: Stacks = (PlacementStack, ShareStack)
#: The published heuristics by name (filled in below).
HEURISTICS: dict[str, Stacks] = {}


def stacks_for(policy: PlacementPolicy) -> Stacks:
    """The (whole-task stack, share stack) classes of `policy.strategy`."""
    name = policy.strategy
    if name == "default":
        return _DEFAULT
    if name == "fgd":
        from mesos_gpu.core.placement import fgd  # late: fgd imports the stacks this module does
        return fgd.STACKS
    found = HEURISTICS.get(name)
    if found is None:
        raise ValueError(f"placement strategy {name!r} is not implemented")
    return found
