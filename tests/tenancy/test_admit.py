"""Tenant admission (`mesos_gpu.core.tenancyadmit`): tables of who is admitted and why not, and the
invariants as Hypothesis properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.tenancy import TenantQuota, TenantsConfig
from mesos_gpu.core.tenancyadmit import Waiting, admit, borrowable, summarize

G = 1000    # one GPU, in thousandths


def config(unassigned: float = 0, default: dict[str, Any] | None = None,
           **tenants: dict[str, Any]) -> TenantsConfig:
    doc: dict[str, Any] = {"tenants": {name.replace("_", "-"): terms for name, terms in tenants.items()},
                           "unassigned_gpus": unassigned}
    if default is not None:
        doc["default"] = default
    return TenantsConfig.of(doc)


def jobs(*items: tuple[str, str, float]) -> list[Waiting]:
    return [Waiting(job_id, tenant, round(gpus * G)) for job_id, tenant, gpus in items]


def test_a_job_within_its_tenants_guarantee_is_admitted() -> None:
    answer = admit(config(team_a={"quota": 4}), {"team-a": 2 * G}, jobs(("j1", "team-a", 2)))
    assert answer.admitted == ["j1"] and answer.held == {}
    assert answer.used == {"team-a": 4 * G} and answer.borrowed == {}


def test_a_job_beyond_its_guarantee_with_nothing_idle_waits_saying_so() -> None:
    answer = admit(config(team_a={"quota": 12}), {"team-a": 12 * G}, jobs(("j1", "team-a", 2)))
    assert answer.admitted == []
    assert answer.held == {"j1": "team-a uses 12 of its 12 GPUs; borrowing: 0 idle; the job needs 2 more"}


def test_idle_quota_of_another_tenant_is_borrowed() -> None:
    answer = admit(config(team_a={"quota": 4}, team_b={"quota": 4}), {"team-a": 4 * G},
                   jobs(("j1", "team-a", 2)))
    assert answer.admitted == ["j1"] and answer.borrowed == {"team-a": 2 * G} and answer.pool == 4 * G


def test_a_lender_keeps_what_its_own_waiting_jobs_ask_for() -> None:
    c = config(team_a={"quota": 4}, team_b={"quota": 4})
    waiting = jobs(("a-big", "team-a", 2), ("b1", "team-b", 3), ("a-small", "team-a", 1))
    answer = admit(c, {"team-a": 4 * G}, waiting)
    assert answer.admitted == ["b1", "a-small"]       # team-b lends 4 - 3 = 1 GPU only
    assert answer.held == {"a-big": "team-a uses 4 of its 4 GPUs; borrowing: 1 idle; the job needs 2 more"}


def test_a_tenant_that_may_not_borrow_stops_at_its_quota() -> None:
    c = config(team_a={"quota": 2, "may_borrow": False}, team_b={"quota": 8})
    answer = admit(c, {"team-a": 2 * G}, jobs(("j1", "team-a", 1)))
    assert answer.held == {"j1": "team-a uses 2 of its 2 GPUs; the job needs 1; team-a may not borrow"}


def test_borrowing_stops_at_the_tenants_limit() -> None:
    c = config(team_a={"quota": 4, "limit": 5}, team_b={"quota": 8})
    answer = admit(c, {"team-a": 4 * G}, jobs(("j1", "team-a", 2), ("j2", "team-a", 1)))
    assert answer.admitted == ["j2"]
    assert answer.held == {"j1": "team-a uses 4 of its limit of 5 GPUs; the job needs 2"}


def test_jobs_without_gpus_are_always_admitted() -> None:
    c = config(team_a={"quota": 0, "may_borrow": False})
    assert admit(c, {}, jobs(("cpu", "team-a", 0))).admitted == ["cpu"]


def test_an_unlisted_tenant_runs_on_borrowed_gpus_up_to_the_default_limit() -> None:
    c = config(default={"limit": 1}, team_a={"quota": 4})
    answer = admit(c, {}, jobs(("x1", "guests", 1), ("x2", "guests", 1)))
    assert answer.admitted == ["x1"]
    assert answer.held == {"x2": "guests uses 1 of its limit of 1 GPUs; the job needs 1"}


def test_unassigned_gpus_are_borrowable_by_everyone() -> None:
    waiting = jobs(("x1", "guests", 1), ("x2", "others", 1), ("x3", "guests", 1))
    answer = admit(config(unassigned=2), {}, waiting)
    assert answer.admitted == ["x1", "x2"] and answer.pool == 2 * G


def test_gpu_shares_count_in_gpus() -> None:
    c = config(team_a={"quota": 1})
    waiting = jobs(("s1", "team-a", 0.25), ("s2", "team-a", 0.25), ("s3", "team-a", 0.25))
    answer = admit(c, {"team-a": 500}, waiting)
    assert answer.admitted == ["s1", "s2"]
    assert answer.held == {"s3": "team-a uses 1 of its 1 GPUs; borrowing: 0 idle; the job needs 0.25 more"}


@pytest.mark.parametrize(("weights", "expected"), [
    ((1, 1), {"team-a": 3 * G, "team-b": 3 * G}),
    ((2, 1), {"team-a": 4 * G, "team-b": 2 * G}),
    ((1, 5), {"team-a": 1 * G, "team-b": 5 * G}),
])
def test_what_is_borrowable_is_shared_by_weight(weights: tuple[int, int], expected: dict[str, int]) -> None:
    c = config(team_a={"quota": 1, "weight": weights[0]}, team_b={"quota": 1, "weight": weights[1]},
               lender={"quota": 6})
    waiting = jobs(*((f"a{i}", "team-a", 1) for i in range(10)), *((f"b{i}", "team-b", 1) for i in range(10)))
    answer = admit(c, {"team-a": G, "team-b": G}, waiting)
    assert answer.borrowed == expected


def test_what_a_tenant_borrows_already_counts_in_its_fair_share() -> None:
    c = config(team_a={"quota": 0}, team_b={"quota": 0}, lender={"quota": 6})
    waiting = jobs(*((f"a{i}", "team-a", 1) for i in range(10)), *((f"b{i}", "team-b", 1) for i in range(10)))
    answer = admit(c, {"team-a": 2 * G}, waiting)     # team-a borrows 2 already: 4 left to lend
    assert answer.pool == 4 * G
    assert answer.borrowed == {"team-a": 3 * G, "team-b": 3 * G}


def test_the_idle_pool_never_goes_below_zero_when_quotas_were_lowered() -> None:
    c = config(team_a={"quota": 2}, team_b={"quota": 2})
    assert borrowable(c, {"team-a": 8 * G}, {}) == 0


def test_summaries_list_every_listed_tenant_and_any_other_with_work() -> None:
    c = config(team_a={"quota": 4}, team_b={"quota": 2})
    rows = summarize(c, {"team-a": 6 * G, "guests": 500}, jobs(("j1", "team-b", 1), ("j2", "team-b", 2)))
    assert [row.to_dict() for row in rows] == [
        {"name": "guests", "listed": False, "quota": 0, "limit": None, "may_borrow": True, "weight": 1,
         "used_gpus": 0.5, "borrowed_gpus": 0.5, "waiting_jobs": 0, "waiting_gpus": 0},
        {"name": "team-a", "listed": True, "quota": 4, "limit": None, "may_borrow": True, "weight": 1,
         "used_gpus": 6, "borrowed_gpus": 2, "waiting_jobs": 0, "waiting_gpus": 0},
        {"name": "team-b", "listed": True, "quota": 2, "limit": None, "may_borrow": True, "weight": 1,
         "used_gpus": 0, "borrowed_gpus": 0, "waiting_jobs": 2, "waiting_gpus": 3},
    ]


# ------------------------------------------------------------------------------------------- properties
NAMES = ("a", "b", "c", "d")
amounts = st.integers(0, 12).map(lambda n: n * 250)     # quarter GPUs


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[TenantsConfig, dict[str, int], list[Waiting]]:
    tenants = {}
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4)):
        quota = draw(amounts)
        limit = draw(st.none() | amounts.map(lambda extra, q=quota: q + extra))
        tenants[name] = TenantQuota(quota, limit, draw(st.booleans()), float(draw(st.integers(1, 4))))
    c = TenantsConfig(tenants, TenantQuota(0, draw(st.none() | amounts), draw(st.booleans())),
                      draw(amounts))
    usage = {name: used for name in NAMES if (used := draw(amounts))}
    sizes = st.sampled_from((0, 250, 500, 1000, 2000, 3000))
    waiting = [Waiting(f"j{i}", draw(st.sampled_from(NAMES)), draw(sizes))
               for i in range(draw(st.integers(0, 12)))]
    return c, usage, waiting


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_admission_invariants(scenario: tuple[TenantsConfig, dict[str, int], list[Waiting]]) -> None:
    c, usage, waiting = scenario
    answer = admit(c, usage, waiting)
    ids = [job.job_id for job in waiting]
    # every waiting job is admitted or held with a reason, never both
    assert set(answer.admitted) | set(answer.held) == set(ids)
    assert not set(answer.admitted) & set(answer.held)
    assert all(answer.held.values())
    # the used GPUs are the usage plus what was admitted
    for name in NAMES:
        added = sum(job.gpus for job in waiting if job.tenant == name and job.job_id in answer.admitted)
        assert answer.used.get(name, 0) == usage.get(name, 0) + added
    for name in NAMES:
        terms, before, after = c.of_tenant(name), usage.get(name, 0), answer.used.get(name, 0)
        # no tenant is admitted above its limit (nor above its quota when it may not borrow)
        if after > before and terms.ceiling is not None:
            assert after <= terms.ceiling
    # what was admitted beyond quotas never exceeds what was borrowable
    def above(used: dict[str, int], n: str) -> int:
        return max(0, used.get(n, 0) - c.of_tenant(n).quota)

    newly = sum(above(answer.used, n) - above(usage, n) for n in NAMES)
    assert newly <= answer.pool
    if answer.pool == 0:
        assert newly == 0


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_work_within_a_guarantee_is_never_kept_waiting_by_borrowers(
        scenario: tuple[TenantsConfig, dict[str, int], list[Waiting]]) -> None:
    """A tenant whose waiting jobs all fit in its unused guarantee (and limit) gets all of them admitted,
    whatever the others want: borrowing never takes what its own waiting work needs."""
    c, usage, waiting = scenario
    answer = admit(c, usage, waiting)
    for name, terms in c.tenants.items():
        own = [job for job in waiting if job.tenant == name]
        total = usage.get(name, 0) + sum(job.gpus for job in own)
        if total <= terms.quota and (terms.ceiling is None or total <= terms.ceiling):
            assert all(job.job_id in answer.admitted for job in own)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 20), st.integers(0, 3))
def test_equal_jobs_split_the_borrowable_gpus_by_weight(wa: int, wb: int, pool: int, head: int) -> None:
    """Two tenants borrowing with one-GPU jobs and more demand than the pool: their borrowed GPUs per
    weight differ by at most one job's worth once the pool is spent."""
    c = TenantsConfig({"a": TenantQuota(0, None, True, float(wa)), "b": TenantQuota(0, None, True, float(wb)),
                       "lender": TenantQuota(pool * G)})
    usage = {"a": head * G}
    waiting = [Waiting(f"{t}{i}", t, G) for i in range(30) for t in ("a", "b")]
    answer = admit(c, usage, waiting)
    a, b = answer.borrowed.get("a", 0) / G, answer.borrowed.get("b", 0) / G
    assert a + b == max(pool, head)      # the pool is spent (less what a borrowed before)
    if a > head:        # a was admitted something: it was never ahead by more than one job's worth
        assert (a - 1) / wa <= b / wb + 1e-9
    if b > 0:
        assert (b - 1) / wb <= a / wa + 1e-9
