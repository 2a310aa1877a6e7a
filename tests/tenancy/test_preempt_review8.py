"""Review 8's preemption findings, in the state machine: a vacated share host is planned as gone (a GPU
profile keeps its GPU again) but counted while it lingers; share victims count what their SET frees (a
share frees its host's GPU only with every other share there) and useless victims are left out; agents'
attributes known from any offer or the agent catalog; a host a preemption closed stays closed after a
failover; a Tick round admits on the whole queue and runs after the deadlines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mesos_gpu.core.commands import Accept, KillTask
from mesos_gpu.core.events import Subscribed
from mesos_gpu.core.model import JobState
from mesos_gpu.core.placement.offers import AgentSlot
from mesos_gpu.core.preempt import Preemption
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.sharehosts import ShareHosts
from mesos_gpu.core.state import SchedulerState, StatusReceived, Tick
from mesos_gpu.core.tenancy import TenantsConfig
from tests.scheduler.builders import offer, share_job, single_job, status
from tests.scheduler.test_state import SETTINGS, Harness, of_type
from tests.tenancy.test_preempt import preempting, run, task_of
from tests.tenancy.test_preempt_gaps import recovered

DAY = TenantsConfig.of({"profiles": {
    "profiles": {"day": {"groups": [{"share_gpus": 1}]}, "night": {"groups": [{"share_gpus": 0}]}},
    "schedule": [{"at": "0 8 * * *", "profile": "day"}, {"at": "0 20 * * *", "profile": "night"}],
}}).profiles
NOON = datetime(2026, 12, 4, 12, tzinfo=UTC).timestamp()


def by_day() -> Harness:
    """A state with the day/night profiles (noon: `day` keeps 1 GPU of each agent for share hosts)."""
    h = Harness()
    h.state = SchedulerState(planner=make_planner(), settings=SETTINGS,
                             share_hosts=ShareHosts(profiles=lambda: DAY))
    h.state.preemption = Preemption(grace_seconds=5.0)
    h.now = NOON
    h.subscribe()
    return h


def accepted(commands: list[Any]) -> list[str]:
    return sorted(str(info["task_id"]["value"]).split(".")[0]
                  for command in of_type(commands, Accept) for info in command.task_infos)


# ------------------------------------------------------------- 1: the vacated host, planned as gone
def test_a_share_is_not_preempted_for_a_whole_gpu_job_the_profile_keeps_its_gpu_from() -> None:
    h = by_day()
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    assert accepted(h.offers(offer("a", gpus=1))) == ["s1"]
    h.run_all("s1")
    h.submit("big", single_job("big", gpus=1, priority=10))
    # once s1's host is gone, the day profile keeps agent a's only GPU for share hosts: big would still
    # wait, so nobody is stopped
    assert of_type(h.offers(offer("a", gpus=0)), KillTask) == []
    assert h.job("s1").state is JobState.RUNNING
    for _ in range(3):
        assert of_type(h(Tick(h.tick(20))), KillTask) == []
    assert h.job("s1").state is JobState.RUNNING


def test_a_closed_share_host_still_counts_toward_the_profiles_kept_gpus_while_it_lingers() -> None:
    h = by_day()
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    assert accepted(h.offers(offer("a", gpus=1))) == ["s1"]     # agent a's other GPU is busy meanwhile
    h.run_all("s1")
    preemption = h.state.preemption
    assert preemption is not None
    preemption._close_hosts(h.state, "claim", [h.job("s1")])    # as a preemption of s1 does
    h.update(task_of(h, "s1"), "TASK_KILLED", agent="a")
    # its executor still holds its GPU (it exits at its linger): the GPU agent a offers is not kept too
    h.submit("w", single_job("w", gpus=1, priority=0))
    assert accepted(h.offers(offer("a", gpus=1))) == ["w"]
    (host,) = h.state.share_hosts.values()
    assert host.closing and not host.accepting(h.now)


# ------------------------------------------------------------- 2: what the chosen set of shares frees
def test_two_low_priority_shares_on_one_host_are_preempted_together() -> None:
    h = preempting(None)
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    h.submit("s2", share_job("s2", gpus=0.5, priority=0))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1", "s2"]
    run(h, "s1")
    run(h, "s2")
    (host,) = h.state.share_hosts.values()
    h.submit("big", single_job("big", gpus=1, priority=10))
    kills = of_type(h.offers(offer("S1", gpus=0)), KillTask)
    assert sorted(k.task_id for k in kills) == sorted([task_of(h, "s1"), task_of(h, "s2")])
    assert host.closing


def test_a_share_that_frees_no_gpu_is_not_killed_along_with_a_useful_victim() -> None:
    h = preempting(None)
    h.submit("w", single_job("w", gpus=1, priority=0))
    assert h.launched(h.offers(offer("S2", gpus=1))) == ["w"]
    run(h, "w", "S2")
    h.now += 1000       # w has run long: more GPU-hours to lose than s1, so s1 is ranked first
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    h.submit("s2", share_job("s2", gpus=0.5, priority=20))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1", "s2"]
    run(h, "s1")
    run(h, "s2")
    h.submit("big", single_job("big", gpus=2, priority=10))
    # S2's idle GPU and w's make big's 2; s1 frees nothing while s2 keeps its host
    kills = of_type(h.offers(offer("S1", gpus=0), offer("S2", gpus=1)), KillTask)
    assert [k.task_id for k in kills] == [task_of(h, "w")]
    assert h.job("s1").state is JobState.RUNNING and h.job("w").state is JobState.RESTARTING


# ------------------------------------------------------------------ 4: the agents' attributes
A100 = {"gpu_model": "A100"}
ON_A100 = [["gpu_model", "LIKE", "A100"]]


def ticks_until_a_kill(h: Harness, ticks: int = 40) -> list[Any]:
    kills: list[Any] = []
    for _ in range(ticks):
        kills += of_type(h(Tick(h.tick())), KillTask)
    return kills


def test_a_full_cluster_preempts_for_a_constrained_claim_knowing_attributes_from_any_offer() -> None:
    h = preempting(None)
    h.state.planner = make_planner()
    h.submit("low", single_job("low", gpus=2, priority=0))
    assert h.launched(h.offers(offer("S1", gpus=2, attributes=A100))) == ["low"]    # nothing waited
    run(h, "low")
    h.submit("high", single_job("high", gpus=2, priority=10, constraints=ON_A100))
    assert [k.task_id for k in ticks_until_a_kill(h)] == [task_of(h, "low")]


def test_after_a_failover_the_agent_catalog_gives_the_attributes() -> None:
    h = preempting(None)
    h.state.planner = make_planner()
    h.submit("low", single_job("low", gpus=2, priority=0))
    assert h.launched(h.offers(offer("S1", gpus=2, attributes=A100))) == ["low"]
    run(h, "low")
    new = recovered(h, None)          # a new leader of a full cluster: no offer comes
    new.state.planner = make_planner()
    agents = (AgentSlot("S1", "host-S1", Resources.of(gpus=2, cpus=8, mem=16384), attributes=A100),)
    assert new.state.preemption is not None
    new.state.preemption.catalog = lambda: agents
    new(Subscribed("F", new.tick()))
    new.submit("high", single_job("high", gpus=2, priority=10, constraints=ON_A100))
    assert [k.task_id for k in ticks_until_a_kill(new)] == [task_of(new, "low")]


# ------------------------------------------------------------- 5: a closed host after a failover
def test_a_host_a_preemption_closed_stays_closed_after_a_failover() -> None:
    h = preempting(None, grace=30.0)
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1"]
    run(h, "s1")
    h.submit("big", single_job("big", gpus=1, priority=10))
    assert of_type(h.offers(offer("S1", gpus=0, gpu_memory=16000)), KillTask)
    new = recovered(h, None)                        # a failover within s1's grace
    new(Subscribed("F", new.tick()))
    new.update(task_of(new, "s1"), "TASK_RUNNING")  # reconciliation: s1 still runs (in its grace)
    new.submit("s3", share_job("s3", gpus=0.25, priority=0))
    assert new.launched(new.offers(offer("S1", gpus=0, gpu_memory=16000))) == []
    (again,) = new.state.share_hosts.values()
    assert again.closing and not again.accepting(new.now)


def test_a_recovered_host_of_running_shares_takes_shares_again() -> None:
    h = preempting(None)
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1"]
    run(h, "s1")
    new = recovered(h, None)
    new(Subscribed("F", new.tick()))
    # an update its executor made since the subscription (not the master's reconciliation answer, nor
    # an agent's update retried from before: `tests/scheduler/test_share_host_unsure.py`)
    new.update(task_of(new, "s1"), "TASK_RUNNING", with_uuid=False, reason="REASON_RECONCILIATION")
    (again,) = new.state.share_hosts.values()
    assert not again.accepting(new.now)
    new(StatusReceived({**status(task_of(new, "s1"), "TASK_RUNNING"), "timestamp": new.now}, new.tick()))
    assert again.accepting(new.now)
    new.submit("s3", share_job("s3", gpus=0.25, priority=0))
    assert new.launched(new.offers(offer("S1", gpus=0, gpu_memory=16000))) == ["s3"]


# ------------------------------------------------------------------------- 7: the Tick round
def test_a_tick_round_admits_on_the_whole_queue() -> None:
    # team-a (quota 2, no borrowing): "second" waits behind "first" (same tenant, higher priority,
    # submitted later): the whole queue holds "second", so it may not reclaim team-b's borrowed GPUs
    h = preempting({"tenants": {"team-a": {"quota": 2, "may_borrow": False}, "team-b": {"quota": 2}}})
    h.submit("b", single_job("b", gpus=4, tenant="team-b"))        # borrows team-a's idle 2
    assert h.launched(h.offers(offer("S1", gpus=4))) == ["b"]
    run(h, "b")
    h.submit("second", single_job("second", gpus=2, priority=5, tenant="team-a"))
    preemption = h.state.preemption
    assert preemption is not None and preemption.idle_seconds is not None
    h(Tick(h.tick()))                                   # the term's first tick: the count starts
    h.now += preemption.idle_seconds - 3
    h.submit("first", single_job("first", gpus=2, priority=10, tenant="team-a"))
    assert of_type(h(Tick(h.tick(3))), KillTask) == []  # the round ran: "first" is not ready long enough
    assert preemption.last_round_at == h.now
    assert h.job("b").state is JobState.RUNNING


def test_a_job_whose_deadline_passes_on_a_tick_preempts_nobody() -> None:
    h = preempting(None)
    h.submit("low", single_job("low", gpus=2, priority=0))
    h.offers(offer("S1", gpus=2))
    run(h, "low")
    preemption = h.state.preemption
    assert preemption is not None and preemption.idle_seconds is not None
    h(Tick(h.tick()))                                   # the term's first tick: the count starts
    due = h.now + preemption.idle_seconds               # the tick of the first round ...
    h.submit("high", single_job("high", gpus=2, priority=10, deadline_seconds=int(due - h.now)))
    h.now = due - 1                                     # (... is the tick of high's deadline)
    commands = h(Tick(h.tick()))
    assert h.job("high").state is JobState.FAILED
    assert of_type(commands, KillTask) == [] and h.job("low").state is JobState.RUNNING
