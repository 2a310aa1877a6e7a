"""The multi-tenant replay: the replay in time (`sim.replay`) with the trace's jobs split among tenants,
run twice with one placement policy, without quotas and with them, through the scheduler's own tenant
admission (`SchedulerState.tenancy`, `core.tenancyadmit`: read, never copied).

Tenants: the trace's `user_or_group` where it names one; openb names none, so each job is drawn one of
four synthetic teams (`draw_tenants`, `random.Random(seed)` alone: deterministic for a seed), with
weights that give each team its own job sizes and arrival pattern:

- `training`: whole GPUs, mostly multi-GPU jobs (weight 4 for a job of 2+ GPUs, 1.5 for one GPU, 0.2 for
  a share, 0.5 for a CPU task);
- `inference`: GPU shares (weight 4 for a share, 0.3 otherwise);
- `research`: bursts: 2 hours in every 8 of the trace's own clock (weight 6 inside a burst, 0.3 outside),
  any size;
- `interns`: a little of everything (weight 0.6).

Quotas (`quota_config`, "with quotas"): guarantees of 40 % (training), 25 % (inference) and 20 %
(research) of the cluster's GPUs, rounded down to whole GPUs; interns are not listed (the default: no
guarantee, a limit of 10 %); the rest is `unassigned_gpus`; every tenant may borrow, weight 1.
"Without quotas" is the product with no tenants document: every job is offered to placement.

Figures per tenant and run: jobs, placed, queueing delay p50/p99/mean, the mean share of the cluster's
GPUs it held over the arrivals, and that share over time (`TenantsResult.table()`, `.to_json()`,
`plot_tenants`).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mesos_gpu.core.placement import AgentSlot
from mesos_gpu.core.tenancy import TenantsConfig
from mesos_gpu.sim.policies import PolicyCase
from mesos_gpu.sim.pool import worker_pool
from mesos_gpu.sim.replay import held_curve, quantile, replay_jobs
from mesos_gpu.sim.replay_run import CaseRun, ReplayJob
from mesos_gpu.sim.trace import NO_GPU, WHOLE, TraceTask

__all__ = ["BURST_EVERY", "TEAMS", "TenantFigures", "TenantsResult", "draw_tenants", "plot_tenants",
           "quota_config", "replay_tenants"]

TEAMS = ("training", "inference", "research", "interns")
BURST_EVERY = 8 * 3600.0        # research submits in bursts: the first BURST_LENGTH of every BURST_EVERY
BURST_LENGTH = 2 * 3600.0       # (of the trace's own submit clock, before any speed-up)
QUOTA_PCT = {"training": 40, "inference": 25, "research": 20}
INTERNS_LIMIT_PCT = 10
RUNS = ("without quotas", "with quotas")


def _weights(task: TraceTask) -> tuple[float, ...]:
    """Each team's weight for `task`, in `TEAMS` order."""
    if task.is_share:
        training, inference = 0.2, 4.0
    elif task.gpus >= 2:
        training, inference = 4.0, 0.3
    elif task.gpus == 1:
        training, inference = 1.5, 0.3
    else:
        training, inference = 0.5, 0.3
    research = 6.0 if task.submit % BURST_EVERY < BURST_LENGTH else 0.3
    return (training, inference, research, 0.6)


def draw_tenants(tasks: Sequence[TraceTask], seed: int) -> list[TraceTask]:
    """`tasks` with a tenant each: the trace's own where it names one, else a team of `TEAMS` drawn by
    `_weights` from `random.Random(seed)` (one draw per task, in the trace's order)."""
    rng = random.Random(seed)
    out = []
    for task in tasks:
        drawn = rng.choices(TEAMS, weights=_weights(task))[0]
        out.append(task if task.tenant else replace(task, tenant=drawn))
    return out


def quota_config(capacity_gpus: float) -> TenantsConfig:
    """The "with quotas" tenants document for a cluster of `capacity_gpus` (see the module docstring)."""
    quotas = {name: int(capacity_gpus * pct / 100) for name, pct in QUOTA_PCT.items()}
    unassigned = max(0.0, capacity_gpus - sum(quotas.values()))
    return TenantsConfig.of({
        "tenants": {name: {"quota": quota, "may_borrow": True} for name, quota in quotas.items()},
        "default": {"limit": round(capacity_gpus * INTERNS_LIMIT_PCT / 100, 2), "may_borrow": True},
        "unassigned_gpus": round(unassigned, 2),
    })


