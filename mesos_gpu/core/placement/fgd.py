"""FGD, fragmentation gradient descent (pure): Q. Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC '23.

The paper's definition: a task m asks `cpus` and, per device, `gpu` thousandths of `devices` devices (a
share: `devices` 1 and `gpu` < 1000; whole GPUs: `gpu` 1000; a CPU task: `devices` 0). A node n has `cpus`
free and each GPU g has R_g thousandths free. The fragmentation of n measured by m, F_n(m), is
- every free GPU thousandth of n (sum of R_g) when m cannot run on n (too few cpus, or fewer than
  `devices` GPUs with R_g >= gpu), and also for a CPU task (which can use none of the node's GPUs);
- otherwise the free thousandths of the GPUs that cannot hold m's per-device need: the sum of R_g over
  g with R_g < gpu.
Against a workload M (task shapes with their popularity p_m), F_n(M) = sum_m p_m F_n(m), and the
cluster's fragmentation is the sum over nodes. FGD places a task where F_n(M) grows least (its
gradient), over every node and every choice of device on it.

Checked against the paper's simulator (hkust-adsl/kubernetes-scheduler-simulator, `utils/frag.go`,
`NodeGpuShareFragAmount` summed except "Q3 satisfied"): the lead's first version counted 0 for a CPU task
whose cpus fit; the simulator counts all the node's free GPU for it ("XL satisfied" is not left out), so
that is the measure here. It changes F's value, not FGD's choices: a CPU task's term is the node's free
GPU whatever the placement, so it falls by the placed task's GPU on every candidate alike.

The workload: the paper measures against the target workload's distribution of task shapes (in its
simulator's experiments, the most popular shapes covering 95 % of the trace's pods, CPU pods included);
here the planner learns it online (`GangPlanner.sizes`,
a decaying histogram of the jobs it has seen, `TaskSizes.shapes`; CPU tasks are not counted, which, as
above, changes no choice). `STACKS` is the strategy; `Measure` computes F_n(M) in O(GPUs of the node)
with prefix tables over the shapes' cpus and sizes, memoised by node state (cpus, sorted frees).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from typing import NamedTuple

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement.demand import Needs, TaskDemand
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, FILTERS, SIMPLE_CHECK, Filter
from mesos_gpu.core.placement.fragmentation import FragmentationTable, TaskSizes
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.shares import Device, ShareChoice, ShareLedger, ShareStack, granted_memory
from mesos_gpu.core.placement.stack import OrderedCounts, PlacementStack
from mesos_gpu.core.placement.state import AgentState, CapacityLedger, JobContext
from mesos_gpu.core.sharing import ShareHostView

WHOLE = 1000
_MEMO_LIMIT = 500_000  # node states remembered per workload version
_WHOLES = tuple((WHOLE,) * n for n in range(65))


class TaskShape(NamedTuple):
    """One task shape of a workload: cpus (thousandths), GPU per device (thousandths; 1000 for whole
    GPUs, 0 for a CPU task) and devices (0 for a CPU task)."""

    cpus: int
    gpu: int
    devices: int


#: A workload: task shapes and their popularity (summing to 1).
Workload = Sequence[tuple[TaskShape, float]]
#: A node as the measure sees it: cpus free, and each GPU's free thousandths.
NodeState = tuple[int, tuple[int, ...]]


def task_fragmentation(cpus_free: int, gpus_free: Sequence[int], task: TaskShape) -> int:
    """F_n(m): the free GPU thousandths of a node (`cpus_free`, per-GPU `gpus_free`) `task` cannot use."""
    total = sum(gpus_free)
    if task.devices == 0 or task.cpus > cpus_free:
        return total
    if sum(1 for free in gpus_free if free >= task.gpu) < task.devices:
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


class Measure:
    """F_n(M) for one workload, fast: shapes grouped by cpus level, with cumulative masses by share size
    and by whole-GPU count, so a node's F takes one pass over its GPUs. Memoised by node state."""

    __slots__ = ("_cpu_only", "_gpu_mass", "_le", "_levels", "_memo", "_other", "_shares", "_whole")

    def __init__(self, workload: Workload) -> None:
        gpu_shapes = [(shape, p) for shape, p in workload if shape.devices and p > 0]
        self._cpu_only = sum(p for shape, p in workload if not shape.devices)
        self._other = [(shape, p) for shape, p in gpu_shapes if shape.gpu < WHOLE and shape.devices > 1]
        plain = [(shape, p) for shape, p in gpu_shapes if shape.gpu >= WHOLE or shape.devices == 1]
        self._levels = levels = sorted({shape.cpus for shape, _ in plain})
        most = max((shape.devices for shape, _ in plain if shape.gpu >= WHOLE), default=0)
        share_points = [0.0] * (WHOLE + 1)
        whole_points = [0.0] * (most + 1)
        by_level: dict[int, list[tuple[TaskShape, float]]] = {}
        for shape, p in plain:
            by_level.setdefault(shape.cpus, []).append((shape, p))
        self._shares = [list(share_points)]
        self._whole = [list(whole_points)]
        self._le = [0.0]
        for level in levels:
            mass = 0.0
            for shape, p in by_level[level]:
                if shape.gpu >= WHOLE:
                    whole_points[shape.devices] += p
                else:
                    share_points[max(shape.gpu, 1)] += p
                mass += p
            self._le.append(self._le[-1] + mass)
            self._shares.append(list(accumulate(share_points)))
            self._whole.append(list(accumulate(whole_points)))
        self._gpu_mass = self._le[-1]
        self._memo: dict[NodeState, float] = {}

    def node(self, cpus: int, frees: tuple[int, ...]) -> float:
        """F_n(M) of a node with `cpus` free and `frees` (each GPU's free thousandths, sorted ascending)."""
        key = (cpus, frees)
        found = self._memo.get(key)
        if found is not None:
            return found
        value = self._compute(cpus, frees)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = value
        return value

    def _compute(self, cpus: int, frees: tuple[int, ...]) -> float:
        total = sum(frees)
        if not total:
            return 0.0
        i = bisect_right(self._levels, cpus)
        value = total * (self._cpu_only + self._gpu_mass - self._le[i])
        row = self._shares[i]
        top_free = frees[-1]
        top = row[top_free]
        value += total * (row[WHOLE] - top)     # shares larger than every free part: all of it
        for free in frees:
            if free < top_free:
                value += free * (top - row[free])   # shares that fit elsewhere but not on this GPU
        whole_row = self._whole[i]
        full = len(frees) - bisect_right(frees, WHOLE - 1)
        value += total * whole_row[-1] - WHOLE * full * whole_row[min(full, len(whole_row) - 1)]
        for shape, p in self._other:
            value += p * task_fragmentation(cpus, frees, shape)
        return value


