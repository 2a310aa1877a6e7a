"""Fill the cluster (FGD's protocol, Weng et al., USENIX ATC '23): tasks drawn from the trace with
replacement, placed one by one in one placement cycle on the whole cluster through the product's own
planner, no departures, until the arrived GPU demand reaches `max_arrived` of the cluster's GPUs.

Every 1 % of arrived demand the run samples the GPU unallocated (capacity minus the GPU demand of the
tasks placed) and the GPU fragmented (`fgd.cluster_fragmentation` over `fgd.ledger_nodes`, against the
trace's own workload), both as % of the capacity. Each (policy, seed) run is independent: the draw comes
from `random.Random(seed)` alone, so every policy sees the same tasks for a seed, and runs can go to
worker processes with results identical to a serial run.
"""

from __future__ import annotations

import math
import os
import random
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from typing import Any, NamedTuple

from mesos_gpu.core.placement import AgentSlot, GangPlanner, OfferView, PlacementCycle, Plan, fgd
from mesos_gpu.sim import report
from mesos_gpu.sim.policies import PolicyCase
from mesos_gpu.sim.pool import worker_pool
from mesos_gpu.sim.trace import NO_GPU, TraceTask

WHOLE = 1000
Progress = Callable[[int, int], None]


class Sample(NamedTuple):
    """The cluster once arrived GPU demand reached `arrived_pct` % of the capacity (just after the task
    whose arrival took it there): GPU unallocated and fragmented as % of the capacity, tasks so far."""

    arrived_pct: int
    unallocated_pct: float
    fragmented_pct: float
    arrived: int
    placed: int
    failed: int


@dataclass(frozen=True)
class SeedRun:
    """One policy's fill with one seed: the samples (one per 1 % of arrived demand, from 0 %), and the
    seconds it took (of which `fragmentation_seconds` measuring the fragmentation)."""

    policy: str
    seed: int
    samples: tuple[Sample, ...]
    seconds: float
    fragmentation_seconds: float

    def at(self, pct: int) -> Sample:
        """The sample at `pct` % arrived."""
        sample = self.samples[pct]
        assert sample.arrived_pct == pct
        return sample


@dataclass(frozen=True)
class FillResult:
    """Every run of `fill`: by policy (in the order of the cases), one `SeedRun` per seed."""

    cases: tuple[PolicyCase, ...]
    seeds: tuple[int, ...]
    capacity_gpus: float
    nodes: int
    tasks: int
    shapes: int
    max_arrived_pct: int
    cpu_fallback: bool
    runs: dict[str, tuple[SeedRun, ...]]
    wall_seconds: float = 0.0
    workers: int = 1

    @property
    def headline_pct(self) -> int:
        """Where the headline figures are read: 100 % arrived (or the last sample, if the run stops
        before)."""
        return min(100, self.max_arrived_pct)

    def to_json(self) -> dict[str, Any]:
        return report.fill_json(self)

    def table(self) -> str:
        return report.fill_table(self)


def workload_of(tasks: Iterable[TraceTask]) -> list[tuple[fgd.TaskShape, float]]:
    """The trace's own workload: each task shape with its share of the rows (FGD's popularity)."""
    counts = Counter(task.shape() for task in tasks)
    total = sum(counts.values())
    return [(shape, count / total) for shape, count in counts.items()]


class FragmentationMeter:
    """`fgd.cluster_fragmentation` of a cycle's ledgers, with each node's F_n(M) remembered by its state.

    F_n(m) depends on a node's cpus only through `m.cpus > cpus_free`, so a node's state is the interval
    of its free cpus between the workload's distinct cpu needs (how many of them are <= cpus free: a
    shape fits when its cpus are at most the cpus free) and its per-GPU free thousandths (in any
    order): nodes alike, and nodes unchanged since the last sample, are not measured again (the sum is
    the same as `fgd.cluster_fragmentation` over the same nodes)."""

    def __init__(self, workload: Sequence[tuple[fgd.TaskShape, float]]) -> None:
        self.workload = workload
        self._cpu_steps = sorted({shape.cpus for shape, _ in workload})
        self._known: dict[tuple[int, tuple[int, ...]], float] = {}

    def node(self, cpus: int, gpus: Sequence[int]) -> float:
        key = (bisect_right(self._cpu_steps, cpus), tuple(sorted(gpus)))
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = fgd.node_fragmentation(cpus, gpus, self.workload)
        return found

    def measure(self, cycle: PlacementCycle) -> float:
        """The cluster's fragmented GPU, in thousandths."""
        node = self.node
        return sum(node(cpus, gpus) for cpus, gpus in fgd.ledger_nodes(cycle.ledger, cycle.shares.ledger))


def capacity_of(nodes: Sequence[AgentSlot]) -> int:
    """The cluster's GPUs, in thousandths."""
    return sum((slot.total or slot.available).scalar_milli("gpus") for slot in nodes)


