"""The scheduler state machine: exact commands for each event, and invariants after every step."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesos_gpu.core.declinegrid import aligned_refuse
from mesos_gpu.core.model import JobState, TaskState
from mesos_gpu.core.state import (
    Accept,
    Acknowledge,
    ClearRendezvous,
    Command,
    Decline,
    Disconnected,
    Event,
    ExecutorEnded,
    JobsRecovered,
    JobsSubmitted,
    JobSubmitted,
    KillRequested,
    KillTask,
    OffersReceived,
    Persist,
    Reconcile,
    Revive,
    SchedulerState,
    StatusReceived,
    Subscribed,
    Suppress,
    Tick,
    check_invariants,
)
from mesos_gpu.core.taskinfo import LaunchSettings
from tests.scheduler.builders import first_fit_planner, offer, record, share_job, single_job, status, tf_job

SETTINGS = LaunchSettings(zk_url="zk://127.0.0.1:2181/mesos-gpu/test", launcher_uri="http://s:1/launcher.pyz")


class Harness:
    """A SchedulerState with a clock, that checks the invariants and persist-ordering after each event."""

    def __init__(self) -> None:
        self.state = SchedulerState(planner=first_fit_planner, settings=SETTINGS)
        self.now = 0.0
        self.persisted: dict[str, dict[str, Any]] = {}

    def __call__(self, event: Event) -> list[Command]:
        commands = self.state.handle(event)
        problems = check_invariants(self.state, event.now)
        assert not problems, problems
        seen_other = False
        for command in commands:
            if isinstance(command, Persist):
                assert not seen_other, f"a Persist came after an action: {commands}"
                self.persisted[command.job_id] = command.record
            else:
                seen_other = True
        return commands

    def tick(self, dt: float = 1.0) -> float:
        self.now += dt
        return self.now

    def subscribe(self) -> list[Command]:
        return self(Subscribed("F", self.tick()))

    def submit(self, job_id: str, spec: Any) -> list[Command]:
        return self(JobSubmitted(record(job_id, spec, self.now), self.tick()))

    def offers(self, *offers: dict[str, Any]) -> list[Command]:
        return self(OffersReceived(tuple(offers), self.tick()))

    def update(self, task_id: str, state: str, **kw: Any) -> list[Command]:
        return self(StatusReceived(status(task_id, state, **kw), self.tick()))

    def job(self, job_id: str) -> Any:
        return self.state.jobs[job_id]

    def run_all(self, job_id: str) -> None:
        for member in self.job(job_id).members.values():
            self.update(member.task_id, "TASK_STARTING", agent=member.agent_id)
            self.update(member.task_id, "TASK_RUNNING", agent=member.agent_id)


def of_type(commands: list[Command], kind: type) -> list[Any]:
    return [c for c in commands if isinstance(c, kind)]


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def test_subscribing_reconciles_implicitly_and_suppresses_when_idle() -> None:
    h = Harness()
    commands = h.subscribe()
    assert commands == [Reconcile(()), Suppress()]


def test_a_single_gpu_job_runs_to_success(h: Harness) -> None:
    assert h.submit("job-1", single_job()) == [Revive()]
    commands = h.offers(offer("S1", offer_id="O-a"))
    persist, accept = commands[0], commands[1]
    assert isinstance(persist, Persist) and persist.record["state"] == "STAGING"
    assert isinstance(accept, Accept)
    assert accept.agent_id == "S1" and accept.offer_ids == ("O-a",)
    (info,) = accept.task_infos
    assert info["task_id"] == {"value": "job-1.task-0.0"}
    assert {r["name"]: r["scalar"]["value"] for r in info["resources"] if r["type"] == "SCALAR"} == {
        "cpus": 1.0, "mem": 1024.0, "gpus": 1.0,
    }
    assert info["command"]["value"] == "python train.py"
    assert commands[2:] == [Suppress()]

    commands = h.update("job-1.task-0.0", "TASK_STARTING")
    assert [type(c) for c in commands] == [Persist, Acknowledge]
    h.update("job-1.task-0.0", "TASK_RUNNING")
    assert h.job("job-1").state is JobState.RUNNING
    commands = h.update("job-1.task-0.0", "TASK_FINISHED")
    assert h.job("job-1").state is JobState.SUCCEEDED
    assert h.persisted["job-1"]["state"] == "SUCCEEDED"
    assert [type(c) for c in commands] == [Persist, Acknowledge]


def test_a_gang_is_placed_all_at_once_or_not_at_all(h: Harness) -> None:
    h.submit("dist", tf_job(workers=2, ps=1, chief=1, gpus=1))  # 3 GPUs in all
    commands = h.offers(offer("S1", gpus=2))
    assert of_type(commands, Accept) == []
    (decline,) = of_type(commands, Decline)
    assert decline.refuse_seconds == aligned_refuse(h.now, h.state.refuse_seconds_pending)
    assert h.job("dist").state is JobState.PENDING
    assert h.job("dist").wait_reason == "0/1 agents fit"

    commands = h.offers(offer("S1", gpus=2), offer("S2", gpus=2))
    accepts = of_type(commands, Accept)
    assert sorted(a.agent_id for a in accepts) == ["S1", "S2"]
    launched = sorted(info["name"] for a in accepts for info in a.task_infos)
    assert launched == ["dist.chief-0", "dist.ps-0", "dist.worker-0", "dist.worker-1"]
    assert h.job("dist").state is JobState.STAGING
    for accept in accepts:
        for info in accept.task_infos:
            env = {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}
            assert env["MESOS_GPU_TF_MEMBERS"] == "chief:1,ps:1,worker:2"
            assert env["MESOS_GPU_ZK"] == SETTINGS.zk_url
            assert info["command"]["uris"][0]["value"] == SETTINGS.launcher_uri


def test_chief_success_kills_the_ps_and_remaining_workers(h: Harness) -> None:
    h.submit("dist", tf_job())
    h.offers(offer("S1", gpus=4))
    h.run_all("dist")
    assert h.job("dist").state is JobState.RUNNING
    h.update("dist.worker-1.0", "TASK_FINISHED")
    assert h.job("dist").state is JobState.RUNNING
    commands = h.update("dist.chief-0.0", "TASK_FINISHED")
    assert h.job("dist").state is JobState.SUCCEEDED
    kills = [c.task_id for c in of_type(commands, KillTask)]
    assert kills == ["dist.ps-0.0", "dist.worker-0.0"]
    commands = h.update("dist.ps-0.0", "TASK_KILLED")
    assert h.job("dist").state is JobState.SUCCEEDED
    assert of_type(commands, KillTask) == []


def test_a_failure_restarts_the_whole_gang_after_backoff(h: Harness) -> None:
    spec = tf_job(restart={"policy": "OnFailure", "backoff_limit": 2, "backoff_seconds": 10})
    h.submit("dist", spec)
    h.offers(offer("S1", gpus=4))
    h.run_all("dist")
    commands = h.update("dist.worker-0.0", "TASK_FAILED", message="Command exited with status 1")
    job = h.job("dist")
    assert job.state is JobState.RESTARTING
    assert job.restarts == 1
    assert "worker-0 failed (Command exited with status 1)" in job.message
    assert sorted(c.task_id for c in of_type(commands, KillTask)) == [
        "dist.chief-0.0", "dist.ps-0.0", "dist.worker-1.0",
    ]
    for task_id in ("dist.chief-0.0", "dist.ps-0.0", "dist.worker-1.0"):
        h.update(task_id, "TASK_KILLED")
    assert job.state is JobState.RESTARTING
    # Too early: the backoff (10 s, less up to 20 % jitter) has not passed.
    assert of_type(h.offers(offer("S1", gpus=4)), Accept) == []
    h.now = job.next_attempt_at  # type: ignore[assignment]
    assert Revive() in h(Tick(h.now))
    accepts = of_type(h.offers(offer("S1", gpus=4)), Accept)
    names = sorted(info["task_id"]["value"] for a in accepts for info in a.task_infos)
    assert names == ["dist.chief-0.1", "dist.ps-0.1", "dist.worker-0.1", "dist.worker-1.1"]
    assert job.state is JobState.STAGING


def test_never_policy_fails_the_job_with_the_task_message(h: Harness) -> None:
    h.submit("job", single_job())
    h.offers(offer("S1"))
    h.run_all("job")
    h.update("job.task-0.0", "TASK_FAILED", message="Command exited with status 3")
    job = h.job("job")
    assert job.state is JobState.FAILED
    assert job.message.startswith("task-0 failed (Command exited with status 3)")
    assert "restart policy is Never" in job.message


def test_the_backoff_limit_ends_the_retries(h: Harness) -> None:
    h.submit("job", single_job(restart={"policy": "OnFailure", "backoff_limit": 1, "backoff_seconds": 1}))
    for attempt in range(2):
        h.offers(offer("S1"))
        h.run_all("job")
        h.update(f"job.task-0.{attempt}", "TASK_FAILED", message="Command exited with status 1")
        h.now += 10
        h(Tick(h.now))
    job = h.job("job")
    assert job.state is JobState.FAILED
    assert "backoff limit reached (1 restarts)" in job.message


def test_exit_code_policy_treats_low_codes_as_permanent(h: Harness) -> None:
    h.submit("job", single_job(restart={"policy": "ExitCode", "backoff_limit": 3}))
    h.offers(offer("S1"))
    h.run_all("job")
    h.update("job.task-0.0", "TASK_FAILED", message="Command exited with status 2")
    assert h.job("job").state is JobState.FAILED


def test_kill_a_running_job(h: Harness) -> None:
    h.submit("dist", tf_job(workers=1, ps=1, chief=0))
    h.offers(offer("S1", gpus=4))
    h.run_all("dist")
    commands = h(KillRequested("dist", h.tick()))
    assert [type(c) for c in commands] == [Persist, KillTask, KillTask]
    h.update("dist.worker-0.0", "TASK_KILLED")
    assert h.job("dist").state is JobState.RUNNING
    h.update("dist.ps-0.0", "TASK_KILLED")
    assert h.job("dist").state is JobState.KILLED
    assert h.persisted["dist"]["state"] == "KILLED"


def test_kill_a_pending_job_ends_it_at_once(h: Harness) -> None:
    h.submit("job", single_job(gpus=8))
    commands = h(KillRequested("job", h.tick()))
    assert h.job("job").state is JobState.KILLED
    assert of_type(commands, KillTask) == []


def test_a_dropped_launch_is_placed_again_without_counting_a_restart(h: Harness) -> None:
    h.submit("job", single_job())
    h.offers(offer("S1"))
    h.update("job.task-0.0", "TASK_LOST", reason="REASON_INVALID_OFFERS", with_uuid=False,
             message="Task launched with invalid offers: Offer O1 is no longer valid")
    job = h.job("job")
    assert job.state is JobState.PENDING
    assert job.restarts == 0
    accepts = of_type(h.offers(offer("S1")), Accept)
    assert accepts[0].task_infos[0]["task_id"] == {"value": "job.task-0.1"}


def test_an_unknown_running_task_is_killed_and_acknowledged(h: Harness) -> None:
    commands = h.update("someone-else.task-0.0", "TASK_RUNNING", agent="S9")
    assert KillTask("someone-else.task-0.0", "S9") in commands
    assert len(of_type(commands, Acknowledge)) == 1


def test_the_deadline_fails_the_job(h: Harness) -> None:
    h.submit("job", single_job(deadline_seconds=60))
    h.offers(offer("S1"))
    h.run_all("job")
    commands = h(Tick(h.now + 61))
    assert h.job("job").state is JobState.FAILED
    assert h.job("job").message == "deadline of 60 s exceeded"
    assert [c.task_id for c in of_type(commands, KillTask)] == ["job.task-0.0"]


def test_recovery_reconciles_the_recovered_tasks_and_continues(h: Harness) -> None:
    h.submit("dist", tf_job(workers=1, ps=1, chief=0))
    h.offers(offer("S1", gpus=4))
    h.run_all("dist")
    records = tuple(h.persisted.values())

    fresh = Harness()
    fresh(JobsRecovered(records, 100.0))
    commands = fresh(Subscribed("F", 101.0))
    explicit, implicit = of_type(commands, Reconcile)
    assert sorted(explicit.tasks) == [("dist.ps-0.0", "S1"), ("dist.worker-0.0", "S1")]
    assert implicit == Reconcile(())
    fresh.now = 101.0
    fresh.update("dist.worker-0.0", "TASK_RUNNING")
    assert fresh.job("dist").state is JobState.RUNNING
    fresh.update("dist.worker-0.0", "TASK_FINISHED")
    assert fresh.job("dist").state is JobState.SUCCEEDED
    # No relaunch happened: the attempt is still the first.
    assert fresh.job("dist").attempt == 0


def test_unanswered_reconciliation_is_retried(h: Harness) -> None:
    h.submit("job", single_job())
    h.offers(offer("S1"))
    h(Disconnected(h.tick()))
    h.subscribe()
    assert of_type(h(Tick(h.now + 5)), Reconcile) == []
    (retry,) = of_type(h(Tick(h.now + 31)), Reconcile)
    assert retry.tasks == (("job.task-0.0", "S1"),)


def test_priority_orders_placement(h: Harness) -> None:
    h.submit("low", single_job("low", gpus=2))
    h.submit("high", single_job("high", gpus=2, priority=10))
    accepts = of_type(h.offers(offer("S1", gpus=2)), Accept)
    assert [info["name"] for info in accepts[0].task_infos] == ["high.task-0"]
    assert h.job("low").state is JobState.PENDING


# ------------------------------------------------------------------------------------- properties
STATES = ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST",
          "TASK_ERROR", "TASK_KILLING", "TASK_UNREACHABLE"]

actions = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(["single", "dist", "share", "shares"]), st.integers(0, 3)),
    st.tuples(st.just("offers"), st.integers(1, 3), st.integers(0, 4)),
    st.tuples(st.just("status"), st.integers(0, 50), st.sampled_from(STATES)),
    st.tuples(st.just("kill"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("tick"), st.integers(1, 120), st.just(0)),
    st.tuples(st.just("reconnect"), st.just(0), st.just(0)),
    st.tuples(st.just("executor_ended"), st.integers(0, 5), st.just(0)),
)
SHARES = [0.25, 0.5, 0.75, (0.3, 1.0)]
ISOLATIONS = ["capped", "shared", "mps", "capped"]


def _spec(kind: str, name: str, b: int) -> Any:
    if kind == "single":
        return single_job(name, gpus=min(b, 2))
    if kind == "dist":
        return tf_job(name, gpus=b % 2)
    workers = 2 if kind == "shares" else 0
    return share_job(name, gpus=SHARES[b], isolation=ISOLATIONS[b], workers=workers,
                     gpu_memory=4096 if b == 1 else None)


def _gpus_taken(accept: Accept, known: Collection[str]) -> float:
    """The GPUs an ACCEPT takes: its tasks' own, and one per share host it opens."""
    own = sum(r["scalar"]["value"] for i in accept.task_infos for r in i["resources"] if r["name"] == "gpus")
    opened = {i["executor"]["executor_id"]["value"]: i["executor"] for i in accept.task_infos
              if "executor" in i and i["executor"]["executor_id"]["value"] not in known}
    held = [r["scalar"]["value"] for e in opened.values() for r in e["resources"] if r["name"] == "gpus"]
    return own + sum(held)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=40), st.floats(0, 1))