class Gradient:
    """The measure for the planner's current workload (`TaskSizes.shapes`), rebuilt when it moves, and
    each agent's node state over the cycle's ledgers."""

    def __init__(self, sizes: TaskSizes) -> None:
        self.sizes = sizes
        self._version = -1
        self.workload: Workload = ()
        self._measure = Measure(())
        self.on_agent: Mapping[int, Mapping[int, Device]] = {}

    def measure(self) -> Measure:
        """The measure against the workload seen so far (`workload`), rebuilt when it has moved."""
        if self._version != self.sizes.version:
            self._version = self.sizes.version
            self.workload = [(TaskShape(*shape), p) for shape, p in self.sizes.shapes()]
            self._measure = Measure(self.workload)
        return self._measure

    def frees(self, agent: AgentState) -> tuple[int, ...]:
        """The agent's GPUs' free thousandths, ascending: its share hosts' devices and its whole GPUs."""
        devices = self.on_agent.get(agent.index)
        whole = agent.gpus // WHOLE
        if not devices:
            return _WHOLES[whole] if whole < len(_WHOLES) else (WHOLE,) * whole
        return tuple(sorted([device.free for device in devices.values()] + [WHOLE] * whole))


def _passes(agent: AgentState, needs: Needs, job: JobContext, stack: PlacementStack,
            filters: tuple[Filter, ...]) -> bool:
    policy = stack.policy
    return all(check(agent, needs, job, policy) is None for check in filters)


