"""Profiles through the state machine (pure, a real planner): by day a share opens a share host; at the
night switch the host takes no new share and whole-GPU work waits for its GPU; the running share is
named overdue at the drain deadline; once it ends and its host is gone, the GPU goes to whole-GPU work.

Wired as the lead's hook will wire it: `SchedulerState(..., share_hosts=ShareHosts(profiles=...))`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mesos_gpu.core.commands import Accept, GracefulKill
from mesos_gpu.core.model import JobState
from mesos_gpu.core.placement.offers import catalog_from_master_state
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.sharehosts import FORGET_AFTER_SECONDS, ShareHosts
from mesos_gpu.core.sharing import DEFAULT_LINGER_SECONDS
from mesos_gpu.core.state import SchedulerState, Tick
from mesos_gpu.core.tenancy import TenantsConfig
from tests.scheduler.builders import offer, share_job, single_job
from tests.scheduler.test_state import SETTINGS, Harness

PROFILES = TenantsConfig.of({"profiles": {
    "profiles": {"day": {"groups": [{"share_gpus": 1}]},
                 "night": {"groups": [{"share_gpus": 0}], "drain_seconds": 600}},
    "schedule": [{"at": "0 8 * * *", "profile": "day"}, {"at": "0 20 * * *", "profile": "night"}],
}}).profiles


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def harness(start: float) -> Harness:
    h = Harness()
    h.state = SchedulerState(planner=make_planner(), settings=SETTINGS,
                             share_hosts=ShareHosts(profiles=lambda: PROFILES))
    h.now = start
    h.subscribe()
    return h


def accepted(commands: list[Any]) -> list[str]:
    return [str(info["task_id"]["value"]) for c in commands if isinstance(c, Accept) for info in c.task_infos]


def test_day_to_night_drains_the_share_host_then_whole_gpu_work_gets_its_gpu():
    h = harness(utc(2026, 12, 4, 12))
    h.submit("s1", share_job("s1"))
    (share_task,) = accepted(h.offers(offer("a", gpus=1)))
    h.run_all("s1")
    (host,) = h.state.share_hosts.values()
    assert host.tasks.keys() == {share_task}
    assert h.state.share_hosts.overdue(h.now) == []            # by day nothing drains

    h.now = utc(2026, 12, 4, 20, 0, 30)                         # night: share_gpus 0
    h.submit("s2", share_job("s2"))
    h.submit("w", single_job("w", gpus=1))
    assert accepted(h.offers(offer("a", gpus=0))) == []        # the host holds the GPU: none offered
    assert h.job("s2").state is JobState.PENDING and "gpu profile 'night'" in h.job("s2").wait_reason
    assert h.job("w").state is JobState.PENDING
    assert h.state.share_hosts.profile_view(h.now)["draining_share_hosts"] == [host.host_id]
    assert h.state.share_hosts.overdue(utc(2026, 12, 4, 20, 9, 59)) == []
    (kill,) = h.state.share_hosts.overdue(utc(2026, 12, 4, 20, 10))
    assert kill[:2] == (share_task, "a") and "profile switch to 'night'" in kill[2]

    h.update(share_task, "TASK_FINISHED", agent="a")           # the share ends; its host lingers, exits
    h.now += DEFAULT_LINGER_SECONDS + FORGET_AFTER_SECONDS + 1
    h(Tick(h.now))
    assert not h.state.share_hosts
    (launched,) = accepted(h.offers(offer("a", gpus=1)))
    (member,) = h.job("w").members.values()
    assert launched == member.task_id and h.job("w").state is not JobState.PENDING
    assert h.job("s2").state is JobState.PENDING               # still no share host at night


def test_by_day_the_cap_is_one_share_host_per_agent():
    h = harness(utc(2026, 12, 4, 12))
    h.submit("s1", share_job("s1", gpus=0.75))
    h.submit("s2", share_job("s2", gpus=0.75))
    commands = h.offers(offer("a", gpus=2))
    assert len(accepted(commands)) == 1                         # a second host would pass share_gpus 1
    assert "gpu profile 'day'" in h.job("s2").wait_reason


SELECTIVE = TenantsConfig.of({"profiles": {
    "drain_seconds": 0,
    "profiles": {"day": {}, "night": {"groups": [{"selector": {"pool": "interactive"}, "share_gpus": 0}]}},
    "schedule": [{"at": "0 8 * * *", "profile": "day"}, {"at": "0 20 * * *", "profile": "night"}],
}}).profiles


def test_only_the_selected_group_drains():
    h = harness(utc(2026, 12, 4, 12))
    h.state.share_hosts.profiles = lambda: SELECTIVE
    h.submit("s1", share_job("s1", gpus=0.75))
    h.submit("s2", share_job("s2", gpus=0.75))
    tasks = accepted(h.offers(offer("a", gpus=1, attributes={"pool": "interactive"}),
                              offer("b", gpus=1, attributes={"pool": "batch"})))
    assert len(tasks) == 2
    h.run_all("s1")
    h.run_all("s2")
    on_a = {host.host_id for host in h.state.share_hosts.values() if host.agent_id == "a"}
    night = utc(2026, 12, 4, 20, 0, 1)
    assert h.state.share_hosts.profile_view(night)["draining_share_hosts"] == sorted(on_a)
    killed = h.state.share_hosts.overdue(night)
    assert [agent for _, agent, _ in killed] == ["a"]        # deadline 0: at once, on the selected agent only
    assert h.state.share_hosts.overdue(utc(2026, 12, 4, 12, 30)) == []   # by day nothing


def test_at_the_drain_deadline_a_tick_stops_the_overdue_share_gracefully_and_requeues_it():
    h = harness(utc(2026, 12, 4, 12))
    h.submit("s1", share_job("s1"))
    (share_task,) = accepted(h.offers(offer("a", gpus=1)))
    h.run_all("s1")
    h.now = utc(2026, 12, 4, 20, 9, 59)                          # night, before the 600 s drain deadline
    assert not [c for c in h(Tick(h.now)) if isinstance(c, GracefulKill)]
    assert h.job("s1").state is JobState.RUNNING
    h.now = utc(2026, 12, 4, 20, 10)
    kills = [c for c in h(Tick(h.now)) if isinstance(c, GracefulKill)]
    assert [(k.task_id, k.agent_id) for k in kills] == [(share_task, "a")]
    job = h.job("s1")
    assert job.state is JobState.RESTARTING and job.restarts == 0     # requeued, not a failure
    assert "profile switch to 'night'" in job.message
    h.now += 1
    assert not [c for c in h(Tick(h.now)) if isinstance(c, GracefulKill)]   # stopped once only


def test_by_day_a_kept_gpu_waits_for_shares_and_at_night_whole_gpu_work_gets_it():
    # Day keeps one GPU of the agent for share hosts: with no share yet, the whole-GPU job waits saying
    # so although the GPU is offered and idle; at night (share_gpus 0) the same offer places it.
    h = harness(utc(2026, 12, 4, 12))
    h.submit("w", single_job("w", gpus=1))
    assert accepted(h.offers(offer("a", gpus=1))) == []
    assert h.job("w").state is JobState.PENDING
    assert "insufficient gpus (1 gpu kept for gpu shares by profile 'day')" in h.job("w").wait_reason
    h.submit("s1", share_job("s1"))                             # a share opens its host on the kept GPU
    (share_task,) = accepted(h.offers(offer("a", gpus=1)))
    (s1,) = h.job("s1").members.values()
    assert share_task == s1.task_id and h.job("w").state is JobState.PENDING

    h.now = utc(2026, 12, 4, 20, 0, 30)
    (launched,) = accepted(h.offers(offer("b", gpus=1)))        # another agent's GPU: nothing kept at night
    (member,) = h.job("w").members.values()
    assert launched == member.task_id


def test_a_job_waiting_only_for_kept_gpus_gets_no_agents_held_for_it():
    # Past its patience a waiting job gets agents held (Volcano's reserve); but holding an agent whose
    # GPU the day profile keeps frees nothing for it and would keep shares off it all day. Outside the
    # keep (night), the same wait does hold the agent.
    agents = catalog_from_master_state({"slaves": [
        {"id": "a", "hostname": "h-a", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 1.0}}]})
    h = harness(utc(2026, 12, 4, 12))
    h.state.planner = make_planner(catalog=lambda: agents)
    h.state.reserve_after_seconds = 1.0
    h.submit("w", single_job("w", gpus=1))
    h.offers(offer("a", gpus=1))
    h.now += 5
    h.offers(offer("a", gpus=1))
    reason = h.job("w").wait_reason
    assert "kept for gpu shares by profile 'day'" in reason and "holding" not in reason, reason
    h.submit("s1", share_job("s1"))                 # the share still opens its host there
    assert len(accepted(h.offers(offer("a", gpus=1)))) == 1

    h.now = utc(2026, 12, 4, 20, 0, 30)             # night: the GPU is the share host's until it ends
    h.offers(offer("a", gpus=0))
    assert "holding a for it" in h.job("w").wait_reason, h.job("w").wait_reason
