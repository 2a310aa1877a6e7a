"""Whole-GPU jobs stopped at a switch to a profile that keeps MORE GPUs for share hosts (night -> day):
`profilereclaim.choose` (tables + Hypothesis), the state machine through a night -> day switch (nothing
before the deadline, the cheapest jobs whose GPUs the keep needs, once, not after a failover, nothing at a
switch keeping fewer or equal), and `ProfileGate.draining` not counting closing hosts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.commands import GracefulKill, Revive, Suppress
from mesos_gpu.core.events import JobsRecovered
from mesos_gpu.core.model import Isolation, JobState
from mesos_gpu.core.profilereclaim import OFFER_SETTLE_SECONDS, Holder, choose
from mesos_gpu.core.profilesapply import ProfileGate
from mesos_gpu.core.records import JobRecord
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.sharehosts import ShareHostRecord, ShareHosts
from mesos_gpu.core.sharing import ShareGrant
from mesos_gpu.core.state import SchedulerState, Tick
from mesos_gpu.core.tenancy import TenantsConfig
from tests.profiles.test_state import accepted, utc
from tests.scheduler.builders import offer, single_job, tf_job
from tests.scheduler.test_state import SETTINGS, Harness

# ------------------------------------------------------------------------------------------- choose
CHOOSE_TABLE = [
    # (shortfall, holders (id, gpus per agent, GPU-hours lost), stopped)
    ({"a": 0}, [("j1", {"a": 1}, 1.0)], []),
    ({"a": 1}, [("j1", {"a": 1}, 5.0), ("j2", {"a": 1}, 1.0)], ["j2"]),            # fewest lost first
    ({"a": 2}, [("j1", {"a": 1}, 5.0), ("j2", {"a": 1}, 1.0), ("j3", {"a": 1}, 2.0)], ["j2", "j3"]),
    ({"a": 1}, [("big", {"a": 2}, 1.0), ("small", {"a": 1}, 3.0)], ["big"]),         # one job suffices
    ({"a": 2}, [("one", {"a": 1}, 1.0), ("two", {"a": 2}, 3.0)], ["two"]),           # `one` not needed
    ({"a": 1}, [("b-only", {"b": 4}, 0.1), ("j", {"a": 1}, 9.0)], ["j"]),             # GPUs not needed
    ({"a": 1}, [("gang", {"a": 1, "b": 1}, 2.0), ("j", {"a": 1}, 5.0)], ["gang"]),
    ({"a": 1, "b": 1}, [("gang", {"a": 1, "b": 1}, 4.0), ("ja", {"a": 1}, 1.0), ("jb", {"b": 1}, 1.0)],
     ["ja", "jb"]),
    ({"a": 3}, [("j1", {"a": 1}, 1.0)], ["j1"]),                                      # all there is
]


def test_choose_table():
    for shortfall, holders, stopped in CHOOSE_TABLE:
        chosen = choose(shortfall, [Holder(job, gpus, lost) for job, gpus, lost in holders])
        assert sorted(chosen) == sorted(stopped), (shortfall, holders, chosen)


AGENTS = ("a", "b", "c")
holders_st = st.lists(
    st.tuples(st.dictionaries(st.sampled_from(AGENTS), st.integers(1, 4), min_size=1, max_size=3),
              st.floats(0, 100)),
    max_size=8,
).map(lambda rows: [Holder(f"j{i}", gpus, lost) for i, (gpus, lost) in enumerate(rows)])
shortfall_st = st.dictionaries(st.sampled_from(AGENTS), st.integers(0, 6))


def cover(shortfall: dict[str, int], jobs: list[Holder]) -> dict[str, int]:
    return {a: min(n, sum(j.gpus.get(a, 0) for j in jobs)) for a, n in shortfall.items() if n > 0}


@settings(max_examples=300, deadline=None)
@given(shortfall_st, holders_st)
def test_choose_covers_what_it_can_and_stops_no_job_it_does_not_need(shortfall, holders):
    by_id = {h.job_id: h for h in holders}
    chosen = [by_id[j] for j in choose(shortfall, holders)]
    assert len({h.job_id for h in chosen}) == len(chosen)
    assert cover(shortfall, chosen) == cover(shortfall, holders)       # as far as the holders can
    for job in chosen:
        assert any(shortfall.get(a, 0) > 0 for a in job.gpus)          # holds a GPU of a short agent
        rest = [h for h in chosen if h is not job]
        assert cover(shortfall, rest) != cover(shortfall, chosen)      # and is needed
    if not any(n > 0 for n in shortfall.values()):
        assert chosen == []


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6), st.lists(st.tuples(st.integers(1, 4), st.floats(0, 100)), max_size=8))
def test_on_one_agent_the_gpus_stopped_exceed_the_shortfall_by_less_than_one_job(short, rows):
    holders = [Holder(f"j{i}", {"a": gpus}, lost) for i, (gpus, lost) in enumerate(rows)]
    chosen = [h for h in holders if h.job_id in choose({"a": short}, holders)]
    stopped = sum(h.gpus["a"] for h in chosen)
    if chosen:
        assert stopped - min(h.gpus["a"] for h in chosen) < short
    assert stopped >= min(short, sum(h.gpus["a"] for h in holders))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6), st.lists(st.floats(0, 100), max_size=8, unique=True))
def test_one_gpu_jobs_the_fewest_gpu_hours_lost_go_first(short, losses):
    holders = [Holder(f"j{i}", {"a": 1}, lost) for i, lost in enumerate(losses)]
    cheapest = sorted(holders, key=lambda h: h.lost)[:short]
    assert sorted(choose({"a": short}, holders)) == sorted(h.job_id for h in cheapest)


# ------------------------------------------------------------------------------- the state machine
def profiles(night_keeps: int = 0, day_keeps: int = 2, drain: float | None = 600) -> Any:
    return TenantsConfig.of({"profiles": {
        "profiles": {"day": {"groups": [{"share_gpus": day_keeps}], "drain_seconds": drain},
                     "night": {"groups": [{"share_gpus": night_keeps}], "drain_seconds": drain}},
        "schedule": [{"at": "0 8 * * *", "profile": "day"}, {"at": "0 20 * * *", "profile": "night"}],
    }}).profiles


def harness(start: float, config: Any) -> Harness:
    h = Harness()
    h.state = SchedulerState(planner=make_planner(), settings=SETTINGS,
                             share_hosts=ShareHosts(profiles=lambda: config))
    h.now = start
    h.subscribe()
    return h


def kills(commands: list[Any]) -> list[str]:
    return [c.task_id for c in commands if isinstance(c, GracefulKill)]


def task_of(h: Harness, job_id: str) -> str:
    (member,) = h.job(job_id).members.values()
    return str(member.task_id)


def night_jobs(h: Harness) -> None:
    """Four GPUs of agent a taken at night by w1 (1 GPU, 22:00), w2 (2 GPUs, 23:00), w3 (1 GPU, 00:00)."""
    for job_id, gpus, hour, left in (("w1", 1, 22, 4), ("w2", 2, 23, 3), ("w3", 1, 24, 1)):
        h.now = utc(2026, 12, 4, 22) + (hour - 22) * 3600
        h.submit(job_id, single_job(job_id, gpus=gpus))
        assert accepted(h.offers(offer("a", gpus=left, cpus=16))) == [task_of(h, job_id)]
        h.run_all(job_id)


def test_night_to_day_stops_the_cheapest_whole_gpu_jobs_the_kept_gpus_need_at_the_deadline_once():
    h = harness(utc(2026, 12, 4, 21), profiles())
    night_jobs(h)
    h.now = utc(2026, 12, 5, 8, 0, 30)                          # day keeps 2 GPUs: none free, no host
    assert kills(h(Tick(h.now))) == []
    h.offers(offer("a", gpus=0, cpus=16))
    h.now = utc(2026, 12, 5, 8, 9, 59)
    assert kills(h(Tick(h.now))) == []                          # nothing before the deadline
    h.now = utc(2026, 12, 5, 8, 10)
    stopped = kills(h(Tick(h.now)))
    # w3 lost 8 GPU-hours, w1 10, w2 18: w3 and w1 give the 2 GPUs
    assert sorted(stopped) == sorted([task_of(h, "w3"), task_of(h, "w1")])
    for job_id in ("w1", "w3"):
        job = h.job(job_id)
        assert job.state is JobState.RESTARTING and job.restarts == 0
        assert "profile switch to 'day'" in job.message and "2026-12-05T08:10:00" in job.message
        assert job.drained_for == utc(2026, 12, 5, 8)
        assert JobRecord.from_dict(job.to_dict()).drained_for == job.drained_for
    assert h.job("w2").state is JobState.RUNNING
    h.now += 1
    assert kills(h(Tick(h.now))) == []                          # their GPUs cover it: nobody else
    for job_id in ("w1", "w3"):
        h.update(task_of(h, job_id), "TASK_KILLED", agent="a")
    h.now += 1
    assert kills(h(Tick(h.now))) == []                          # ended, not offered yet: still covered
    assert accepted(h.offers(offer("a", gpus=2, cpus=16))) == []   # kept: the requeued jobs wait
    assert "kept for gpu shares by profile 'day'" in h.job("w1").wait_reason
    h.now += 60
    assert kills(h(Tick(h.now))) == []
    assert h.job("w2").state is JobState.RUNNING


def test_an_agent_not_offered_since_the_switch_is_asked_for_offers_then_counts_as_having_no_free_gpu():
    h = harness(utc(2026, 12, 4, 21), profiles())
    night_jobs(h)
    h.offers(offer("a", gpus=2, cpus=16))          # before the switch: stale, not counted as free
    assert h.state.suppressed                       # nothing waits
    h.now = utc(2026, 12, 5, 8, 10)
    commands = h(Tick(h.now))
    assert kills(commands) == [] and [c for c in commands if isinstance(c, Revive)]
    h.now += OFFER_SETTLE_SECONDS                   # no offer came (every GPU busy): none free
    commands = h(Tick(h.now))
    assert len(kills(commands)) == 2 and [c for c in commands if isinstance(c, Suppress)]


def test_while_nothing_waits_idle_gpus_are_asked_for_and_cover_the_keep():
    # One night job left on an 8-GPU agent whose other GPUs are idle; offers are suppressed (nothing
    # waits). At the deadline the scheduler revives, sees the idle GPUs, and stops nothing.
    h = harness(utc(2026, 12, 4, 21), profiles())
    h.submit("w", single_job("w", gpus=1))
    h.offers(offer("a", gpus=8, cpus=16))
    h.run_all("w")
    h.now = utc(2026, 12, 5, 8, 10)
    commands = h(Tick(h.now))
    assert [c for c in commands if isinstance(c, Revive)] and kills(commands) == []
    h.offers(offer("a", gpus=7, cpus=16))
    for _ in range(3):
        h.now += OFFER_SETTLE_SECONDS
        assert kills(h(Tick(h.now))) == []
    assert h.job("w").state is JobState.RUNNING


def test_free_gpus_offered_since_the_switch_cover_the_keep():
    h = harness(utc(2026, 12, 4, 21), profiles(day_keeps=1))
    night_jobs(h)
    h.update(task_of(h, "w3"), "TASK_FINISHED", agent="a")   # w3 ends: its GPU is free
    h.now = utc(2026, 12, 5, 8, 5)
    h.offers(offer("a", gpus=1, cpus=16))
    h.now = utc(2026, 12, 5, 8, 10)
    assert kills(h(Tick(h.now))) == []


def test_no_deadline_no_stop_and_a_switch_keeping_fewer_or_equal_stops_nothing():
    for config, switch in ((profiles(drain=None), utc(2026, 12, 5, 8)),                  # no deadline
                           (profiles(night_keeps=2, day_keeps=2), utc(2026, 12, 5, 8)),  # keeps equal
                           (profiles(night_keeps=0, day_keeps=2), utc(2026, 12, 5, 20))):  # keeps fewer
        box: dict[str, Any] = {"config": None}
        h = harness(utc(2026, 12, 4, 21), None)
        h.state.share_hosts.profiles = lambda box=box: box["config"]
        night_jobs(h)                               # all four GPUs taken, no profile yet
        box["config"] = config
        h.now = switch + 30
        h.offers(offer("a", gpus=0, cpus=16))
        for hours in (1, 2, 11):
            h.now = switch + hours * 3600
            assert kills(h(Tick(h.now))) == [], (config, hours)


def test_a_gang_counts_all_its_gpus_and_is_stopped_whole():
    h = harness(utc(2026, 12, 4, 21), profiles(day_keeps=1))
    h.submit("g", tf_job("g", workers=1, chief=1, ps=0))
    assert len(accepted(h.offers(offer("a", gpus=1, cpus=16), offer("b", gpus=1, cpus=16)))) == 2
    h.run_all("g")
    h.now = utc(2026, 12, 5, 8, 1)
    h.offers(offer("a", gpus=0, cpus=16), offer("b", gpus=0, cpus=16))
    h.now = utc(2026, 12, 5, 8, 10)
    stopped = kills(h(Tick(h.now)))
    assert sorted(stopped) == sorted(m.task_id for m in h.job("g").members.values())
    assert h.job("g").state is JobState.RESTARTING


def test_a_new_leader_does_not_stop_a_job_twice_and_counts_the_stopped_ones_gpus():
    h = harness(utc(2026, 12, 4, 21), profiles(day_keeps=1))
    night_jobs(h)
    h.now = utc(2026, 12, 5, 8, 1)
    h.offers(offer("a", gpus=0, cpus=16))
    h.now = utc(2026, 12, 5, 8, 10)
    (stopped,) = kills(h(Tick(h.now)))
    assert stopped == task_of(h, "w3")
    records = [job.to_dict() for job in h.state.jobs.values()]

    new = harness(h.now + 1, profiles(day_keeps=1))                # failover: w3 still in its grace
    new(JobsRecovered(tuple(records), new.tick()))
    new.now += OFFER_SETTLE_SECONDS + 1
    new.offers(offer("a", gpus=0, cpus=16))
    for _ in range(3):
        new.now += 10
        assert kills(new(Tick(new.now))) == []                    # w3's GPU covers the keep
    assert new.job("w1").state is JobState.RUNNING and new.job("w2").state is JobState.RUNNING


def test_a_job_stopped_for_a_switch_and_running_again_is_not_stopped_again_for_it():
    h = harness(utc(2026, 12, 4, 21), profiles(day_keeps=1))
    night_jobs(h)
    h.now = utc(2026, 12, 5, 8, 1)
    h.offers(offer("a", gpus=0, cpus=16))
    h.now = utc(2026, 12, 5, 8, 10)
    assert kills(h(Tick(h.now))) == [task_of(h, "w3")]
    h.update(task_of(h, "w3"), "TASK_KILLED", agent="a")
    h.update(task_of(h, "w2"), "TASK_FINISHED", agent="a")      # 2 GPUs free: one kept, one for w3
    h.now += 60
    assert accepted(h.offers(offer("a", gpus=3, cpus=16))) == [task_of(h, "w3")]
    h.run_all("w3")
    h.now += 60
    h.offers(offer("a", gpus=0, cpus=16))       # the kept GPU went elsewhere (another framework)
    h.now += 1
    assert kills(h(Tick(h.now))) == [task_of(h, "w1")]         # w3 lost less, but was stopped for it


def test_a_new_leader_waits_for_offers_before_stopping():
    h = harness(utc(2026, 12, 4, 21), profiles(day_keeps=1))
    night_jobs(h)
    h.update(task_of(h, "w3"), "TASK_FINISHED", agent="a")
    records = [job.to_dict() for job in h.state.jobs.values()]
    new = harness(utc(2026, 12, 5, 9), profiles(day_keeps=1))      # long past the deadline
    new(JobsRecovered(tuple(records), new.tick()))
    new.now += 1
    assert kills(new(Tick(new.now))) == []                          # no offer yet: wait
    new.offers(offer("a", gpus=1, cpus=16))                         # w3's GPU is free
    new.now += OFFER_SETTLE_SECONDS
    assert kills(new(Tick(new.now))) == []


def test_old_records_load_and_records_without_a_drain_stay_as_they_were():
    h = harness(utc(2026, 12, 4, 21), profiles())
    night_jobs(h)
    stored = h.job("w1").to_dict()
    assert "drained_for" not in stored                         # unchanged for a job never stopped
    assert JobRecord.from_dict(stored).drained_for is None      # and an old record loads


# ---------------------------------------------------------------------------- ProfileGate.draining
def test_a_closing_host_does_not_push_a_live_host_beyond_the_cap():
    hosts = ShareHosts()
    params = {"linger_seconds": 60}
    for host_id, used, closing in (("sharehost.closing", 750, True), ("sharehost.live", 250, False)):
        record = ShareHostRecord(host_id, "a", "h-a", Isolation.CAPPED, 0, params, {}, opened_at=0.0,
                                 started=True, closing=closing)
        hosts.add(record, f"{host_id}.task", ShareGrant(host_id, False, Isolation.CAPPED, used, 0, 0))
    day = profiles(day_keeps=1).profiles["day"]
    gate = ProfileGate(day, hosts.views(1.0), lambda agent: {})
    assert gate.draining == frozenset()
    assert gate.hosts_on == {"a": 2}                   # still counted as holding its GPU