class FgdStack(PlacementStack):
    """FGD for whole-GPU and CPU tasks: over every feasible agent, the one where F_n(M) grows least
    (ties: the first visited, i.e. fewest whole GPUs free first). A CPU task goes where the default puts
    it among CPU agents (F of a CPU agent is 0, so all tie); when it falls back to GPU agents, it goes to
    the healthy one whose F grows least (an unhealthy one only when no healthy one fits, as the default).
    Filters, reasons and the reason counts when nothing fits are the default stack's."""

    def __init__(self, ledger: CapacityLedger, policy: PlacementPolicy) -> None:
        super().__init__(ledger, policy)
        self.gradient = Gradient(TaskSizes())

    def use_fragmentation(self, table: FragmentationTable, free_on: Mapping[int, int]) -> None:
        super().use_fragmentation(table, free_on)
        self.gradient.sizes = table.sizes

    def select(self, task: TaskDemand, job: JobContext) -> tuple[AgentState | None, OrderedCounts]:
        needs = task.needs
        ledger = self.ledger
        if not needs.has_dynamic_constraints and self._memo_version == ledger.version:
            cached = self._memo.get(needs)     # the default's reasons, nothing placed since
            if cached is not None:
                return None, cached
        if not needs.gpus:
            agent, counts = super().select(task, job)
            if agent is None or not agent.is_gpu:
                return agent, counts
            # The default's order: healthy GPU agents, then unhealthy ones only when none of those fits.
            tiers: list[list[AgentState]] = [[a for bucket in ledger.gpu_buckets for a in bucket.values()],
                                             list(ledger.unhealthy.values())]
            filters = FILTERS
        else:
            tiers = [[a for bucket in ledger.gpu_buckets[needs.gpu_slots:] for a in bucket.values()]]
            filters = SIMPLE_CHECK if needs.is_simple else AFTER_GPU_FILTERS
        for candidates in tiers:
            best = self._least(candidates, needs, job, filters)
            if best is not None:
                return best, ()
        return super().select(task, job)

    def _least(self, candidates: Iterable[AgentState], needs: Needs, job: JobContext,
               filters: tuple[Filter, ...]) -> AgentState | None:
        """The feasible candidate whose F_n(M) grows least (filters run only on one that would win)."""
        gradient = self.gradient
        node = gradient.measure().node
        frees_of = gradient.frees
        take, cpus = needs.gpus // WHOLE, needs.cpus
        best: AgentState | None = None
        best_delta = 0.0
        for agent in candidates:
            if agent.cpus < cpus:
                continue
            frees = frees_of(agent)
            after = frees[:len(frees) - take] if take else frees
            delta = node(agent.cpus - cpus, after) - node(agent.cpus, frees)
            if (best is None or delta < best_delta) and _passes(agent, needs, job, self, filters):
                best, best_delta = agent, delta
        return best