def test_invariants_hold_on_random_event_sequences(steps: list[tuple[str, Any, Any]], jitter: float) -> None:
    h = Harness()
    h.subscribe()
    jobs = 0
    for kind, a, b in steps:
        if kind == "submit":
            h.submit(f"j{jobs}", _spec(a, f"j{jobs}", b))
            jobs += 1
        elif kind == "offers":
            known = set(h.state.share_hosts)
            commands = h.offers(*(offer(f"S{i}", gpus=b, gpu_memory=16384) for i in range(a)))
            offered = {f"S{i}": b for i in range(a)}
            used_offers: list[str] = []
            for accept in of_type(commands, Accept):
                used_offers.extend(accept.offer_ids)
                job_ids = {info["labels"]["labels"][0]["value"] for info in accept.task_infos}
                for job_id in job_ids:
                    # all or nothing: every member of a launched job is launched in this cycle
                    members = {str(k) for k in h.job(job_id).members}
                    launched = {i["name"].split(".", 1)[1] for a2 in of_type(commands, Accept)
                                for i in a2.task_infos if i["name"].startswith(job_id + ".")}
                    assert launched == members
                assert _gpus_taken(accept, known) <= offered[accept.agent_id]
            for decline in of_type(commands, Decline):
                used_offers.extend(decline.offer_ids)
            assert len(used_offers) == len(set(used_offers)) == a
        elif kind == "status":
            active = sorted(h.state.task_index)
            if active:
                task_id = active[a % len(active)]
                job_id, key = h.state.task_index[task_id]
                agent = h.job(job_id).members[key].agent_id     # Mesos reports a task from its own agent
                update = status(task_id, b, agent=agent, message="Command exited with status 1")
                h(StatusReceived(update, h.tick(), jitter))
        elif kind == "kill" and jobs:
            h(KillRequested(f"j{a % jobs}", h.tick()))
        elif kind == "tick":
            h(Tick(h.tick(a)))
        elif kind == "reconnect":
            h(Disconnected(h.tick()))
            h.subscribe()
        elif kind == "executor_ended" and h.state.share_hosts:
            hosts = sorted(h.state.share_hosts.values(), key=lambda host: host.host_id)
            host = hosts[a % len(hosts)]
            h(ExecutorEnded(host.agent_id, host.host_id, h.tick()))
    # Each task id launched at most once (the machine raises if it would launch one twice) and every
    # recorded member state is a real Mesos state.
    for job in h.state.jobs.values():
        for member in job.members.values():
            assert member.state is None or isinstance(member.state, TaskState)