@dataclass
class TenantFigures:
    """One tenant in one run (times in simulated seconds, shares in % of the cluster's GPUs)."""

    jobs: int
    placed: int
    never_placed: int
    delay_p50: float
    delay_p99: float
    delay_mean: float
    share_mean_pct: float
    quota_gpus: float | None
    share: list[tuple[float, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = {key: value for key, value in vars(self).items() if key != "share"}
        out["share"] = [[round(t, 3), round(p, 3)] for t, p in self.share]
        return out


@dataclass
class TenantsResult:
    """Both runs of one multi-tenant replay, with what they were run on."""

    policy: str
    nodes: int
    capacity_gpus: float
    speedup: float
    seed: int
    jobs: int
    synthetic: bool                 # tenants drawn (the trace names none)
    quotas: dict[str, Any]          # the "with quotas" tenants document
    runs: dict[str, dict[str, TenantFigures]]
    seconds: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        out = {key: value for key, value in vars(self).items() if key != "runs"}
        out["runs"] = {run: {name: figures.to_json() for name, figures in tenants.items()}
                       for run, tenants in self.runs.items()}
        return out

    def table(self) -> str:
        from mesos_gpu.sim.tenants_report import tenants_table

        return tenants_table(self)


def summarize_tenants(run: CaseRun, capacity_milli: int, end: float,
                      config: TenantsConfig | None) -> dict[str, TenantFigures]:
    """Each tenant's figures in one finished run (`end`: where the share curves stop)."""
    by_tenant: dict[str, list[ReplayJob]] = {}
    for job in run.jobs:
        by_tenant.setdefault(job.task.tenant, []).append(job)
    window_end = max((job.submit for job in run.jobs), default=0.0)
    out = {}
    for name in sorted(by_tenant):
        jobs = by_tenant[name]
        waits = sorted(run.launch[job.job_id] - job.submit for job in jobs if job.job_id in run.launch)
        failed = sum(1 for job in jobs if job.job_id in run.failed)
        mean, curve = held_curve(run, jobs, capacity_milli, window_end, end)
        quota = None if config is None else config.of_tenant(name).quota / 1000
        out[name] = TenantFigures(
            jobs=len(jobs), placed=len(waits), never_placed=len(jobs) - len(waits) - failed,
            delay_p50=quantile(waits, 0.5), delay_p99=quantile(waits, 0.99),
            delay_mean=statistics.fmean(waits) if waits else 0.0, share_mean_pct=mean, quota_gpus=quota,
            share=curve)
    return out


@dataclass(frozen=True)
class _RunArgs:
    nodes: Sequence[AgentSlot]
    jobs: Sequence[ReplayJob]
    case: PolicyCase
    cpu_fallback: bool
    config: TenantsConfig | None


def _run(args: _RunArgs) -> tuple[dict[str, TenantFigures], float]:
    """One run (in a worker process or not): each tenant's figures and the run's wall seconds."""
    policy = args.case.policy(seed=0, cpu_fallback=args.cpu_fallback)
    run = CaseRun(args.nodes, args.jobs, policy, tenancy=args.config).run()
    capacity = sum((node.total or node.available).gpus for node in args.nodes)
    return summarize_tenants(run, round(capacity * WHOLE), run.end, args.config), run.seconds


def replay_tenants(nodes: list[AgentSlot], tasks: list[TraceTask], case: PolicyCase, *,
                   speedup: float = 1.0, dense_window: bool = True, cpu_fallback: bool = True,
                   seed: int = 0, progress: Callable[[int, int], None] | None = None,
                   workers: int | None = None) -> TenantsResult:
    """Replay `tasks` on `nodes` with `case`'s policy, tenants drawn for `seed`, without quotas and with
    `quota_config`; the two runs in `workers` processes (1: in this process). Deterministic for `seed`."""
    capacity = sum((node.total or node.available).gpus for node in nodes)
    if capacity <= 0:
        raise ValueError(NO_GPU)
    tenanted = draw_tenants(tasks, seed)
    jobs, _ = replay_jobs(tenanted, speedup=speedup, dense_window=dense_window)
    jobs = [replace(job, spec=replace(job.spec, tenant=job.task.tenant)) for job in jobs]
    config = quota_config(capacity)
    args = [_RunArgs(nodes, jobs, case, cpu_fallback, terms) for terms in (None, config)]
    runs: list[tuple[dict[str, TenantFigures], float] | None] = [None, None]
    if progress is not None:
        progress(0, len(args))
    if (workers or 2) <= 1:
        for number, arg in enumerate(args):
            runs[number] = _run(arg)
            if progress is not None:
                progress(number + 1, len(args))
    else:
        with worker_pool(min(workers or 2, 2)) as pool:
            futures = {pool.submit(_run, arg): number for number, arg in enumerate(args)}
            for done, future in enumerate(as_completed(futures), start=1):
                runs[futures[future]] = future.result()
                if progress is not None:
                    progress(done, len(args))
    finished = [run for run in runs if run is not None]
    return TenantsResult(
        policy=case.name, nodes=len(nodes), capacity_gpus=capacity, speedup=speedup, seed=seed,
        jobs=len(jobs), synthetic=not any(task.tenant for task in tasks), quotas=config.to_dict(),
        runs={name: figures for name, (figures, _) in zip(RUNS, finished, strict=True)},
        seconds={name: seconds for name, (_, seconds) in zip(RUNS, finished, strict=True)})


def plot_tenants(result: TenantsResult, path: Path) -> None:
    """PNG: each tenant's share of the cluster's GPUs over time, without and with quotas."""
    from mesos_gpu.sim.tenants_report import plot

    plot(result, path)
