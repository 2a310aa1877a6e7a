"""The offer cycle's fast paths give exactly what the slow ones gave: TaskInfo templates against
`build_task_info`, `OfferLabels.task_resources` against `TaskPlacement.to_mesos`, the scalar fast path
of the Resource codec against `to_milli`, the request cache, `check_plan`, and a whole seeded scenario's
commands against the digest taken before the cycle was made faster (`tests/scheduler/cycle_scenario.py`)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesos_gpu.core import scheduling, tasktemplates
from mesos_gpu.core.commands import Accept
from mesos_gpu.core.invariants import check_invariants
from mesos_gpu.core.model import Isolation, JobSpec, JobState, TaskKey, TaskSpec
from mesos_gpu.core.placement import AgentLaunch, CyclePlan, Plan, TaskPlacement
from mesos_gpu.core.placement.offers import OfferLabels
from mesos_gpu.core.resources import Resources, ResourcesError
from mesos_gpu.core.scheduling import GangRequest, _request_resources, check_plan, make_planner, task_demand
from mesos_gpu.core.sharehosts import ShareHosts, check_share_plan
from mesos_gpu.core.sharing import ShareGrant, ShareHostView
from mesos_gpu.core.state import JobSubmitted, KillRequested, OffersReceived, SchedulerState, Subscribed
from mesos_gpu.core.taskinfo import LaunchSettings, Placed, build_task_info
from mesos_gpu.core.tasktemplates import TaskInfoTemplate, TaskInfoTemplates, template_key
from mesos_gpu.core.values import to_milli
from mesos_gpu.core.wire import resources_from_mesos
from tests.placement.strategies import resources as resources_strategy
from tests.scheduler import cycle_scenario
from tests.scheduler.builders import first_fit_planner, offer, record, share_job, single_job, tf_job
from tests.strategies import job_specs

#: sha256 of `cycle_scenario.commands_text()`: the TaskInfos, records and every other command, byte for
#: byte. Taken before the offer cycle was made faster (issue 17) as f715a096...bcb0, and taken again when
#: the declines of waiting jobs were put on a shared grid (`core/declinegrid.py`): the text then differed
#: only in `refuse_seconds`, which `WITHOUT_REFUSE_DIGEST` pins.
REFERENCE_DIGEST = "4039c997a9e67de1c3cb6d50fbc59e9466e54a9889394f93ad0f1e9c22b09de5"
#: sha256 of the same text with every `refuse_seconds` value replaced by X, as it was before the offer
#: cycle was made faster: everything but the filters' lengths is still byte for byte what it was.
WITHOUT_REFUSE_DIGEST = "b0b8dadecc008cbf2018c39ce500e4147955a1a6fb3572cd3471cba0d891d4aa"

SETTINGS = [
    LaunchSettings(),
    LaunchSettings(zk_url="zk://10.0.0.1:2181/mesos-gpu/t", launcher_uri="http://s:1/launcher.pyz",
                   kill_grace_seconds=2.5, python="/usr/bin/python3"),
]
RESERVED = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 8}, "role": "tf",
             "reservation": {"principal": "ops"}}]


def test_the_scenario_writes_the_same_commands_as_before() -> None:
    assert cycle_scenario.digest() == REFERENCE_DIGEST


def test_only_the_filter_lengths_changed_since_the_cycle_was_made_faster() -> None:
    text = re.sub(r'"refuse_seconds": [0-9.eE+-]+', '"refuse_seconds": X', cycle_scenario.commands_text())
    assert hashlib.sha256(text.encode()).hexdigest() == WITHOUT_REFUSE_DIGEST


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=job_specs(), which=st.sampled_from(SETTINGS), attempt=st.integers(0, 3),
       ports=st.lists(st.integers(31000, 31100), max_size=3, unique=True))
def test_a_template_builds_what_build_task_info_builds(spec: JobSpec, which: LaunchSettings, attempt: int,
                                                        ports: list[int]) -> None:
    for task in spec.tasks("job-1"):
        if task.role.value != "task" and not ports:
            continue        # a TF member always has its port
        placed = Placed("S1", "host-1", tuple(ports), [{"name": "cpus", "type": "SCALAR",
                                                        "scalar": {"value": 1.0}, "role": "*"}])
        expected = _outcome(functools.partial(build_task_info, spec, task, attempt, placed, which))
        built = _outcome(functools.partial(_from_template, spec, task, attempt, placed, which))
        assert built == expected      # equal, key order included (or the same error)


def _from_template(spec: JobSpec, task: TaskSpec, attempt: int, placed: Placed,
                   which: LaunchSettings) -> dict[str, Any]:
    return TaskInfoTemplate(spec, task, which).build(spec, task, attempt, placed)


def _outcome(build: Callable[[], dict[str, Any]]) -> str:
    try:
        return json.dumps(build())
    except Exception as error:  # the slow path's error must be the fast path's
        return f"{type(error).__name__}: {error}"


def test_one_template_serves_jobs_alike_sharing_only_what_is_alike() -> None:
    first, second = single_job("a", env={"K": "v"}), single_job("b", env={"K": "v"})
    task_a, task_b = first.tasks("job-a")[0], second.tasks("job-b")[0]
    assert template_key(first, task_a) == template_key(second, task_b)
    template = TaskInfoTemplate(first, task_a, SETTINGS[1])
    for ports in ((31000,), ()):
        placed = Placed("S1", "h", ports, ())
        one = template.build(first, task_a, 0, placed)
        before = copy.deepcopy(one)
        two, three = template.build(second, task_b, 1, placed), template.build(second, task_b, 0, placed)
        assert one == before        # building others changed nothing of it
        assert json.dumps(two) == json.dumps(build_task_info(second, task_b, 1, placed, SETTINGS[1]))
        assert json.dumps(three) == json.dumps(build_task_info(second, task_b, 0, placed, SETTINGS[1]))
        assert one["kill_policy"] is two["kill_policy"]     # alike parts are made once
        assert one["labels"] is not two["labels"] and one["task_id"] is not three["task_id"]
        if not ports:   # the whole command of an attempt is alike for members without ports
            assert one["command"] is three["command"] and one["command"] is not two["command"]


def test_tf_members_differ_in_their_template_by_role_and_index() -> None:
    spec = tf_job("d", workers=2)
    tasks = spec.tasks("job-d")
    assert len({template_key(spec, task) for task in tasks}) == len(tasks)


@settings(max_examples=200, deadline=None)
@given(request=resources_strategy(), ports=st.lists(st.integers(30000, 30500), max_size=4, unique=True),
       allocation=st.sampled_from([None, "*", "tf"]), reserved=st.booleans())
def test_task_resources_are_the_placements_resources(request: Resources, ports: list[int],
                                                     allocation: str | None, reserved: bool) -> None:
    labels = OfferLabels("tf", allocation, RESERVED) if reserved else OfferLabels("*", allocation)
    placement = TaskPlacement("j.task-0", "j", "task", 0, "S1", "h", tuple(ports), request, labels)
    assert json.dumps(labels.task_resources(request, tuple(ports))) == json.dumps(placement.to_mesos())


def test_task_resources_keep_the_requests_own_allocation_role_when_the_offer_has_none() -> None:
    request = Resources.of(cpus=1, mem=32).with_labels(allocation_role="ml")
    placement = TaskPlacement("j.task-0", "j", "task", 0, "S1", "h", (31000,), request, OfferLabels())
    assert OfferLabels().task_resources(request, (31000,)) == placement.to_mesos()


@given(st.floats(min_value=0, max_value=1e16, allow_nan=False) | st.integers(0, 10**12))
def test_the_codecs_scalar_fast_path_rounds_as_to_milli(value: float) -> None:
    entry = {"name": "cpus", "type": "SCALAR", "scalar": {"value": value}}
    assert resources_from_mesos([entry]).scalar_milli("cpus") == to_milli(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_the_codecs_fast_path_leaves_bad_scalars_to_the_checks(value: float) -> None:
    with pytest.raises(ValueError):
        resources_from_mesos([{"name": "cpus", "type": "SCALAR", "scalar": {"value": value}}])


def _plan_of(job_id: str, *task_ids: str) -> Plan:
    tasks = tuple(TaskPlacement(task_id, job_id, "task", 0, "S1", "h", (), Resources.of(cpus=1))
                  for task_id in task_ids)
    return Plan(job_id, (AgentLaunch("S1", "h", ("O1",), tasks),))


def test_check_plan_answers_the_planned_requests_and_refuses_a_plan_with_another_jobs_task() -> None:
    a, b = single_job("a"), single_job("b")
    requests = [GangRequest("a", a, a.tasks("a")), GangRequest("b", b, b.tasks("b"))]
    good = _plan_of("a", "a.task-0")
    plan = CyclePlan({"a": good}, good.launches, ())
    assert check_plan(plan, requests) == [requests[0]]
    stray = _plan_of("a", "a.task-0", "b.task-0")
    with pytest.raises(AssertionError, match="no member"):
        check_plan(CyclePlan({"a": stray}, stray.launches, ()), requests)
    wrong = _plan_of("a", "b.task-0")
    with pytest.raises(AssertionError, match="partial gang"):
        check_plan(CyclePlan({"a": wrong}, wrong.launches, ()), requests)


def test_check_share_plan_refuses_a_grant_that_does_not_fit_the_request() -> None:
    whole, shared = single_job("a"), share_job("s")
    grant = ShareGrant("new:S1:0", True, Isolation.CAPPED, 250, 0, 0)
    requests = [GangRequest("a", whole, whole.tasks("a")), GangRequest("s", shared, shared.tasks("s"))]

    def plan(job_id: str, task_id: str, share: ShareGrant | None) -> CyclePlan:
        placed = _plan_of(job_id, task_id)
        task = placed.launches[0].tasks[0]._replace(share=share)
        one = Plan(job_id, (AgentLaunch("S1", "h", ("O1",), (task,)),))
        return CyclePlan({job_id: one}, one.launches, ())

    hosts = ShareHosts()
    check_share_plan(plan("a", "a.task-0", None), requests, hosts)
    check_share_plan(plan("s", "s.task-0", grant), requests, hosts)
    with pytest.raises(AssertionError, match="does not fit its request"):
        check_share_plan(plan("a", "a.task-0", grant), requests, hosts)
    with pytest.raises(AssertionError, match="does not fit its request"):
        check_share_plan(plan("s", "s.task-0", None), requests, hosts)
    with pytest.raises(AssertionError, match="is not one of"):
        elsewhere = dataclasses.replace(grant, host_id="h9", new_host=False)
        check_share_plan(plan("s", "s.task-0", elsewhere), requests, hosts)


def test_a_waiting_jobs_request_is_kept_across_cycles_until_reserve_changes() -> None:
    state = SchedulerState(first_fit_planner, reserve_after_seconds=10.0)
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record("big", single_job("big", gpus=8)), 0.0))
    seen: list[GangRequest] = []

    def planner(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
                hosts: Sequence[ShareHostView]) -> CyclePlan:
        seen.extend(requests)
        return first_fit_planner(requests, offers, hosts)

    state.planner = planner
    state.handle(OffersReceived((offer("S1", gpus=1),), 1.0))
    state.handle(OffersReceived((offer("S1", gpus=1),), 2.0))
    state.handle(OffersReceived((offer("S1", gpus=1),), 11.0))
    assert seen[0] is seen[1] and not seen[0].reserve
    assert seen[2].reserve and seen[2].tasks is seen[0].tasks
    assert state.jobs["big"].members[TaskKey.parse("task-0")].task_id is None


def test_a_waiting_jobs_demand_is_made_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = scheduling.job_demand
    monkeypatch.setattr(scheduling, "job_demand",
                        lambda request: made.append(request.job_id) or real(request))
    state = SchedulerState(make_planner(), reserve_after_seconds=10.0)
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record("big", single_job("big", gpus=8)), 0.0))
    for now in (1.0, 2.0, 3.0):     # waits: its request, and the demand on it, kept
        state.handle(OffersReceived((offer("S1", gpus=1),), now))
    assert made == ["big"]
    first = state._requests["big"]
    state.handle(OffersReceived((offer("S1", gpus=1),), 11.0))     # reserve now: a new request
    assert made == ["big", "big"] and state._requests["big"] is not first
    assert state._requests["big"].demand == first.demand
    state.handle(KillRequested("big", 12.0))
    assert "big" not in state._requests         # no longer waiting: request and demand dropped


def test_the_template_cache_shares_alike_members_and_follows_the_settings_and_its_limit() -> None:
    cache = TaskInfoTemplates(limit=2)
    first, second, other = single_job("a"), single_job("b"), single_job("c", command="echo hi")
    one = cache.get(first, first.tasks("a")[0], SETTINGS[0])
    assert cache.get(second, second.tasks("b")[0], SETTINGS[0]) is one and len(cache) == 1
    assert cache.get(first, first.tasks("a")[0], SETTINGS[1]) is not one      # other settings
    assert one.settings is SETTINGS[0] and len(cache) == 1
    cache.get(other, other.tasks("c")[0], SETTINGS[1])
    assert len(cache) == 2
    cache.get(tf_job("d"), tf_job("d").tasks("d")[0], SETTINGS[1])
    assert len(cache) == 1      # past the limit: emptied, then the new one kept


def test_a_waiting_members_template_is_found_before_the_cycle_that_launches_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    state = SchedulerState(first_fit_planner)
    state.handle(Subscribed("F", 0.0))
    spec = single_job("a")
    state.handle(JobSubmitted(record("a", spec), 0.0))
    state.handle(OffersReceived((), 1.0))       # seen waiting: its template is found now
    keys: list[object] = []
    monkeypatch.setattr(tasktemplates, "template_key", lambda *args: keys.append(args) or ("k",))
    commands = state.handle(OffersReceived((offer("S1"),), 2.0))
    infos = [info for command in commands if isinstance(command, Accept) for info in command.task_infos]
    assert keys == [] and len(infos) == 1       # launched from the member's own template
    task = state.jobs["a"].tasks()[0]
    placed = Placed("S1", "S1", (), infos[0]["resources"])
    assert infos[0] == build_task_info(spec, task, 0, placed, state.settings)
    assert tasktemplates._KEPT not in task.__dict__     # launched: no longer kept on the member


def test_a_job_that_stops_waiting_keeps_no_template_on_its_members() -> None:
    state = SchedulerState(first_fit_planner)
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record("a", single_job("a")), 0.0))
    state.handle(OffersReceived((), 1.0))
    task = state.jobs["a"].tasks()[0]
    assert tasktemplates._KEPT in task.__dict__
    state.handle(KillRequested("a", 2.0))
    assert state.jobs["a"].state is JobState.KILLED and tasktemplates._KEPT not in task.__dict__


def test_only_validated_requests_are_shared() -> None:
    with pytest.raises(ResourcesError):
        _request_resources(True, 1024.0, 0.0, 0)    # as Resources.of refuses it
    assert _request_resources(1, 1024.0, 0.0, 0) is not _request_resources(1, 1024.0, 0.0, 0)
    assert _request_resources(1.0, 1024.0, 0.0, 0) is _request_resources(1.0, 1024.0, 0.0, 0)


def test_a_kept_template_serves_only_its_own_spec_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = TaskInfoTemplates()
    spec = single_job("a")
    task = spec.tasks("a")[0]
    keys: list[object] = []
    monkeypatch.setattr(tasktemplates, "template_key",
                        lambda *args: keys.append(args) or template_key(*args))
    one = cache.get(spec, task, SETTINGS[0])
    assert cache.get(spec, task, SETTINGS[0]) is one and len(keys) == 1     # kept on the member
    other = cache.get(spec, task, SETTINGS[1])      # settings changed: not the kept one
    assert other is not one and other.settings is SETTINGS[1] and len(keys) == 2
    alike = single_job("a")         # the member passed with another spec (equal): looked up again
    assert cache.get(alike, task, SETTINGS[1]) is other and len(keys) == 3
    assert cache.get(alike, task, SETTINGS[1]) is other and len(keys) == 3


def test_prepare_leaves_share_members_to_their_host() -> None:
    cache = TaskInfoTemplates()
    whole, shared = single_job("a"), share_job("s")
    cache.prepare(whole, whole.tasks("a"), SETTINGS[0])
    cache.prepare(shared, shared.tasks("s"), SETTINGS[0])
    assert len(cache) == 1


def test_requests_alike_share_one_resources_and_one_needs() -> None:
    first, second = single_job("a", cpus=2, mem=512), single_job("b", cpus=2, mem=512)
    one, two = task_demand(first.tasks("a")[0]), task_demand(second.tasks("b")[0])
    assert one.resources is two.resources and one.needs is two.needs
    other = task_demand(single_job("c", cpus=3, mem=512).tasks("c")[0])
    assert other.resources != one.resources and other.needs != one.needs
    assert one.resources == Resources.of(cpus=2, mem=512, gpus=1)


_QUEUE_STEPS = st.lists(st.tuples(st.sampled_from(["submit", "launch", "fail", "kill"]),
                                  st.integers(0, 11), st.integers(0, 2)), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_QUEUE_STEPS)
def test_the_kept_queue_order_is_the_sorted_order_of_the_jobs_ready(
        steps: list[tuple[str, int, int]]) -> None:
    state = SchedulerState(first_fit_planner)
    state.handle(Subscribed("F", 0.0))
    now = 1.0
    for action, number, priority in steps:
        now += 1.0
        job_id = f"j{number}"
        job = state.jobs.get(job_id)
        if action == "submit" and job is None:
            restart = {"policy": "OnFailure", "backoff_seconds": 0}
            spec = single_job(job_id, priority=priority, restart=restart)
            state.handle(JobSubmitted(record(job_id, spec, now), now))
        elif action == "launch" and job is not None and job.state in (JobState.PENDING, JobState.RESTARTING):
            state._set_state(job, JobState.STAGING, now)
        elif action == "fail" and job is not None and job.state is JobState.STAGING:
            state._set_state(job, JobState.RESTARTING, now)     # placeable again: a new place
            job.next_attempt_at = now
        elif action == "kill" and job is not None and not job.state.is_terminal:
            state._set_state(job, JobState.KILLED, now)
        expected = sorted((job_id for job_id in state._placeable if state.jobs[job_id].ready_to_place(now)),
                          key=state._placeable.__getitem__)
        assert state._ready_ids(now) == expected
        assert len(state._order) + len(state._order_added) <= 2 * len(state._placeable) + 65


def test_the_invariants_name_a_waiting_job_the_queue_order_would_skip() -> None:
    state = SchedulerState(first_fit_planner)
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record("a", single_job("a")), 0.0))
    assert check_invariants(state, 1.0) == []
    state._order_added.clear()
    state._order.clear()
    assert check_invariants(state, 1.0) == ["waiting jobs missing from the queue order: ['a']"]