def test_jobs_submitted_together_are_the_same_as_one_by_one() -> None:
    specs = {"a": single_job("a"), "b": tf_job("b"), "c": single_job("c", gpus=2)}
    one_by_one, together = Harness(), Harness()
    one_by_one.subscribe()
    together.subscribe()
    separate = [one_by_one(JobSubmitted(record(job_id, spec, 2.0), 2.0)) for job_id, spec in specs.items()]
    grouped = together(JobsSubmitted(
        tuple(JobSubmitted(record(job_id, spec, 2.0), 2.0, spec) for job_id, spec in specs.items()), 2.0
    ))
    assert {job_id: job.to_dict() for job_id, job in together.state.jobs.items()} == {
        job_id: job.to_dict() for job_id, job in one_by_one.state.jobs.items()
    }
    assert together.state.jobs["b"].spec is specs["b"]          # the given spec, not parsed again
    assert grouped == [command for commands in separate for command in commands]
    offers = (offer("S1", gpus=4), offer("S2", gpus=4))
    assert together(OffersReceived(offers, 3.0)) == one_by_one(OffersReceived(offers, 3.0))


def test_the_rendezvous_is_cleared_once_no_member_is_active(h: Harness) -> None:
    spec = tf_job(restart={"policy": "OnFailure", "backoff_limit": 2, "backoff_seconds": 10})
    h.submit("dist", spec)
    h.offers(offer("S1", gpus=4))
    h.run_all("dist")
    commands = h.update("dist.worker-0.0", "TASK_FAILED", message="Command exited with status 1")
    assert of_type(commands, ClearRendezvous) == []               # the others still run
    cleared = []
    for task_id in ("dist.chief-0.0", "dist.ps-0.0", "dist.worker-1.0"):
        cleared.append(of_type(h.update(task_id, "TASK_KILLED"), ClearRendezvous))
    assert cleared == [[], [], [ClearRendezvous("dist")]]          # before the gang is relaunched
    h.now = h.job("dist").next_attempt_at  # type: ignore[assignment]
    h(Tick(h.now))
    h.offers(offer("S1", gpus=4))
    h.run_all("dist")
    h.update("dist.worker-0.1", "TASK_FINISHED")
    h.update("dist.worker-1.1", "TASK_FINISHED")
    commands = h.update("dist.chief-0.1", "TASK_FINISHED")
    assert h.job("dist").state is JobState.SUCCEEDED and of_type(commands, ClearRendezvous) == []
    assert of_type(h.update("dist.ps-0.1", "TASK_KILLED"), ClearRendezvous) == [ClearRendezvous("dist")]


