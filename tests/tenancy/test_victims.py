"""Victim selection for preemption (`mesos_gpu.core.tenancyvictims`, pure, not wired yet): who may be
preempted for a waiting job, in which order, and never when it would not free enough."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.tenancy import TenantQuota, TenantsConfig
from mesos_gpu.core.tenancyvictims import Claim, Running, choose_own_victims, choose_victims

G = 1000
CONFIG = TenantsConfig({"owner": TenantQuota(4 * G), "borrower": TenantQuota(0),
                        "steady": TenantQuota(2 * G)})


def usage_of(running: list[Running]) -> dict[str, int]:
    out: dict[str, int] = {}
    for job in running:
        out[job.tenant] = out.get(job.tenant, 0) + job.gpus
    return out


def test_the_owner_reclaims_lent_gpus_from_borrowers_fewest_gpu_hours_lost_first() -> None:
    running = [Running("old", "borrower", 0, 2 * G, started_at=0), Running("new", "borrower", 0, 2 * G, 90),
               Running("mine", "steady", 0, 2 * G, 50)]
    claim = Claim("want", "owner", 0, 2 * G)
    assert choose_victims(claim, running, config=CONFIG, usage=usage_of(running), now=100) == ("new",)


def test_a_tenant_within_its_quota_is_never_preempted_by_another_tenant() -> None:
    running = [Running("mine", "steady", 0, 2 * G, 50)]
    claim = Claim("want", "owner", 10, 2 * G)
    assert choose_victims(claim, running, config=CONFIG, usage=usage_of(running), now=100) is None


def test_nothing_is_preempted_when_it_would_not_free_enough() -> None:
    running = [Running("b1", "borrower", 0, 1 * G, 0)]
    claim = Claim("want", "owner", 0, 2 * G)
    assert choose_victims(claim, running, config=CONFIG, usage=usage_of(running), now=1) is None


def test_higher_priority_preempts_lower_priority_of_its_own_tenant_only_lower() -> None:
    running = [Running("low", "steady", 1, 1 * G, 0), Running("same", "steady", 5, 1 * G, 0)]
    claim = Claim("want", "steady", 5, 1 * G)
    assert choose_victims(claim, running, config=CONFIG, usage=usage_of(running), now=1) == ("low",)


def test_a_job_preempted_once_for_this_claim_is_spared() -> None:
    running = [Running("b1", "borrower", 0, 2 * G, 0), Running("b2", "borrower", 0, 2 * G, 0)]
    claim = Claim("want", "owner", 0, 2 * G)
    first = choose_victims(claim, running, config=CONFIG, usage=usage_of(running), now=1)
    assert first == ("b1",)
    again = choose_victims(claim, running, config=CONFIG, usage=usage_of(running), now=1, spared=first)
    assert again == ("b2",)


def test_a_claim_beyond_its_guarantee_takes_only_from_lower_priority_borrowers() -> None:
    running = [Running("b-low", "borrower", 0, 2 * G, 0), Running("b-high", "borrower", 9, 2 * G, 0)]
    claim = Claim("want", "owner", 5, 6 * G)        # beyond owner's quota of 4: not a reclaim
    assert choose_victims(claim, running, config=CONFIG, usage=usage_of(running), now=1) is None
    smaller = Claim("w", "owner", 5, 2 * G)
    assert choose_victims(smaller, running, config=CONFIG, usage=usage_of(running), now=1) == ("b-low",)


jobs = st.lists(st.builds(Running, st.uuids().map(str), st.sampled_from(["owner", "borrower", "steady"]),
                          st.integers(0, 3), st.integers(1, 4).map(lambda n: n * 500), st.floats(0, 100)),
                max_size=8, unique_by=lambda job: job.job_id)


@settings(max_examples=300, deadline=None)
@given(jobs, st.sampled_from(["owner", "borrower", "steady"]), st.integers(0, 3), st.integers(1, 8))
def test_victims_free_enough_and_never_take_a_tenant_below_its_quota_for_another(
        running: list[Running], tenant: str, priority: int, halves: int) -> None:
    claim = Claim("want", tenant, priority, halves * 500)
    usage = usage_of(running)
    chosen = choose_victims(claim, running, config=CONFIG, usage=usage, now=100)
    if chosen is None:
        return
    victims = [job for job in running if job.job_id in chosen]
    assert len(victims) == len(chosen) and sum(job.gpus for job in victims) >= claim.gpus
    # every victim of another tenant was borrowing when taken (its tenant stays above quota before it)
    left = dict(usage)
    by_id = {job.job_id: job for job in running}
    for job_id in chosen:
        job = by_id[job_id]
        if job.tenant != claim.tenant:
            assert left[job.tenant] > CONFIG.of_tenant(job.tenant).quota
        else:
            assert job.priority < claim.priority
        left[job.tenant] -= job.gpus
    # minimal: without the last victim it would not be enough
    assert sum(job.gpus for job in victims) - by_id[chosen[-1]].gpus < claim.gpus


# ------------------------------------------------------ a quota-held claim: its own tenant, lower priority
def test_a_held_claim_takes_its_own_lower_priority_jobs_lowest_priority_first() -> None:
    running = [Running("a-prio1", "steady", 1, 1 * G, 0), Running("a-prio0", "steady", 0, 1 * G, 50),
               Running("a-equal", "steady", 5, 2 * G, 0), Running("borrowed", "borrower", 0, 4 * G, 0)]
    claim = Claim("want", "steady", 5, 2 * G)
    # enough once 1 GPU is freed: only the lowest priority is taken
    assert choose_own_victims(claim, running, admits=lambda freed: freed >= 1 * G, now=100) == ("a-prio0",)
    assert choose_own_victims(claim, running, admits=lambda freed: freed >= 2 * G, now=100) == (
        "a-prio0", "a-prio1")
    # never an equal priority, never another tenant: when those would be needed, nobody
    assert choose_own_victims(claim, running, admits=lambda freed: freed >= 3 * G, now=100) is None
    assert choose_own_victims(claim, running, admits=lambda freed: freed > 0, now=100,
                              spared={"a-prio0"}) == ("a-prio1",)
    # admitted without a victim: nobody
    assert choose_own_victims(claim, running, admits=lambda freed: True, now=100) is None


@settings(max_examples=300, deadline=None)
@given(jobs, st.integers(0, 3), st.integers(1, 8), st.integers(0, 8))
def test_held_victims_are_own_lower_priority_and_a_minimal_prefix(running: list[Running], priority: int,
                                                                  halves: int, needed_halves: int) -> None:
    claim = Claim("want", "steady", priority, halves * 500)
    calls: list[int] = []

    def admits(freed: int) -> bool:
        calls.append(freed)
        return freed >= needed_halves * 500

    chosen = choose_own_victims(claim, running, admits=admits, now=100)
    by_id = {job.job_id: job for job in running}
    lower = [job for job in running if job.tenant == "steady" and job.priority < priority]
    if chosen is None:     # admitted without a victim, or even every lower-priority job is not enough
        assert needed_halves == 0 or sum(job.gpus for job in lower) < needed_halves * 500
        return
    victims = [by_id[job_id] for job_id in chosen]
    assert all(job.tenant == "steady" and job.priority < priority for job in victims)
    freed = sum(job.gpus for job in victims)
    assert freed >= needed_halves * 500 and freed - victims[-1].gpus < needed_halves * 500
    assert [job.priority for job in victims] == sorted(job.priority for job in victims)


def test_the_choice_counts_what_the_set_frees_and_may_need_less_than_the_claim() -> None:
    # two half-GPU shares of one host free its GPU together (the second one added frees it), a third
    # share elsewhere keeps its host: the prefix grows until the SET frees the claim's GPU
    running = [Running("s1", "borrower", 0, G // 2, 99), Running("s2", "borrower", 0, G // 2, 98),
               Running("s3", "borrower", 0, G // 2, 97)]
    host_of = {"s1": "h1", "s2": "h1", "s3": "h2"}
    left = {"h1": 2, "h2": 2}

    def frees(job_id: str) -> int:
        left[host_of[job_id]] -= 1
        return G if left[host_of[job_id]] == 0 else 0

    claim = Claim("want", "owner", 0, 1 * G)
    usage = usage_of(running)
    assert choose_victims(claim, running, config=CONFIG, usage=usage, now=100, frees=frees) == ("s1", "s2")
    # without `frees`, each share counts its own thousandths (s1 + s2 make one GPU too)
    assert choose_victims(claim, running, config=CONFIG, usage=usage, now=100) == ("s1", "s2")
    # idle GPUs may make up the rest: the victims need free only `needed`
    whole = [Running("b1", "borrower", 0, 1 * G, 50), Running("b2", "borrower", 0, 1 * G, 0)]
    two = Claim("want", "owner", 0, 2 * G)
    assert choose_victims(two, whole, config=CONFIG, usage=usage_of(whole), now=100, needed=G) == ("b1",)
    assert choose_victims(two, whole, config=CONFIG, usage=usage_of(whole), now=100) == ("b1", "b2")
