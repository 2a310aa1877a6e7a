"""Which running jobs a waiting job may preempt, and in what order (pure; issue 14 part 2).

`choose_victims(claim, running, config=, usage=, now=, spared=)` answers the jobs to stop so that `claim` (a
job ready to place) gets its GPUs, or None when it may not preempt or preempting would not free enough.
It counts GPUs only: which agents the freed GPUs sit on is placement's question (the caller must plan the
whole gang on the freed agents before it kills anything, and call this again otherwise): the preemption
round, `mesos_gpu.core.preempt`, does.

Who may be a victim:

- a job of another tenant that **borrows** (its tenant uses more than its quota, counting only the victims
  not chosen yet), when `claim` is within its own tenant's guarantee (a reclaim of lent GPUs) or has a
  higher priority than the victim;
- a job of the claim's own tenant with a **lower priority** than the claim.

Never a job of a tenant at or below its quota for another tenant's claim, never a job of equal or higher
priority unless it borrows and the claim reclaims, never a job in `spared` (already preempted once for this
claim: no preemption loops). Order: borrowers first, then lower priority first, then the fewest GPU-hours
lost (GPUs held x time running) first; the shortest prefix of that order that frees `claim.gpus` is chosen.
What a prefix frees is what the SET frees (`frees`, called with each job added in turn: a GPU share frees
its share host's GPU only once every share on that host is in the set); without `frees`, each job's GPUs.

`choose_own_victims(claim, running, admits=, now=, spared=)` is for a claim its tenant's quota holds (at
its limit, or unable to borrow more: Kueue's `withinClusterQueue: LowerPriority`): only its own tenant's
lower-priority jobs, lower priority first, then the fewest GPU-hours lost; the shortest prefix after
which `admits(freed thousandths)` says the claim would be admitted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from mesos_gpu.core.tenancy import TenantsConfig

__all__ = ["Claim", "Running", "choose_own_victims", "choose_victims"]


@dataclass(frozen=True)
class Running:
    """A running job as preemption sees it: GPUs held (thousandths) since `started_at` (seconds)."""

    job_id: str
    tenant: str
    priority: int
    gpus: int
    started_at: float


@dataclass(frozen=True)
class Claim:
    """A job ready to place that may preempt: its tenant, priority and GPUs needed (thousandths)."""

    job_id: str
    tenant: str
    priority: int
    gpus: int


def choose_victims(claim: Claim, running: Sequence[Running], *, config: TenantsConfig,
                   usage: Mapping[str, int], now: float, spared: Collection[str] = (),
                   frees: Callable[[str], int] | None = None,
                   needed: int | None = None) -> tuple[str, ...] | None:
    """The running jobs to preempt for `claim`, in kill order, or None (see the module docstring).
    `frees(job_id)`: the thousandths adding that job to those chosen before it frees (a fresh one per
    call: it counts the set); `needed`: the thousandths the victims must free (default `claim.gpus`;
    less when idle GPUs may make up the rest)."""
    if claim.gpus <= 0:
        return None
    enough = max(1, claim.gpus if needed is None else min(needed, claim.gpus))
    own = config.of_tenant(claim.tenant)
    reclaim = usage.get(claim.tenant, 0) + claim.gpus <= own.quota
    used = dict(usage)
    def rank(job: Running) -> tuple[bool, int, float, str]:
        lost = job.gpus * max(0.0, now - job.started_at)        # GPU-seconds its kill throws away
        return (job.tenant == claim.tenant, job.priority, lost, job.job_id)

    ranked = sorted((job for job in running if job.job_id not in spared and job.gpus > 0), key=rank)
    chosen: list[str] = []
    freed = 0
    for job in ranked:
        if not _may_take(claim, job, config, used, reclaim):
            continue
        chosen.append(job.job_id)
        used[job.tenant] = used.get(job.tenant, 0) - job.gpus
        freed += job.gpus if frees is None else frees(job.job_id)
        if freed >= enough:
            return tuple(chosen)
    return None


def _may_take(claim: Claim, job: Running, config: TenantsConfig, used: Mapping[str, int],
              reclaim: bool) -> bool:
    if job.tenant == claim.tenant:
        return job.priority < claim.priority
    borrows = used.get(job.tenant, 0) > config.of_tenant(job.tenant).quota
    return borrows and (reclaim or job.priority < claim.priority)


def choose_own_victims(claim: Claim, running: Sequence[Running], *, admits: Callable[[int], bool], now: float,
                       spared: Collection[str] = ()) -> tuple[str, ...] | None:
    """The claim's own tenant's lower-priority jobs to preempt so that its quota admits it, in kill order,
    or None (see the module docstring; None too when it is admitted without any)."""
    if claim.gpus <= 0 or admits(0):
        return None
    mine = [job for job in running if job.tenant == claim.tenant and job.priority < claim.priority
            and job.job_id not in spared and job.gpus > 0]
    mine.sort(key=lambda job: (job.priority, job.gpus * max(0.0, now - job.started_at), job.job_id))
    chosen: list[str] = []
    freed = 0
    for job in mine:
        chosen.append(job.job_id)
        freed += job.gpus
        if admits(freed):
            return tuple(chosen)
    return None
