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
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from mesos_gpu.core.tenancy import TenantsConfig

__all__ = ["Claim", "Running", "choose_victims"]


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
                   usage: Mapping[str, int], now: float,
                   spared: Collection[str] = ()) -> tuple[str, ...] | None:
    """The running jobs to preempt for `claim`, in kill order, or None (see the module docstring)."""
    if claim.gpus <= 0:
        return None
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
        freed += job.gpus
        if freed >= claim.gpus:
            return tuple(chosen)
    return None


def _may_take(claim: Claim, job: Running, config: TenantsConfig, used: Mapping[str, int],
              reclaim: bool) -> bool:
    if job.tenant == claim.tenant:
        return job.priority < claim.priority
    borrows = used.get(job.tenant, 0) > config.of_tenant(job.tenant).quota
    return borrows and (reclaim or job.priority < claim.priority)