def test_a_single_task_job_has_no_rendezvous_to_clear(h: Harness) -> None:
    h.submit("one", single_job())
    h.offers(offer("S1"))
    h.run_all("one")
    assert of_type(h.update("one.task-0.0", "TASK_FINISHED"), ClearRendezvous) == []


def test_a_new_leader_revives_when_work_waits_whatever_its_predecessor_suppressed(h: Harness) -> None:
    # Issue 20 item 1: the old leader suppressed while its job waited out a backoff, then died; the master
    # may keep that suppression across the failover SUBSCRIBE, so the new leader must REVIVE.
    h.submit("flaky", single_job(restart={"policy": "OnFailure", "backoff_seconds": 5}))
    h.offers(offer("S1"))
    h.update("flaky.task-0.0", "TASK_FAILED", message="Command exited with status 1")
    assert h.job("flaky").state is JobState.RESTARTING
    assert h.state.suppressed  # nothing is ready during the backoff
    records = tuple(h.persisted.values())
    fresh = Harness()
    fresh(JobsRecovered(records, 1000.0))  # long after the backoff
    commands = fresh(Subscribed("F", 1001.0))
    assert commands[-1] == Revive(), commands
    idle = Harness()
    assert idle(Subscribed("F", 1.0))[-1] == Suppress()  # and with nothing waiting, it suppresses