class FgdShareStack(ShareStack):
    """FGD for GPU shares: over every existing share host's device with room (each distinct free value
    of an agent once) and every agent that can open a new host on a wholly free GPU, the placement
    where F_n(M) grows least. Ties: an existing device before a new host, then the fuller device, then
    the first visited. MIG and elastic shares go the default way (FGD has no notion of either)."""

    def __init__(self, capacity: CapacityLedger, stack: PlacementStack, policy: PlacementPolicy,
                 hosts: Sequence[ShareHostView] = (), table: FragmentationTable | None = None) -> None:
        super().__init__(capacity, stack, policy, hosts, table)
        if isinstance(self.stack, FgdStack):
            self.gradient = self.stack.gradient
        else:
            self.gradient = Gradient(self.table.sizes)
        self.gradient.on_agent = self.ledger.on_agent

    def select(self, task: TaskDemand, job: JobContext) -> tuple[ShareChoice | None, OrderedCounts]:
        need = task.share
        assert need is not None
        if need.isolation is Isolation.MIG or need.elastic:
            return super().select(task, job)
        found = self._least(task, job)
        if found is None:
            return super().select(task, job)
        agent, device = found
        if device is None:
            return self._new(agent, need), ()
        memory = granted_memory(need, need.gpus, device.device_memory)
        return ShareChoice(agent, device, need.gpus, memory, device.device_memory, None, None), ()

    def _least(self, task: TaskDemand, job: JobContext) -> tuple[AgentState, Device | None] | None:
        need = task.share
        assert need is not None
        gradient = self.gradient
        node = gradient.measure().node
        frees_of = gradient.frees
        size, needs = need.gpus, task.needs
        best: tuple[float, int, int] | None = None
        choice: tuple[AgentState, Device | None] | None = None
        for free, bucket in self.ledger.index.get(need.isolation, {}).items():
            if free < size:
                continue
            seen: set[int] = set()
            for device in bucket.values():
                agent: AgentState = device.agent  # type: ignore[assignment]  # indexed devices have one
                if agent.index in seen or agent.cpus < needs.cpus:
                    continue
                frees = frees_of(agent)
                cut = list(frees)
                cut[cut.index(free)] = free - size
                delta = node(agent.cpus - needs.cpus, tuple(sorted(cut))) - node(agent.cpus, frees)
                key = (delta, 0, free)
                if best is not None and key >= best:
                    seen.add(agent.index)
                    continue
                memory = granted_memory(need, size, device.device_memory)
                if device.device_memory and device.used_memory + memory > device.device_memory:
                    continue
                if self._fits(agent, needs, job) and self.ledger.profile_allows(agent, need, False):
                    best, choice = key, (agent, device)
                seen.add(agent.index)
        opener = self.opener(task).needs
        kept = self._kept_hosts(opener, job, size, node, frees_of)
        if kept is not None:    # a new host goes to a GPU the profile keeps for shares first
            if best is None or kept[0] < best:
                choice = (kept[1], None)
            return choice
        for agents in self.capacity.gpu_buckets[1:]:
            for state in agents.values():
                if state.cpus < opener.cpus:
                    continue
                whole = frees_of(state)
                opened = tuple(sorted((*whole[:-1], WHOLE - size)))
                delta = node(state.cpus - opener.cpus, opened) - node(state.cpus, whole)
                key = (delta, 1, WHOLE)
                if (best is None or key < best) and self._fits(state, opener, job):
                    best, choice = key, (state, None)
        return choice

    def _kept_hosts(self, opener: Needs, job: JobContext, size: int,
                    node: Callable[[int, tuple[int, ...]], float],
                    frees_of: Callable[[AgentState], tuple[int, ...]]
                    ) -> tuple[tuple[float, int, int], AgentState] | None:
        """The best new host on a GPU the profile keeps for shares (its key, its agent), as the other
        strategies open one there first; None when no GPU is kept or no agent with one fits. A kept GPU
        is out of the ledger (`sharekeep.KeptGpus`): it counts as wholly free before and after."""
        if self.kept is None:
            return None
        best: tuple[tuple[float, int, int], AgentState] | None = None
        for state in self.kept.agents():
            if state.cpus < opener.cpus or not self._fits(state, opener, job):
                continue
            whole = frees_of(state)
            before = tuple(sorted((*whole, WHOLE)))
            opened = tuple(sorted((*whole, WHOLE - size)))
            key = (node(state.cpus - opener.cpus, opened) - node(state.cpus, before), 1, WHOLE)
            if best is None or key < best[0]:
                best = (key, state)
        return best


#: The FGD strategy's stacks (`strategies.stacks_for` returns them for "fgd").
STACKS: tuple[type[PlacementStack], type[ShareStack]] = (FgdStack, FgdShareStack)
