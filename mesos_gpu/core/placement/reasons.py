"""Named reasons (pure): why an agent was filtered out, the "0/5 agents fit: ..." summary, and for a gang
how many of its members fit where ("1 of 2 members fit (on S1); j.worker-1 needs 1 more GPU ...")."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

HELD = "held for a waiting job"
GPU_AGENT_RESERVED = "gpu agent reserved for gpu work"
UNHEALTHY_GPUS = "unhealthy gpus"
INSUFFICIENT_GPUS = "insufficient gpus"
INSUFFICIENT_CPUS = "insufficient cpus"
INSUFFICIENT_MEM = "insufficient mem"
INSUFFICIENT_DISK = "insufficient disk"
INSUFFICIENT_PORTS = "insufficient ports"

#: Every fixed reason, in the order the filters run. Constraint and named-scalar reasons are built.
FIXED_REASONS = (
    HELD,
    GPU_AGENT_RESERVED,
    UNHEALTHY_GPUS,
    INSUFFICIENT_GPUS,
    INSUFFICIENT_CPUS,
    INSUFFICIENT_MEM,
    INSUFFICIENT_DISK,
    INSUFFICIENT_PORTS,
)


def insufficient(name: str) -> str:
    """The reason for a resource that is short: `insufficient fpgas`."""
    return f"insufficient {name}"


def insufficient_gpus_held(gpus: int) -> str:
    """Insufficient gpus, where empty share hosts on those agents hold `gpus` whole GPUs that Mesos gets
    back when each host's linger ends: `insufficient gpus (1 gpu held by an empty share host, ...)`."""
    if gpus == 1:
        held = "1 gpu held by an empty share host, returned to mesos when its linger ends"
    else:
        held = f"{gpus} gpus held by empty share hosts, returned to mesos when their linger ends"
    return f"{INSUFFICIENT_GPUS} ({held})"


def gpus_text(milli: int) -> str:
    """A GPU amount in thousandths as reasons write it: 500 -> "0.5"."""
    return f"{milli / 1000:g}"


def no_share_room(milli: int) -> str:
    """A share finds neither a share host with room on the agent nor a whole GPU to open one."""
    return f"no whole gpu or share host with {gpus_text(milli)} gpu free"


NO_MPS = "no gpu mps"
MIG_MODE = "gpus in mig mode (mig shares only)"  # CUDA cannot run on the parent of a MIG-mode GPU


def no_mig_instance(milli: int) -> str:
    """A `mig` share: the agent's MIG layout has no (free) instance of that size."""
    return f"no mig instance of {gpus_text(milli)} gpu"


def gpu_memory_short(mb: int) -> str:
    """The agent's GPUs have less memory than the share states."""
    return f"gpu memory under {mb} mb"


def constraint_reason(operator: str, field: str) -> str:
    """The reason for a failed constraint: `constraint UNIQUE hostname`."""
    return f"constraint {operator} {field}"


def ordered_counts(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Reasons by count, largest first, ties by name: the order the summary prints them."""
    present = ((reason, n) for reason, n in counts.items() if n)
    return tuple(sorted(present, key=lambda item: (-item[1], item[0])))


def summarize(fit: int, agents: int, counts: Iterable[tuple[str, int]]) -> str:
    """`0/5 agents fit: 3 insufficient gpus, 2 constraint UNIQUE hostname`."""
    if isinstance(counts, tuple):
        return _summarize_cached(fit, agents, counts)
    return _summarize(fit, agents, counts)


@functools.lru_cache(maxsize=4096)
def _summarize_cached(fit: int, agents: int, counts: tuple[tuple[str, int], ...]) -> str:
    # Waiting jobs of one cycle share a few reason tuples: thousands of identical summaries.
    return _summarize(fit, agents, counts)


def _summarize(fit: int, agents: int, counts: Iterable[tuple[str, int]]) -> str:
    parts = ", ".join(f"{n} {reason}" for reason, n in counts)
    head = f"{fit}/{agents} agents fit"
    return f"{head}: {parts}" if parts else head


def gang_text(task_id: str, members: int, placed: tuple[str, ...], short: int) -> str:
    """How far a gang got before `task_id` failed: `1 of 2 members fit (on S1); j.worker-1 needs 1 more GPU
    than any agent has free`. `placed`: the agent of each member placed before it; `short`: the GPUs
    (thousandths) the failing member needs beyond the most any agent had free then (0: not a GPU
    shortfall)."""
    head = f"{len(placed)} of {members} members fit"
    if placed:
        where = list(dict.fromkeys(placed))
        more = f" and {len(where) - 3} more" if len(where) > 3 else ""
        head += f" (on {', '.join(where[:3])}{more})"
    if short > 0:
        plural = "" if short <= 1000 else "s"
        return f"{head}; {task_id} needs {gpus_text(short)} more GPU{plural} than any agent has free"
    return f"{head}; {task_id} does not fit"
