"""FGD, fragmentation gradient descent (pure): Q. Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC '23.

The paper's definition: a task m asks `cpus` and, per device, `gpu` thousandths of `devices` devices (a
share: `devices` 1 and `gpu` < 1000; whole GPUs: `gpu` 1000; a CPU task: `devices` 0). A node n has `cpus`
free and each GPU g has R_g thousandths free. The fragmentation of n measured by m, F_n(m), is
- every free GPU thousandth of n (sum of R_g) when m cannot run on n at all (too few cpus, or no GPU
  with R_g >= gpu for a share, or fewer than `devices` wholly free GPUs for whole GPUs);
- otherwise the free thousandths of the GPUs that cannot hold m's per-device need: the sum of R_g over
  g with R_g < min(gpu, 1000) (none for a CPU task).
Against a workload M (task shapes with their popularity p_m), F_n(M) = sum_m p_m F_n(m), and the
cluster's fragmentation is the sum over nodes. FGD places a task where F_n(M) grows least (its
gradient), over every node and every choice of device on it.

(The measure is defined here; the FGD placement strategy, `STACKS`, is built on it.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from mesos_gpu.core.placement.shares import ShareLedger, ShareStack
from mesos_gpu.core.placement.stack import PlacementStack
from mesos_gpu.core.placement.state import CapacityLedger

WHOLE = 1000


class TaskShape(NamedTuple):
    """One task shape of a workload: cpus (thousandths), GPU per device (thousandths; 1000 for whole
    GPUs, 0 for a CPU task) and devices (0 for a CPU task)."""

    cpus: int
    gpu: int
    devices: int


#: A workload: task shapes and their popularity (summing to 1).
Workload = Sequence[tuple[TaskShape, float]]


def task_fragmentation(cpus_free: int, gpus_free: Sequence[int], task: TaskShape) -> int:
    """F_n(m): the free GPU thousandths of a node (`cpus_free`, per-GPU `gpus_free`) `task` cannot use."""
    total = sum(gpus_free)
    if task.cpus > cpus_free:
        return total
    if task.devices == 0:
        return 0
    if task.gpu >= WHOLE:
        if sum(1 for free in gpus_free if free >= WHOLE) < task.devices:
            return total
        return sum(free for free in gpus_free if free < WHOLE)
    if not any(free >= task.gpu for free in gpus_free):
        return total
    return sum(free for free in gpus_free if free < task.gpu)


def node_fragmentation(cpus_free: int, gpus_free: Sequence[int], workload: Workload) -> float:
    """F_n(M): the expected free GPU thousandths of the node that a task drawn from `workload` cannot use."""
    return sum(p * task_fragmentation(cpus_free, gpus_free, task) for task, p in workload)


def ledger_nodes(capacity: CapacityLedger,
                 shares: ShareLedger | None = None) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Each GPU agent of a cycle's ledgers as (cpus free, free thousandths of each of its GPUs): its
    wholly free GPUs as 1000 each, and the free part of each of its share hosts' devices (an existing
    host of an agent not offered in the cycle is left out: its agent is not in the ledger)."""
    on: dict[int, list[int]] = {}
    if shares is not None:
        for device in shares.devices.values():
            if device.agent is not None:
                on.setdefault(device.agent.index, []).append(device.free)
    for agent in capacity.agents:
        if not agent.is_gpu:
            continue
        frees = [WHOLE] * (agent.gpus // WHOLE) + on.get(agent.index, [])
        yield agent.cpus, tuple(frees)


def cluster_fragmentation(nodes: Iterable[tuple[int, Sequence[int]]], workload: Workload) -> float:
    """The sum of F_n(M) over `nodes` ((cpus free, per-GPU free thousandths) each), in thousandths."""
    return sum(node_fragmentation(cpus, gpus, workload) for cpus, gpus in nodes)


#: The FGD strategy's stacks (for now the default's: the strategy itself is being written).
STACKS: tuple[type[PlacementStack], type[ShareStack]] = (PlacementStack, ShareStack)
