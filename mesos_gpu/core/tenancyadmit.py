"""Tenant admission (pure): which waiting jobs may be offered to placement now, given quotas and usage.

`admit(config, usage, waiting)` takes the tenants' terms (`mesos_gpu.core.tenancy.TenantsConfig`), the
GPUs each tenant's running and launching jobs hold (`usage`, thousandths of a GPU), and the jobs ready to
place in priority order (`Waiting`), and answers an `Admission`: the jobs admitted, each held job's
reason in the product's words ("team-a uses 12 of its 12 GPUs; borrowing: 0 idle; the job needs 2
more"), and what each tenant borrows. It never launches anything: admitted jobs still need placement.

Rules, in order:

1. Within its guarantee: a job is admitted when its tenant's usage (plus the jobs admitted before it in
   this cycle) and the job fit in the tenant's `quota`, and in its `limit`. Jobs asking for no GPU are
   always admitted.
2. Beyond it, by borrowing: what is borrowable is `unassigned_gpus` plus every tenant's idle guarantee,
   where a tenant's idle guarantee is its quota less its usage and less the GPUs its own waiting jobs
   ask for (a tenant never lends what its waiting work needs), less what is borrowed already. Tenants
   that may borrow take turns, the one borrowing least for its weight first (borrowed / weight, as
   Kueue's fair sharing and DRF with one resource), each turn admitting its next job that fits the
   borrowable GPUs left and its limit; a job that does not fit is held (nothing it waits for grows
   within the cycle).

Invariants (tested in tests/core/test_tenancy_admit.py): no tenant is admitted above its limit (nor,
when it may not borrow, above its quota); the GPUs admitted beyond quotas in one cycle never exceed
what was borrowable; a tenant's idle guarantee lent out never includes what its own waiting jobs ask
for; every waiting job is either admitted or held with a reason; with no GPU borrowable, no tenant
goes beyond its quota.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mesos_gpu.core.tenancy import TenantQuota, TenantsConfig, gpus_text

__all__ = ["Admission", "TenantSummary", "Waiting", "admit", "borrowable", "summarize"]


@dataclass(frozen=True)
class Waiting:
    """A job ready to place: its id, tenant and the GPUs it asks for in all (thousandths)."""

    job_id: str
    tenant: str
    gpus: int


@dataclass
class Admission:
    """One cycle's answer: `admitted` job ids (in the order given), `held` job id -> reason, and the
    thousandths each tenant uses after admission (`used`) and borrows (`borrowed`: used above quota)."""

    admitted: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    borrowed: dict[str, int] = field(default_factory=dict)
    pool: int = 0  # thousandths borrowable at the start of the cycle


def _over(quota: int, used: int, gpus: int) -> int:
    """How much of `gpus` lies above `quota` when `used` is already taken."""
    return max(0, used + gpus - quota) - max(0, used - quota)


def borrowable(config: TenantsConfig, usage: Mapping[str, int], demand: Mapping[str, int]) -> int:
    """Thousandths borrowable now: unassigned GPUs plus idle guarantees (quota less usage less what the
    tenant's waiting jobs ask for, `demand`), less what tenants borrow already; never below 0."""
    idle = config.unassigned
    for name, terms in config.tenants.items():
        idle += max(0, terms.quota - usage.get(name, 0) - demand.get(name, 0))
    lent = sum(max(0, used - config.of_tenant(name).quota) for name, used in usage.items())
    return max(0, idle - lent)


def admit(config: TenantsConfig, usage: Mapping[str, int], waiting: Sequence[Waiting]) -> Admission:
    """The jobs of `waiting` (highest priority first) that may be placed now; see the module docstring."""
    demand: dict[str, int] = {}
    for job in waiting:
        demand[job.tenant] = demand.get(job.tenant, 0) + job.gpus
    pool = borrowable(config, usage, demand)
    answer = Admission(used={name: used for name, used in usage.items() if used}, pool=pool)
    used = answer.used
    admitted: set[str] = set()
    hopefuls: dict[str, list[Waiting]] = {}
    known: dict[str, tuple[TenantQuota, int | None]] = {}
    for job in waiting:     # 1. within each tenant's guarantee
        found = known.get(job.tenant)
        if found is None:
            terms = config.of_tenant(job.tenant)
            found = known[job.tenant] = (terms, terms.ceiling)
        terms, ceiling = found
        now = used.get(job.tenant, 0)
        fits_ceiling = ceiling is None or now + job.gpus <= ceiling
        if job.gpus == 0 or (now + job.gpus <= terms.quota and fits_ceiling):
            used[job.tenant] = now + job.gpus
            admitted.add(job.job_id)
        elif terms.may_borrow and fits_ceiling:
            hopefuls.setdefault(job.tenant, []).append(job)
        else:
            answer.held[job.job_id] = _reason(job, terms, now, None)
    _borrow(config, hopefuls, pool, answer, admitted)     # 2. beyond it
    answer.admitted = [job.job_id for job in waiting if job.job_id in admitted]
    answer.borrowed = {name: over for name, now in used.items()
                       if (over := max(0, now - config.of_tenant(name).quota))}
    return answer


def _borrow(config: TenantsConfig, hopefuls: Mapping[str, list[Waiting]], pool: int, answer: Admission,
            admitted: set[str]) -> None:
    """Admit beyond quotas, fairly: the tenant borrowing least for its weight takes the next turn."""
    used, held = answer.used, answer.held

    def share(name: str) -> tuple[float, str]:
        terms = config.of_tenant(name)
        return (max(0, used.get(name, 0) - terms.quota) / terms.weight, name)

    turns = [(*share(name), 0) for name in hopefuls]
    heapq.heapify(turns)
    while turns:
        _, name, position = heapq.heappop(turns)
        jobs = hopefuls[name]
        terms = config.of_tenant(name)
        while position < len(jobs):
            job = jobs[position]
            position += 1
            now = used.get(name, 0)
            over = _over(terms.quota, now, job.gpus)
            ceiling = terms.ceiling
            if over <= pool and (ceiling is None or now + job.gpus <= ceiling):
                used[name] = now + job.gpus
                pool -= over
                admitted.add(job.job_id)
                if position < len(jobs):
                    heapq.heappush(turns, (*share(name), position))
                break
            held[job.job_id] = _reason(job, terms, now, pool)


def _reason(job: Waiting, terms: TenantQuota, used: int, idle: int | None) -> str:
    """Why `job` is held: its tenant's usage against its terms, and what is borrowable (`idle`; None
    when borrowing is not what stops it)."""
    name, needs = job.tenant, gpus_text(job.gpus)
    if terms.limit is not None and used + job.gpus > terms.limit:
        limit = gpus_text(terms.limit)
        return f"{name} uses {gpus_text(used)} of its limit of {limit} GPUs; the job needs {needs}"
    if not terms.may_borrow:
        return (f"{name} uses {gpus_text(used)} of its {gpus_text(terms.quota)} GPUs; the job needs {needs}; "
                f"{name} may not borrow")
    more = gpus_text(_over(terms.quota, used, job.gpus))
    return (f"{name} uses {gpus_text(used)} of its {gpus_text(terms.quota)} GPUs; "
            f"borrowing: {gpus_text(idle or 0)} idle; the job needs {more} more")


@dataclass(frozen=True)
class TenantSummary:
    """One tenant as `GET /v1/tenants` and `/metrics` show it (amounts in thousandths of a GPU)."""

    name: str
    terms: TenantQuota
    listed: bool
    used: int
    waiting_jobs: int
    waiting_gpus: int

    @property
    def borrowed(self) -> int:
        return max(0, self.used - self.terms.quota)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "listed": self.listed, **self.terms.to_dict()}
        out.update(used_gpus=_number(self.used), borrowed_gpus=_number(self.borrowed),
                   waiting_jobs=self.waiting_jobs, waiting_gpus=_number(self.waiting_gpus))
        return out


def _number(milli: int) -> int | float:
    return milli // 1000 if milli % 1000 == 0 else milli / 1000


def summarize(config: TenantsConfig, usage: Mapping[str, int],
              waiting: Iterable[Waiting]) -> list[TenantSummary]:
    """Every listed tenant, and every other tenant with GPUs in use or jobs waiting, by name."""
    jobs: dict[str, int] = {}
    gpus: dict[str, int] = {}
    for job in waiting:
        jobs[job.tenant] = jobs.get(job.tenant, 0) + 1
        gpus[job.tenant] = gpus.get(job.tenant, 0) + job.gpus
    names = set(config.tenants) | {name for name, used in usage.items() if used} | set(jobs)
    return [TenantSummary(name, config.of_tenant(name), name in config.tenants, usage.get(name, 0),
                          jobs.get(name, 0), gpus.get(name, 0)) for name in sorted(names)]
