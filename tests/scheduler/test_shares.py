"""GPU shares in the state machine: share hosts opened and reused, their ExecutorInfo repeated exactly,
linger and forgetting, ExecutorEnded, recovery from the records, and the TaskInfo of a share task."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesos_gpu.core.model import Isolation, JobState, UriSpec
from mesos_gpu.core.placement import CyclePlan
from mesos_gpu.core.records import MemberRecord
from mesos_gpu.core.sharehosts import FORGET_AFTER_SECONDS, ShareHostRecord
from mesos_gpu.core.sharing import (
    DEFAULT_LINGER_SECONDS,
    LABEL_DEVICE,
    LABEL_SHARE_HOST,
    LINGER_MARGIN_SECONDS,
    ShareHostView,
)
from mesos_gpu.core.state import (
    Accept,
    ExecutorEnded,
    GangRequest,
    JobsRecovered,
    KillRequested,
    KillTask,
    OffersReceived,
    SchedulerState,
    StatusReceived,
    Tick,
    check_invariants,
)
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.framework import FrameworkCallbacks
from tests.scheduler.builders import first_fit_planner, offer, share_job, single_job, status
from tests.scheduler.test_state import SETTINGS, Harness, of_type

HOST = "sharehost.a.task-0.0"
LINGER = DEFAULT_LINGER_SECONDS


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def decode(data: str) -> Any:
    return json.loads(base64.b64decode(data))


def launched(commands: list[Any]) -> list[dict[str, Any]]:
    return [info for accept in of_type(commands, Accept) for info in accept.task_infos]


def labels(info: Mapping[str, Any]) -> dict[str, str]:
    return {label["key"]: label["value"] for label in info["labels"]["labels"]}


def open_host(h: Harness, job_id: str = "a", **offered: Any) -> dict[str, Any]:
    """Job `job_id` (one capped 0.25 share) placed on a new host on S1; its TaskInfo."""
    h.submit(job_id, share_job(job_id))
    (info,) = launched(h.offers(offer("S1", gpus=1, gpu_memory=16384, **offered)))
    return info


def run(h: Harness, task_id: str, device: str = "GPU-1") -> None:
    h.update(task_id, "TASK_STARTING")
    running = status(task_id, "TASK_RUNNING")
    running["labels"] = {"labels": [{"key": LABEL_DEVICE, "value": device}]}
    h(StatusReceived(running, h.tick()))


# ------------------------------------------------------------------------------------- opening a host
def test_a_share_opens_a_host_whose_executor_holds_the_whole_gpu(h: Harness) -> None:
    info = open_host(h, allocation_role="gpu-team")
    executor = info["executor"]
    assert executor["executor_id"] == {"value": HOST}
    assert executor["type"] == "CUSTOM"
    assert executor["command"] == {"shell": True, "value": "python3 -m isolator.sharehost"}
    resources = executor["resources"]
    assert {r["name"]: r["scalar"]["value"] for r in resources} == {"gpus": 1, "cpus": 0.1, "mem": 64}
    # labelled like the offer (a MULTI_ROLE framework's allocation role), or Mesos refuses the launch
    assert all(r["allocation_info"] == {"role": "gpu-team"} and r["role"] == "*" for r in resources)
    assert decode(executor["data"]) == {"host": HOST, "isolation": "capped", "linger_seconds": LINGER,
                                        "device_memory": 16384, "mig_layout": ""}
    # the task: no command, its own cpus/mem only, what to run in `data`
    assert "command" not in info and "container" not in info
    assert sorted(r["name"] for r in info["resources"]) == ["cpus", "mem"]
    assert labels(info)[LABEL_SHARE_HOST] == HOST and labels(info)["mesos-gpu/isolation"] == "capped"
    payload = decode(info["data"])
    assert payload["command"] == "python train.py" and payload["image"] is None and payload["uris"] == []
    assert payload["share"] == {"host": HOST, "isolation": "capped", "gpus": 0.25, "gpu_memory": 4096,
                                "device_memory": 16384}
    assert payload["resources"] == {"cpus": 1.0, "mem": 1024.0}
    assert payload["kill_grace_seconds"] == SETTINGS.kill_grace_seconds
    env = payload["env"]
    assert (env["MESOS_GPU_ISOLATION"], env["MESOS_GPU_SHARE"], env["MESOS_GPU_MEMORY_LIMIT_MB"]) == (
        "capped", "0.25", "4096")
    assert env["MESOS_GPU_ROLE"] == "task" and env["MESOS_GPU_ATTEMPT"] == "0"
    host = h.state.share_hosts[HOST]
    assert (host.agent_id, host.hostname, host.used, host.used_memory) == ("S1", "host-S1", 250, 4096)
    assert host.executor_info == executor
    assert h.job("a").members[next(iter(h.job("a").members))].share["host"] == HOST


def test_the_second_share_repeats_the_hosts_executor_exactly_and_takes_no_gpu(h: Harness) -> None:
    first = open_host(h)
    h.submit("b", share_job("b", gpus=0.5))
    (second,) = launched(h.offers(offer("S1", gpus=0, gpu_memory=16384)))   # its GPU is the executor's
    assert second["executor"] == first["executor"]
    assert json.dumps(second["executor"], sort_keys=True) == json.dumps(first["executor"], sort_keys=True)
    assert not [r for r in second["resources"] if r["name"] == "gpus"]
    assert decode(second["data"])["share"]["host"] == HOST
    assert h.state.share_hosts[HOST].used == 750
    assert [view.used for view in h.state.share_host_views(h.now)] == [750]


def test_two_members_of_a_gang_share_the_host_opened_for_the_first(h: Harness) -> None:
    h.submit("g", share_job("g", gpus=0.5, workers=2))
    infos = launched(h.offers(offer("S1", gpus=1)))
    assert [labels(info)[LABEL_SHARE_HOST] for info in infos] == ["sharehost.g.worker-0.0"] * 2
    assert infos[0]["executor"] == infos[1]["executor"]
    payload = decode(infos[1]["data"])
    # TF members keep the launcher's contract: wrapped command, the bundle fetched into the sandbox
    assert payload["command"].endswith("python train.py'") and "launcher" in payload["command"]
    assert payload["uris"][0]["value"] == SETTINGS.launcher_uri
    assert payload["env"]["MESOS_GPU_SHARE"] == "0.5" and "MESOS_GPU_MEMORY_LIMIT_MB" not in payload["env"]


def test_the_planner_is_given_the_hosts_known(h: Harness) -> None:
    seen: list[tuple[ShareHostView, ...]] = []

    def planner(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
                hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
        seen.append(tuple(hosts))
        return first_fit_planner(requests, offers, hosts)

    h.state.planner = planner
    open_host(h)
    h.submit("b", share_job("b"))
    h.offers(offer("S1", gpus=0, gpu_memory=16384))
    assert seen == [(), (ShareHostView(HOST, "S1", Isolation.CAPPED, 16384, 250, 4096, True, ()),)]


def test_the_mig_layout_of_the_agent_rides_in_the_executor_data(h: Harness) -> None:
    h.submit("m", share_job("m", isolation="mig", gpus=0.25))
    layout = "3g.40gb/2g.20gb/1g.10gb"
    (info,) = launched(h.offers(offer("S1", gpus=1, attributes={"gpu_mig": layout})))
    assert decode(info["executor"]["data"])["mig_layout"] == layout


def test_job_uris_are_fetched_for_plain_tasks_docker_tasks_and_shares(h: Harness) -> None:
    uris = (UriSpec("http://s/uploads/x.tar.gz"),)
    h.submit("p", dataclasses.replace(single_job("p"), uris=uris))
    h.submit("d", dataclasses.replace(single_job("d", containerizer="docker", image="tf"), uris=uris))
    h.submit("s", dataclasses.replace(share_job("s"), uris=uris))
    plain, docker, share = launched(h.offers(offer("S1", gpus=3)))
    expected = [{"value": "http://s/uploads/x.tar.gz", "extract": True, "executable": False}]
    assert plain["command"]["uris"] == expected
    assert decode(docker["executor"]["data"])["uris"] == expected == docker["executor"]["command"]["uris"]
    assert decode(share["data"])["uris"] == expected


def test_the_share_host_command_and_linger_come_from_the_settings() -> None:
    h = Harness()
    h.state.settings = dataclasses.replace(SETTINGS, share_host_command="/opt/sh", share_linger_seconds=60)
    h.subscribe()
    executor = open_host(h)["executor"]
    assert executor["command"]["value"] == "/opt/sh"
    assert decode(executor["data"])["linger_seconds"] == 60
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    assert h.state.share_hosts[HOST].accepting(h.now + 60 - LINGER_MARGIN_SECONDS - 1)
    h(Tick(h.now + 60 + FORGET_AFTER_SECONDS))
    assert h.state.share_hosts == {}


# ---------------------------------------------------------------------------------------- statuses
def test_the_running_label_names_the_device_and_is_persisted(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0", device="GPU-abc")
    member = h.job("a").members[next(iter(h.job("a").members))]
    assert member.share["device"] == "GPU-abc"
    stored = h.persisted["a"]["members"]["task-0"]["share"]
    assert stored["device"] == "GPU-abc" and stored["host"] == HOST
    assert stored["executor"]["command"] == "python3 -m isolator.sharehost"


def test_member_records_round_trip_and_old_ones_load() -> None:
    key = next(iter(single_job().members()))
    share = {"host": HOST, "isolation": "capped", "gpus": 0.25, "gpu_memory": 4096, "device_memory": 16384,
             "device": "GPU-1", "executor": {"command": "c", "resources": [], "linger_seconds": 30.0}}
    member = MemberRecord(key, 0, "a.task-0.0", share=share)
    assert MemberRecord.from_dict(key, member.to_dict()) == member
    old = MemberRecord(key, 0, "a.task-0.0").to_dict()
    assert "share" not in old and MemberRecord.from_dict(key, old).share is None


# ------------------------------------------------------------------------------------------- linger
def test_an_empty_host_lingers_then_stops_taking_shares_then_is_forgotten(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    emptied = h.now
    host = h.state.share_hosts[HOST]
    assert host.empty_since == emptied and not host.tasks
    cut_off = emptied + LINGER - LINGER_MARGIN_SECONDS
    assert [v.accepting for v in h.state.share_host_views(cut_off - 0.1)] == [True]
    assert [v.accepting for v in h.state.share_host_views(cut_off)] == [False]
    h(Tick(emptied + LINGER + FORGET_AFTER_SECONDS - 0.1))
    assert HOST in h.state.share_hosts
    h(Tick(emptied + LINGER + FORGET_AFTER_SECONDS))
    assert h.state.share_hosts == {}


def test_a_share_placed_before_the_cut_off_keeps_the_host(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    h.submit("b", share_job("b"))
    (info,) = launched(h.offers(offer("S1", gpus=0)))
    assert labels(info)[LABEL_SHARE_HOST] == HOST
    assert h.state.share_hosts[HOST].empty_since is None
    h(Tick(h.now + LINGER + FORGET_AFTER_SECONDS))
    assert HOST in h.state.share_hosts


def test_past_the_cut_off_a_new_share_opens_a_new_host(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    h.now += LINGER - LINGER_MARGIN_SECONDS
    h.submit("b", share_job("b"))
    (info,) = launched(h.offers(offer("S1", gpus=1)))
    assert labels(info)[LABEL_SHARE_HOST] == "sharehost.b.task-0.0"


def test_a_host_whose_tasks_never_started_is_forgotten_when_they_end(h: Harness) -> None:
    open_host(h)
    h.update("a.task-0.0", "TASK_DROPPED", reason="REASON_INVALID_OFFERS", with_uuid=False)
    assert h.state.share_hosts == {}
    assert h.job("a").state is JobState.PENDING       # placed again, on a new host


# ----------------------------------------------------------------------------------- executor ended
def test_executor_ended_forgets_an_empty_host_at_once(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    h(ExecutorEnded("S2", HOST, h.tick()))                  # another agent's executor of that name
    assert HOST in h.state.share_hosts
    h(ExecutorEnded("S1", HOST, h.tick()))
    assert h.state.share_hosts == {}


def test_executor_ended_with_tasks_stops_placement_there_until_they_are_lost(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h(ExecutorEnded("S1", HOST, h.tick()))
    assert h.state.share_host_views(h.now) == ()
    h.submit("b", share_job("b"))
    (info,) = launched(h.offers(offer("S1", gpus=1)))         # its GPU came back to Mesos
    assert labels(info)[LABEL_SHARE_HOST] == "sharehost.b.task-0.0"
    h.update("a.task-0.0", "TASK_LOST", message="Executor terminated")
    assert list(h.state.share_hosts) == ["sharehost.b.task-0.0"]


def test_pymesos_executor_lost_posts_executor_ended() -> None:
    events: list[Any] = []
    callbacks = FrameworkCallbacks(events.append, clock=lambda: 7.0)
    callbacks.executorLost(None, {"value": HOST}, {"value": "S1"}, 0)
    assert events == [ExecutorEnded("S1", HOST, 7.0)]


# ------------------------------------------------------------------------------------------ recovery
def test_a_new_leader_rebuilds_the_hosts_with_the_same_executor(h: Harness) -> None:
    first = open_host(h)
    run(h, "a.task-0.0")
    fresh = Harness()
    fresh(JobsRecovered(tuple(h.persisted.values()), 100.0))
    host = fresh.state.share_hosts[HOST]
    assert host.executor_info == first["executor"]
    assert (host.agent_id, host.used, host.used_memory, host.started) == ("S1", 250, 4096, True)
    fresh.now = 100.0
    fresh.subscribe()
    # no share goes there before its executor proves it runs (it may have ended meanwhile): not the
    # master's reconciliation answer (the last state it heard), an update the executor made since
    assert [view.accepting for view in fresh.state.share_host_views(fresh.now)] == [False]
    fresh.update("a.task-0.0", "TASK_RUNNING", with_uuid=False)       # the reconciliation's answer
    assert [view.accepting for view in fresh.state.share_host_views(fresh.now)] == [False]
    fresh(StatusReceived({**status("a.task-0.0", "TASK_RUNNING"), "timestamp": fresh.now}, fresh.tick()))
    assert [view.accepting for view in fresh.state.share_host_views(fresh.now)] == [True]
    fresh.submit("b", share_job("b"))
    (second,) = launched(fresh.offers(offer("S1", gpus=0, gpu_memory=16384)))
    assert second["executor"] == first["executor"]
    # settings changed since: a recovered host keeps what it was opened with
    changed = Harness()
    changed.state.settings = LaunchSettings(share_host_command="other", share_linger_seconds=5.0)
    changed(JobsRecovered(tuple(h.persisted.values()), 100.0))
    assert changed.state.share_hosts[HOST].executor_info == first["executor"]


def test_recovered_ended_members_rebuild_nothing(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    fresh = Harness()
    fresh(JobsRecovered(tuple(h.persisted.values()), 100.0))
    assert fresh.state.share_hosts == {}


# ---------------------------------------------------------------------------------------- contract
def test_a_plan_with_a_grant_on_an_unknown_host_changes_nothing(h: Harness) -> None:
    open_host(h)

    def rogue(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
              hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
        plan = first_fit_planner(requests, offers, hosts)
        launch = plan.accepts[0]
        task = launch.tasks[0]
        assert task.share is not None
        bad = task._replace(share=dataclasses.replace(task.share, host_id="sharehost.nope"))
        placed = launch._replace(tasks=(bad,))
        outcomes = {job_id: outcome._replace(launches=(placed,)) for job_id, outcome in plan.outcomes.items()}
        return CyclePlan(outcomes, (placed,), plan.declines)  # type: ignore[arg-type]

    h.state.planner = rogue
    h.submit("b", share_job("b"))
    before = dict(h.state.share_hosts)
    with pytest.raises(AssertionError, match=r"sharehost\.nope"):
        h.state.handle(OffersReceived((offer("S1", gpus=0),), h.tick()))
    assert h.job("b").state is JobState.PENDING and h.state.share_hosts == before


def test_the_invariants_catch_an_overfull_or_mixed_host(h: Harness) -> None:
    open_host(h)
    host = h.state.share_hosts[HOST]
    (task_id, grant), = host.tasks.items()
    host.tasks[task_id] = dataclasses.replace(grant, gpus=1001, memory=20000)
    problems = check_invariants(h.state, h.now)
    assert any("gives 1.001 of its GPU" in p for p in problems)
    assert any("20000 MB of 16384 MB" in p for p in problems)
    h.state.share_hosts[HOST] = dataclasses.replace(host, tasks={})
    assert any("not on a known share host" in p for p in check_invariants(h.state, h.now))


def test_a_killed_share_releases_its_grant(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    assert of_type(h(KillRequested("a", h.tick())), KillTask)
    h.update("a.task-0.0", "TASK_KILLED")
    assert h.job("a").state is JobState.KILLED
    assert h.state.share_hosts[HOST].tasks == {} and isinstance(h.state.share_hosts[HOST], ShareHostRecord)


def test_a_machine_without_shares_has_no_hosts() -> None:
    state = SchedulerState(planner=first_fit_planner, settings=SETTINGS)
    assert state.share_host_views(0.0) == ()


# -------------------------------------------------------------------------------------- properties
share_actions = st.one_of(
    st.tuples(st.just("submit"), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("offers"), st.integers(1, 3), st.integers(0, 2)),
    st.tuples(st.just("status"), st.integers(0, 50), st.sampled_from(
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED", "TASK_FAILED", "TASK_LOST", "TASK_KILLED"])),
    st.tuples(st.just("tick"), st.integers(1, 60), st.just(0)),
    st.tuples(st.just("executor_ended"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("recover"), st.just(0), st.just(0)),
)
SIZES = [0.25, 0.5, (0.3, 0.9), 0.75]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(share_actions, min_size=20, max_size=60))
def test_the_ledger_holds_on_random_share_sequences(steps: list[tuple[str, Any, Any]]) -> None:
    h = Harness()          # checks every invariant (the ledger's included) after every event
    h.subscribe()
    jobs = 0
    for kind, a, b in steps:
        if kind == "submit":
            spec = share_job(f"j{jobs}", gpus=SIZES[a], isolation=["capped", "shared", "mps"][b],
                             workers=b, gpu_memory=6000 if a == 3 else None, restart={"policy": "OnFailure"})
            h.submit(f"j{jobs}", spec)
            jobs += 1
        elif kind == "offers":
            h.offers(*(offer(f"S{i}", gpus=b, gpu_memory=16384) for i in range(a)))
        elif kind == "status" and h.state.task_index:
            active = sorted(h.state.task_index)
            job_id, key = h.state.task_index[active[a % len(active)]]
            member = h.job(job_id).members[key]
            h.update(member.task_id, b, agent=member.agent_id, message="Command exited with status 1")
        elif kind == "tick":
            h(Tick(h.tick(a)))
        elif kind == "executor_ended" and h.state.share_hosts:
            hosts = sorted(h.state.share_hosts.values(), key=lambda host: host.host_id)
            host = hosts[a % len(hosts)]
            h(ExecutorEnded(host.agent_id, host.host_id, h.tick()))
        elif kind == "recover":
            kept = {host_id: host.executor_info for host_id, host in h.state.share_hosts.items()
                    if host.tasks}
            fresh = Harness()
            fresh.now, fresh.persisted = h.now, dict(h.persisted)
            fresh(JobsRecovered(tuple(h.persisted.values()), fresh.tick()))
            fresh.subscribe()
            # every host with tasks comes back with the very ExecutorInfo it was opened with
            assert {host_id: host.executor_info for host_id, host in fresh.state.share_hosts.items()} == kept
            h = fresh