def run_seed(nodes: Sequence[AgentSlot], tasks: Sequence[TraceTask], case: PolicyCase, seed: int, *,
             max_arrived: float = 1.3, cpu_fallback: bool = True,
             workload: Sequence[tuple[fgd.TaskShape, float]] | None = None) -> tuple[SeedRun, PlacementCycle]:
    """One fill of `case` with `seed`, and its placement cycle (for checks of its ledgers)."""
    capacity = capacity_of(nodes)
    if capacity <= 0:
        raise ValueError(NO_GPU)
    if not any(task.gpu_demand for task in tasks):
        raise ValueError("the task list asks for no GPU: the arrived demand would never grow")
    top = _top(max_arrived)
    meter = FragmentationMeter(workload if workload is not None else workload_of(tasks))
    started = time.perf_counter()
    slots = tuple(nodes)
    cycle = GangPlanner(case.policy(seed=seed, cpu_fallback=cpu_fallback)).start(
        OfferView(slots, catalog=slots))
    draw = random.Random(seed).randrange
    place, count = cycle.place, len(tasks)
    samples: list[Sample] = []
    measuring = 0.0
    arrived = allocated = placed = failed = 0
    pct = 0
    while pct <= top:
        # Sample every percent boundary the last arrival crossed (the first one before any arrival).
        while pct <= top and arrived * 100 >= pct * capacity:
            clock = time.perf_counter()
            fragmented = meter.measure(cycle)
            measuring += time.perf_counter() - clock
            samples.append(Sample(pct, 100 * (capacity - allocated) / capacity, 100 * fragmented / capacity,
                                  placed + failed, placed, failed))
            pct += 1
        if pct > top:
            break
        task = tasks[draw(count)]
        outcome = place(task.demand(f"{task.job_id}@{placed + failed + 1}"))
        arrived += task.gpu_demand
        if isinstance(outcome, Plan):
            placed += 1
            allocated += task.gpu_demand
        else:
            failed += 1
    seconds = time.perf_counter() - started
    return SeedRun(case.name, seed, tuple(samples), seconds, measuring), cycle


def _top(max_arrived: float) -> int:
    top = math.floor(max_arrived * 100 + 1e-9)
    if top < 1:
        raise ValueError(f"max_arrived must be at least 1 % of the capacity, got {max_arrived:.0%}")
    return top


class _Inputs(NamedTuple):
    """What every run of one `fill` shares."""

    nodes: tuple[AgentSlot, ...]
    tasks: tuple[TraceTask, ...]
    max_arrived: float
    cpu_fallback: bool
    workload: list[tuple[fgd.TaskShape, float]]

    def run(self, case: PolicyCase, seed: int) -> SeedRun:
        run, _ = run_seed(self.nodes, self.tasks, case, seed, max_arrived=self.max_arrived,
                          cpu_fallback=self.cpu_fallback, workload=self.workload)
        return run


# A worker process's inputs, set once by `_start_worker` (they are the same for every run).
_WORKER: list[_Inputs] = []


def _start_worker(inputs: _Inputs) -> None:
    _WORKER[:] = [inputs]


def _run_in_worker(case: PolicyCase, seed: int) -> SeedRun:
    return _WORKER[0].run(case, seed)


def fill(nodes: Sequence[AgentSlot], tasks: Sequence[TraceTask], cases: Sequence[PolicyCase], *,
         seeds: Iterable[int] = range(5), max_arrived: float = 1.3, cpu_fallback: bool = True,
         progress: Progress | None = None, jobs: int | None = None) -> FillResult:
    """Fill the cluster with every case and seed; `jobs` worker processes (default: one per CPU, at most
    one per run; 1: in this process). The result does not depend on `jobs`."""
    seed_list = tuple(seeds)
    case_list = tuple(cases)
    if not seed_list or not case_list:
        raise ValueError("fill needs at least one policy and one seed")
    top = _top(max_arrived)
    inputs = _Inputs(tuple(nodes), tuple(tasks), max_arrived, cpu_fallback, workload_of(tasks))
    work = [(case, seed) for case in case_list for seed in seed_list]
    workers = max(1, min(jobs or os.cpu_count() or 1, os.cpu_count() or 1, len(work)))
    started = time.perf_counter()
    done: dict[tuple[str, int], SeedRun] = {}
    if progress is not None:
        progress(0, len(work))
    if workers == 1:
        for case, seed in work:
            done[case.name, seed] = inputs.run(case, seed)
            if progress is not None:
                progress(len(done), len(work))
    else:
        with worker_pool(workers, _start_worker, (inputs,)) as pool:
            futures: dict[Future[SeedRun], tuple[str, int]] = {
                pool.submit(_run_in_worker, case, seed): (case.name, seed) for case, seed in work}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                if progress is not None:
                    progress(len(done), len(work))
    runs = {case.name: tuple(done[case.name, seed] for seed in seed_list) for case in case_list}
    return FillResult(case_list, seed_list, capacity_of(nodes) / WHOLE, len(nodes), len(tasks),
                      len(inputs.workload), top, cpu_fallback, runs, time.perf_counter() - started,
                      workers)
