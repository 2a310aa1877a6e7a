"""The replay in time: the trace's jobs submitted at their (sped up) submit times through the scheduler's
own state machine and planner, on simulated time, against a simulated Mesos master (`replay_master`).

Tasks: the trace rows with a duration (rows without one were never scheduled in production: left out,
counted), optionally only the dense window (submit >= `DENSE_WINDOW_START`, the trace README), submit
times relative to the first one divided by `speedup`, durations unchanged; each a one-task job (a GPU
share `capped`). Per policy case (`sim.policies`): queueing delay (launch - submit) p50/p99/mean, mean
job completion time (finish - submit), GPU allocation over time (the GPU demand of the running tasks,
as % of the cluster's GPUs; a share host's unused part is not allocated), jobs placed / failed / never
placed by the end, per tenant where the trace names one, and the starvation-guard check
(`replay_run.StarvationGuard`). `ReplayResult.table()`, `.to_json()`, and `plot_replay` (PNG).
"""

from __future__ import annotations

import bisect
import os
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesos_gpu.core.placement import AgentSlot
from mesos_gpu.sim.policies import PolicyCase
from mesos_gpu.sim.pool import worker_pool
from mesos_gpu.sim.replay_run import HORIZON_SECONDS, SETTINGS, CaseRun, ReplayJob, job_spec
from mesos_gpu.sim.trace import NO_GPU, TraceTask

__all__ = [
    "DEFAULT_NODE_SAMPLE",
    "DEFAULT_SPEEDUP",
    "DENSE_WINDOW_START",
    "CaseResult",
    "ReplayResult",
    "plot_replay",
    "replay",
    "replay_jobs",
    "sample_nodes",
    "spread_sample",
]

DENSE_WINDOW_START = 9_664_050.0   # the trace README's dense window: 8,133 of 8,152 tasks from here on
#: The replay's default cluster and speed-up. The openb trace asks 5,463 GPUs in all (its dense window,
#: tasks with a duration) of the node list's 6,212: on the whole list nothing waits at any speed-up
#: (measured: 20,000x, every delay <= 1 s). On every 16th node (`sample_nodes`: 96 nodes, 394 GPUs) at
#: 50x (arrivals over 18 h, mean demand ~58 % of its GPUs, peaks above 100 %), jobs queue.
DEFAULT_NODE_SAMPLE = 16
DEFAULT_SPEEDUP = 50.0
SAMPLES = 400                       # points of the allocation curve kept per case
CDF_POINTS = 500                    # points of the queueing delay distribution kept per case
PARALLEL_JOBS = 2_000               # jobs x cases from which the cases run in parallel processes


def replay_jobs(tasks: Sequence[TraceTask], *, speedup: float = 1.0,
                dense_window: bool = True) -> tuple[list[ReplayJob], dict[str, int]]:
    """The jobs to replay (in submission order) and how many rows were left out, and why."""
    if speedup <= 0:
        raise ValueError(f"speedup must be positive, got {speedup}")
    kept = [task for task in tasks if task.duration is not None]
    left_out = {"no duration (never scheduled in production)": len(tasks) - len(kept)}
    if dense_window:
        window = [task for task in kept if task.submit >= DENSE_WINDOW_START]
        left_out[f"before the dense window (submit < {DENSE_WINDOW_START:,.0f} s)"] = len(kept) - len(window)
        kept = window
    kept.sort(key=lambda task: task.submit)
    first = kept[0].submit if kept else 0.0
    jobs = [ReplayJob(task.job_id, task, (task.submit - first) / speedup, job_spec(task)) for task in kept]
    return jobs, left_out


