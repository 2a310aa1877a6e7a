"""Issue 14's preemption gaps, in the state machine: GPU-share jobs as victims (planned on what actually
frees), a quota-held job preempting its own tenant's lower-priority jobs, `spared` surviving a failover,
a round on Tick when no offers come, and a reconnection re-sending a victim's kill with its grace."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.commands import GracefulKill, KillTask
from mesos_gpu.core.events import Disconnected, ExecutorEnded, JobsRecovered, KillRequested, Subscribed
from mesos_gpu.core.model import JobState
from mesos_gpu.core.records import JobRecord
from mesos_gpu.core.state import Tick
from tests.scheduler.builders import offer, share_job, single_job
from tests.scheduler.test_state import of_type
from tests.tenancy.test_preempt import TWO, preempting, run, task_of
from tests.tenancy.test_state import Tenanted


def tasks_of(h: Tenanted, job_id: str) -> list[str]:
    return [member.task_id for member in h.job(job_id).members.values()]


# ------------------------------------------------------------------------------ GPU shares as victims
def test_a_share_job_is_a_victim_when_it_vacates_its_hosts_gpu() -> None:
    h = preempting(None, grace=5.0)
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1"]
    run(h, "s1")
    (host,) = h.state.share_hosts.values()
    h.submit("big", single_job("big", gpus=1, priority=10))
    kills = of_type(h.offers(offer("S1", gpus=0)), KillTask)
    assert kills == [GracefulKill(task_of(h, "s1"), "S1", 5.0)]
    s1 = h.job("s1")
    assert s1.state is JobState.RESTARTING and s1.restarts == 0 and "priority 10 > 0" in s1.message
    # its host takes no new share (else the requeued share would land on it again and the GPU never frees)
    assert not host.accepting(h.now) and host.closing and not host.ended
    h.update(task_of(h, "s1"), "TASK_KILLED")
    # still seen by placement (not accepting) while its executor lingers holding the GPU, until it exits
    assert [(v.host_id, v.accepting) for v in h.state.share_host_views(h.now)] == [(host.host_id, False)]
    h(ExecutorEnded("S1", host.host_id, h.tick()))
    assert host.host_id not in h.state.share_hosts
    # the host's executor exits at its linger: the claim waits that long before preempting anyone else
    assert h.state.preemption is not None
    assert h.state.preemption.settle_extra["big"] == host.linger_seconds
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["big"]
    assert h.job("s1").state is JobState.RESTARTING


def test_a_share_is_not_a_victim_while_another_share_keeps_its_host_and_gpu() -> None:
    h = preempting(None)
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    h.submit("s2", share_job("s2", gpus=0.5, priority=20))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1", "s2"]
    run(h, "s1")
    run(h, "s2")
    h.submit("big", single_job("big", gpus=1, priority=10))
    # s1 alone frees half a GPU that no whole-GPU job can use; s2 has a higher priority: nobody is stopped
    assert of_type(h.offers(offer("S1", gpus=0)), KillTask) == []
    assert h.job("s1").state is JobState.RUNNING and h.job("s2").state is JobState.RUNNING


def test_when_the_cheapest_share_victims_free_no_gpu_a_whole_gpu_victim_is_taken() -> None:
    h = preempting(None)
    h.submit("w", single_job("w", gpus=1, priority=0))     # started first: the most GPU-hours to lose
    assert h.launched(h.offers(offer("S2", gpus=1))) == ["w"]
    run(h, "w", "S2")
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    h.submit("s2", share_job("s2", gpus=0.5, priority=20))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1", "s2"]
    run(h, "s1")
    run(h, "s2")
    h.submit("big", single_job("big", gpus=1, priority=10))
    # s1 comes first (fewest GPU-hours lost) but frees no GPU while s2 keeps its host: w is taken instead
    kills = of_type(h.offers(offer("S1", gpus=0), offer("S2", gpus=0)), KillTask)
    assert [k.task_id for k in kills] == [task_of(h, "w")]
    assert h.job("s1").state is JobState.RUNNING


def test_an_owner_reclaims_its_gpu_from_a_borrowers_share_job() -> None:
    h = preempting({"tenants": {"team-a": {"quota": 1}, "team-b": {"quota": 0}}})
    h.submit("b1", share_job("b1", gpus=0.5, tenant="team-b"))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["b1"]
    run(h, "b1")
    h.submit("a1", single_job("a1", gpus=1, tenant="team-a"))
    kills = of_type(h.offers(offer("S1", gpus=0)), KillTask)
    assert [k.task_id for k in kills] == [task_of(h, "b1")]
    assert "team-b borrows GPUs beyond its quota; team-a reclaims" in h.job("b1").message


# ---------------------------------------------------------------- quota-held jobs preempt within their tenant
CAPPED = {"tenants": {"team-a": {"quota": 2, "may_borrow": False}, "team-b": {"quota": 2}}}


def test_a_tenant_at_its_quota_preempts_its_own_lower_priority_job_for_a_higher_one() -> None:
    h = preempting(CAPPED, grace=9.0)
    h.submit("low", single_job("low", gpus=2, priority=0, tenant="team-a"))
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["low"]
    run(h, "low")
    h.submit("high", single_job("high", gpus=2, priority=10, tenant="team-a"))
    commands = h.offers(offer("S1", gpus=2))
    # team-b's 2 idle GPUs are offered, but team-a may not borrow: "high" is held by its quota ...
    assert h.launched(commands) == []
    # ... and stops its own tenant's lower-priority job (gracefully, requeued, not a failure)
    assert of_type(commands, KillTask) == [GracefulKill(task_of(h, "low"), "S1", 9.0)]
    low = h.job("low")
    assert low.state is JobState.RESTARTING and low.restarts == 0
    assert "team-a is at its quota or limit; priority 10 > 0 within team-a" in low.message
    h.update(task_of(h, "low"), "TASK_KILLED")
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["high"]
    assert h.job("low").wait_reason.startswith("team-a uses 2 of its 2 GPUs")


def test_a_held_job_never_preempts_its_equals_nor_other_tenants() -> None:
    h = preempting(CAPPED)
    h.submit("a-low", single_job("a-low", gpus=2, priority=5, tenant="team-a"))
    h.submit("b-low", single_job("b-low", gpus=2, priority=0, tenant="team-b"))
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["a-low", "b-low"]
    run(h, "a-low")
    run(h, "b-low")
    h.submit("a-same", single_job("a-same", gpus=2, priority=5, tenant="team-a"))
    assert of_type(h.offers(offer("S1", gpus=0)), KillTask) == []
    assert h.job("a-low").state is JobState.RUNNING and h.job("b-low").state is JobState.RUNNING


def test_a_held_job_preempts_only_when_its_tenant_then_admits_it() -> None:
    # a 3-GPU claim at a limit of 4 with 1 + 1 + 2 running: the two 1-GPU jobs free only 2: the 2-GPU
    # one (priority 1) is needed too; the highest-priority one (priority 20) is never touched
    h = preempting({"tenants": {"team-a": {"quota": 4, "limit": 4}}})
    for name, gpus, priority in (("one", 1, 0), ("two", 1, 0), ("pair", 2, 1)):
        h.submit(name, single_job(name, gpus=gpus, priority=priority, tenant="team-a"))
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["one", "pair", "two"]
    for name in ("one", "two", "pair"):
        run(h, name)
    h.submit("claim", single_job("claim", gpus=3, priority=10, tenant="team-a"))
    kills = of_type(h.offers(offer("S1", gpus=0)), KillTask)
    stopped = sorted(name for name in ("one", "two", "pair") if h.job(name).state is JobState.RESTARTING)
    assert len(kills) == 3 and stopped == ["one", "pair", "two"]


@settings(max_examples=40, deadline=None)
@given(running=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 20)), min_size=1, max_size=5),
       claim_gpus=st.integers(1, 4), claim_priority=st.integers(0, 20), limit=st.integers(4, 8))
def test_held_preemption_never_takes_a_tenant_above_its_limit(running: list[tuple[int, int]], claim_gpus: int,
                                                             claim_priority: int, limit: int) -> None:
    """Property: the victims of a quota-held claim are of lower priority, its own tenant's, and once they
    ended, the tenant's usage plus the claim is within its limit; when nothing is stopped, the claim could
    not have been admitted by stopping every lower-priority job."""
    h = preempting({"tenants": {"t": {"quota": limit, "limit": limit}}})
    total = 0
    names = []
    for i, (gpus, priority) in enumerate(running):
        if total + gpus > limit:
            break
        name = f"r{i}"
        h.submit(name, single_job(name, gpus=gpus, priority=priority, tenant="t"))
        assert h.launched(h.offers(offer("S1", gpus=gpus))) == [name]
        run(h, name)
        total += gpus
        names.append(name)
    h.submit("claim", single_job("claim", gpus=claim_gpus, priority=claim_priority, tenant="t"))
    h.offers(offer("S1", gpus=limit - total))
    victims = [n for n in names if h.job(n).state is JobState.RESTARTING]
    if h.job("claim").state is not JobState.PENDING:
        return      # admitted and placed without anyone stopped
    assert all(h.job(n).spec.priority < claim_priority for n in victims)
    left = total - sum(int(h.job(n).spec.resources.gpus) for n in victims)
    lower = sum(int(h.job(n).spec.resources.gpus) for n in names if h.job(n).spec.priority < claim_priority)
    if victims:
        assert left + claim_gpus <= limit
    else:
        assert total - lower + claim_gpus > limit


# ------------------------------------------------------------------------------ spared across a failover
def recovered(h: Tenanted, document: dict[str, Any] | None) -> Tenanted:
    """A new leader: a fresh state (fresh preemption memory) from the records the old one persisted."""
    new = preempting(document)
    records = tuple(job.to_dict() for job in h.state.jobs.values())   # what the store holds
    new.now = h.now
    new(JobsRecovered(records, new.tick()))
    return new


def test_spared_survives_a_failover_in_the_victims_record() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    h.submit("high", single_job("high", gpus=2, priority=10, mem=4096))
    assert len(of_type(h.offers(offer("S1", gpus=0)), KillTask)) == 1
    assert h.persisted["low"]["preempted_for"] == ["high"]
    h.update(task_of(h, "low"), "TASK_KILLED")
    assert h.launched(h.offers(offer("S2", gpus=2, mem=2048))) == ["low"]
    run(h, "low", "S2")
    new = recovered(h, None)
    new(Subscribed("F", new.tick()))
    assert new.job("low").preempted_for == ("high",)
    # the new leader knows "low" was preempted for "high" once: never again for it
    assert of_type(new.offers(offer("S2", gpus=0, mem=8192)), KillTask) == []
    assert new.job("low").state is JobState.RUNNING
    assert new.state.preemption is not None and new.state.preemption.spared["high"] == {"low"}


def test_old_records_without_the_field_load_and_it_is_written_only_when_set() -> None:
    h = preempting(None)
    h.submit("j", single_job("j", gpus=1))
    record = h.job("j").to_dict()
    assert "preempted_for" not in record
    assert JobRecord.from_dict(record).preempted_for == ()
    again = JobRecord.from_dict({**record, "preempted_for": ["a", "b"]})
    assert again.preempted_for == ("a", "b") and again.to_dict()["preempted_for"] == ["a", "b"]


def test_a_victims_record_keeps_only_the_claims_still_alive() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    for claim, priority in (("c1", 10), ("c2", 20)):
        h.submit(claim, single_job(claim, gpus=2, priority=priority))
        assert len(of_type(h.offers(offer("S1", gpus=0)), KillTask)) == 1
        h.update(task_of(h, "low"), "TASK_KILLED")
        h(KillRequested(claim, h.tick()))        # the claim goes away: it is not remembered for ever
        assert h.launched(h.offers(offer("S1", gpus=2))) == ["low"]
        run(h, "low")
    assert h.job("low").preempted_for == ("c2",)


# -------------------------------------------------------------------------- a round on Tick, no offers
def test_a_full_cluster_without_offers_still_preempts_on_tick() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    h.submit("high", single_job("high", gpus=2, priority=10))
    assert h.state.preemption is not None
    idle = h.state.preemption.idle_seconds
    assert idle is not None
    kills: list[Any] = []
    start = h.now
    while not kills and h.now - start < 3 * idle:
        kills = of_type(h(Tick(h.tick())), KillTask)
    assert [k.task_id for k in kills] == [task_of(h, "low")]
    assert h.now - start >= idle        # not before no offer cycle came for idle_seconds
    # it planned on the freed capacity only: the claim fits there
    h.update(task_of(h, "low"), "TASK_KILLED")
    assert h.launched(h.offers(offer("S1", gpus=2))) == ["high"]


def test_offer_cycles_with_waiting_jobs_keep_the_tick_round_away() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    h.submit("big", single_job("big", gpus=4, priority=10))     # fits nowhere, even with "low" stopped
    preemption = h.state.preemption
    assert preemption is not None and preemption.idle_seconds is not None
    for _ in range(30):
        assert of_type(h.offers(offer("S1", gpus=0)), KillTask) == []
        cycle = h.now
        assert preemption.last_round_at == cycle        # the offer cycle's round ran
        assert of_type(h(Tick(h.tick())), KillTask) == []
        assert preemption.last_round_at == cycle        # and no round on the Tick after it
    # once no offer comes for idle_seconds, a Tick round runs
    start = h.now
    while preemption.last_round_at == cycle and h.now - start <= 2 * preemption.idle_seconds:
        h(Tick(h.tick()))
    assert preemption.last_round_at == h.now and h.now - cycle >= preemption.idle_seconds


# -------------------------------------------------------------------- kills re-sent after a reconnection
def test_after_a_reconnection_a_victims_kill_is_sent_again_with_its_grace() -> None:
    h = preempting(TWO, grace=7.0)
    h.submit("b1", single_job("b1", gpus=4, tenant="team-b"))
    h.offers(offer("S1", gpus=4))
    run(h, "b1")
    h.submit("a1", single_job("a1", gpus=2, tenant="team-a"))
    h.submit("gone", single_job("gone", gpus=0, tenant="team-a"))
    h.offers(offer("S1", gpus=0))
    run(h, "gone")
    h(KillRequested("gone", h.tick()))
    h(Disconnected(h.tick()))
    commands = h(Subscribed("F", h.tick()))
    kills = of_type(commands, KillTask)
    assert GracefulKill(task_of(h, "b1"), "S1", 7.0) in kills
    assert KillTask(task_of(h, "gone"), "S1") in kills        # a kill on request: a plain KILL, as before