def quantile(ordered: Sequence[float], q: float) -> float:
    """The `q` quantile of sorted `ordered`, interpolated linearly (0.0 when empty)."""
    if not ordered:
        return 0.0
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class CaseResult:
    """One policy case's figures (times in simulated seconds)."""

    name: str
    description: str
    backfill: bool
    jobs: int
    placed: int
    failed: int
    never_placed: int
    delay_p50: float
    delay_p99: float
    delay_mean: float
    jct_mean: float
    allocation_mean_pct: float
    waited_past_reserve: int        # jobs that waited longer than reserve_after_seconds
    held_for: int                   # jobs that had agents held for them at some cycle
    violations: int                 # launches of later jobs on agents held for a waiting one
    longest_wait: float             # of any job that fits the empty cluster (waits to the end counted)
    seconds: float                  # wall time of the case
    cpu_seconds: float              # its CPU time (the machine may be shared)
    cycles: int
    offers: int
    dropped: int
    allocation: list[tuple[float, float]] = field(default_factory=list)   # (time s, allocated %)
    delays: list[float] = field(default_factory=list)     # sorted sample of the queueing delays
    tenants: dict[str, dict[str, float]] = field(default_factory=dict)
    violation_examples: list[tuple[str, str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = {key: value for key, value in vars(self).items() if key not in ("allocation", "delays")}
        out["allocation"] = [[round(t, 3), round(p, 3)] for t, p in self.allocation]
        out["delays"] = [round(d, 3) for d in self.delays]
        out["violation_examples"] = [list(example) for example in self.violation_examples]
        return out


def _allocation(run: CaseRun, capacity_milli: int,
                window_end: float) -> tuple[float, list[tuple[float, float]]]:
    """Time-weighted mean allocated % over [0, window_end] (the arrivals), and the sampled curve up to
    the end of the run."""
    return held_curve(run, run.jobs, capacity_milli, window_end, max(run.end, window_end))


def held_curve(run: CaseRun, jobs: Sequence[ReplayJob], capacity_milli: int, window_end: float,
               end: float) -> tuple[float, list[tuple[float, float]]]:
    """Time-weighted mean % of the cluster's GPUs (`capacity_milli`) that `jobs` held in `run` over
    [0, window_end], and the curve sampled `SAMPLES` times up to `end`."""
    changes: list[tuple[float, int]] = []
    for job in jobs:
        launched = run.launch.get(job.job_id)
        if launched is not None:
            demand = job.task.gpu_demand
            changes.append((launched, demand))
            changes.append((launched + job.duration, -demand))
    changes.sort()
    times, levels = [0.0], [0]
    for at, delta in changes:
        if at == times[-1]:
            levels[-1] += delta
        else:
            times.append(at)
            levels.append(levels[-1] + delta)
    if capacity_milli <= 0:
        return 0.0, []
    area = 0.0
    for i, start in enumerate(times):
        if start >= window_end:
            break
        stop = min(times[i + 1] if i + 1 < len(times) else window_end, window_end)
        area += levels[i] * (stop - start)
    mean = 100.0 * area / (capacity_milli * window_end) if window_end > 0 else 0.0
    step = end / SAMPLES if end > 0 else 1.0
    curve = [(k * step, 100.0 * levels[bisect.bisect_right(times, k * step) - 1] / capacity_milli)
             for k in range(SAMPLES + 1)]
    return mean, curve


def spread_sample(ordered: Sequence[float], points: int) -> list[float]:
    """At most `points` values of `ordered`, at evenly spaced positions from the first to the last, each
    position once (all of them when there are no more than `points`)."""
    n = len(ordered)
    if n <= points:
        return list(ordered)
    if points <= 1:
        return list(ordered[-1:]) if points == 1 else []
    return [ordered[round(k * (n - 1) / (points - 1))] for k in range(points)]


def _tenants(run: CaseRun, delays: dict[str, float]) -> dict[str, dict[str, float]]:
    by_tenant: dict[str, list[ReplayJob]] = {}
    for job in run.jobs:
        if job.task.tenant:
            by_tenant.setdefault(job.task.tenant, []).append(job)
    out = {}
    for tenant, jobs in sorted(by_tenant.items()):
        waits = sorted(delays[job.job_id] for job in jobs if job.job_id in delays)
        out[tenant] = {"jobs": len(jobs), "placed": len(waits), "delay_p50": quantile(waits, 0.5),
                       "delay_p99": quantile(waits, 0.99),
                       "delay_mean": statistics.fmean(waits) if waits else 0.0}
    return out


def summarize_case(case: PolicyCase, run: CaseRun, capacity_milli: int) -> CaseResult:
    """The figures of one finished `CaseRun`."""
    jobs = run.jobs
    delays = {job.job_id: run.launch[job.job_id] - job.submit for job in jobs if job.job_id in run.launch}
    ordered = sorted(delays.values())
    jct = [delays[job.job_id] + job.duration for job in jobs if job.job_id in delays]
    window_end = max((job.submit for job in jobs), default=0.0)
    mean, curve = _allocation(run, capacity_milli, window_end)
    waits = [delays.get(job.job_id, run.end - job.submit) for job in jobs if job.job_id not in run.failed]
    patience = SETTINGS.reserve_after_seconds
    return CaseResult(
        name=case.name, description=case.description, backfill=case.backfill, jobs=len(jobs),
        placed=len(delays), failed=len(run.failed), never_placed=len(jobs) - len(delays) - len(run.failed),
        delay_p50=quantile(ordered, 0.5), delay_p99=quantile(ordered, 0.99),
        delay_mean=statistics.fmean(ordered) if ordered else 0.0,
        jct_mean=statistics.fmean(jct) if jct else 0.0, allocation_mean_pct=mean,
        waited_past_reserve=sum(1 for wait in waits if wait > patience),
        held_for=len(run.guard.held_jobs), violations=len(run.guard.violations),
        longest_wait=max(waits, default=0.0), seconds=run.seconds, cpu_seconds=run.cpu_seconds,
        cycles=run.cycles,
        offers=run.master.offers_made, dropped=run.master.dropped, allocation=curve,
        delays=spread_sample(ordered, CDF_POINTS), tenants=_tenants(run, delays),
        violation_examples=run.guard.violations[:5])


@dataclass
class ReplayResult:
    """Every case of one replay, with what it was run on."""

    nodes: int
    capacity_gpus: float
    speedup: float
    dense_window: bool
    cpu_fallback: bool
    seed: int
    jobs: int
    left_out: dict[str, int]
    tenants_named: bool
    cases: list[CaseResult]
    reserve_after_seconds: float = SETTINGS.reserve_after_seconds
    horizon_seconds: float = HORIZON_SECONDS

    def to_json(self) -> dict[str, Any]:
        out = {key: value for key, value in vars(self).items() if key != "cases"}
        out["cases"] = [case.to_json() for case in self.cases]
        return out

    def case(self, name: str) -> CaseResult:
        return next(case for case in self.cases if case.name == name)

    def table(self) -> str:
        """The text table: one row per case, then how to read it."""
        from mesos_gpu.sim.replay_report import replay_table

        return replay_table(self)


def replay(nodes: list[AgentSlot], tasks: list[TraceTask], cases: Sequence[PolicyCase], *,
           speedup: float = 1.0, dense_window: bool = True, cpu_fallback: bool = True, seed: int = 0,
           progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> ReplayResult:
    """Replay `tasks` on `nodes` in simulated time, once per case; deterministic for `seed`. The cases
    run in `workers` processes (at most one per case; None: one per CPU, for runs big enough to gain; 1:
    in this process). A node list without GPUs: ValueError (`NO_GPU`), as the fill."""
    jobs, left_out = replay_jobs(tasks, speedup=speedup, dense_window=dense_window)
    capacity = sum((node.total or node.available).gpus for node in nodes)
    if capacity <= 0:
        raise ValueError(NO_GPU)
    if workers is None:
        workers = min(len(cases), os.cpu_count() or 1) if len(jobs) * len(cases) >= PARALLEL_JOBS else 1
    workers = min(workers, len(cases))
    args = [_CaseArgs(nodes, tasks, case, speedup, dense_window, cpu_fallback, seed) for case in cases]
    total = len(jobs) * len(cases)
    if workers <= 1:
        results = _in_process(args, total, progress)
    else:
        results = [None] * len(args)
        with worker_pool(workers) as pool:
            futures = {pool.submit(_run_case, arg): number for number, arg in enumerate(args)}
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(done * len(jobs), total)
    return ReplayResult(
        nodes=len(nodes), capacity_gpus=capacity, speedup=speedup, dense_window=dense_window,
        cpu_fallback=cpu_fallback, seed=seed, jobs=len(jobs), left_out=left_out,
        tenants_named=any(job.task.tenant for job in jobs), cases=[r for r in results if r is not None])


@dataclass(frozen=True)
class _CaseArgs:
    nodes: Sequence[AgentSlot]
    tasks: Sequence[TraceTask]
    case: PolicyCase
    speedup: float
    dense_window: bool
    cpu_fallback: bool
    seed: int


def _run_case(args: _CaseArgs, decided: Callable[[int], None] | None = None) -> CaseResult:
    jobs, _ = replay_jobs(args.tasks, speedup=args.speedup, dense_window=args.dense_window)
    policy = args.case.policy(seed=args.seed, cpu_fallback=args.cpu_fallback)
    run = CaseRun(args.nodes, jobs, policy, decided).run()
    capacity = sum((node.total or node.available).gpus for node in args.nodes)
    return summarize_case(args.case, run, round(capacity * 1000))


def _in_process(args: Sequence[_CaseArgs], total: int,
                progress: Callable[[int, int], None] | None) -> list[CaseResult | None]:
    done = 0

    def decided(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None and done % 50 == 0:
            progress(done, total)

    results: list[CaseResult | None] = []
    for number, arg in enumerate(args, start=1):
        results.append(_run_case(arg, decided))
        done = total * number // len(args)
        if progress is not None:
            progress(done, total)
    return results


def plot_replay(result: ReplayResult, path: Path) -> None:
    """PNG: GPU allocation (% of the cluster's GPUs) over simulated time per case, and the distribution
    of queueing delays per case."""
    from mesos_gpu.sim.replay_report import plot

    plot(result, path)


def sample_nodes(nodes: Sequence[AgentSlot], every: int) -> list[AgentSlot]:
    """Every `every`-th node, by GPU model and size, so the sample keeps the node list's mix: the openb
    trace asks 5,463 GPUs in all of its 6,212, so on the whole list nothing waits at any speed-up (the
    trace README: replay it on a small cluster, or compress time); a sample of it makes the queueing
    that the policies differ on."""
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    ordered = sorted(nodes, key=lambda node: (str(node.attributes.get("gpu_model", "")),
                                              (node.total or node.available).gpus, node.agent_id))
    return ordered[::every]
