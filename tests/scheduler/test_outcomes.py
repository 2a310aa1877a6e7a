"""Placement's typed outcomes reach the state machine as they are: each kind has its own effect on the job
(a `Plan` launches it, a `WaitReason` keeps it waiting, `NeverFits` says so and fails it in time, an
`InvalidDemand` fails it at once), and a TaskInfo's resources are labelled as its offer's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from mesos_gpu.core.model import Containerizer, JobState
from mesos_gpu.core.placement import (
    AgentLaunch,
    CyclePlan,
    InvalidDemand,
    NeverFits,
    Outcome,
    Plan,
    TaskPlacement,
    WaitReason,
)
from mesos_gpu.core.placement.offers import catalog_from_master_state
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import (
    Accept,
    Decline,
    GangRequest,
    JobSubmitted,
    OffersReceived,
    Persist,
    SchedulerState,
    Subscribed,
    check_invariants,
)
from mesos_gpu.core.taskinfo import LaunchSettings
from tests.scheduler.builders import offer, record, single_job, tf_job

JOB = "one"
TASK = f"{JOB}.task-0"
COUNTS = (("insufficient gpus", 2),)
NEVER = "can never fit: 0/2 agents fit: 2 insufficient gpus"


def plan_of(job_id: str) -> Plan:
    placement = TaskPlacement(TASK, job_id, "task", 0, "S1", "host-S1", (), Resources.of(cpus=1, mem=1024))
    return Plan(job_id, (AgentLaunch("S1", "host-S1", ("O1",), (placement,)),))


def stub_planner(outcome: Outcome) -> Any:
    """A planner that answers `outcome` for every job (and launches it when it is a Plan)."""

    def plan(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
             hosts: Sequence[Any] = ()) -> CyclePlan:
        outcomes = {request.job_id: outcome._replace(job_id=request.job_id) for request in requests}
        launched = [o for o in outcomes.values() if isinstance(o, Plan)]
        accepts = tuple(launch for p in launched for launch in p.launches)
        declines = () if accepts else tuple(str(o["id"]["value"]) for o in offers)
        return CyclePlan(outcomes, accepts, declines)

    return plan


def machine(planner: Any, **settings: Any) -> SchedulerState:
    state = SchedulerState(planner=planner, settings=LaunchSettings(zk_url="zk://zk:2181/x"), **settings)
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record(JOB, single_job(JOB, gpus=1)), 0.0))
    return state


def handle(state: SchedulerState, event: Any) -> list[Any]:
    commands = state.handle(event)
    assert not check_invariants(state, event.now)
    return commands


@pytest.mark.parametrize(
    ("outcome", "state", "message", "wait_reason", "accepted"),
    [
        (plan_of(JOB), JobState.STAGING, "launching attempt 0", "", True),
        (WaitReason(JOB, TASK, 2, COUNTS), JobState.PENDING, "waiting for offers",
         "0/2 agents fit: 2 insufficient gpus", False),
        (NeverFits(JOB, TASK, 2, COUNTS), JobState.PENDING, NEVER, NEVER, False),
        (InvalidDemand(JOB, "task one.task-0: gpus must be a whole number, got 0.5"), JobState.FAILED,
         "cannot be placed: task one.task-0: gpus must be a whole number, got 0.5", "", False),
    ],
    ids=["plan", "wait", "never", "invalid"],
)
def test_each_outcome_has_its_effect_on_the_job(outcome, state, message, wait_reason, accepted) -> None:
    machine_ = machine(stub_planner(outcome))
    commands = handle(machine_, OffersReceived((offer("S1", offer_id="O1"),), 1.0))
    job = machine_.jobs[JOB]
    assert (job.state, job.message, job.wait_reason) == (state, message, wait_reason)
    assert bool([c for c in commands if isinstance(c, Accept)]) == accepted
    persisted = [c.record for c in commands if isinstance(c, Persist)]
    if isinstance(outcome, WaitReason):
        assert persisted == []      # waiting changes nothing durable
    else:
        assert [(r["state"], r["message"]) for r in persisted] == [(state.value, message)]
    if state.is_terminal:
        assert job.finished_at == 1.0 and JOB not in machine_._placeable


def test_a_job_that_never_fits_fails_once_that_has_held_long_enough() -> None:
    never = NeverFits(JOB, TASK, 2, COUNTS)
    state = machine(stub_planner(never), never_fits_after_seconds=60.0)
    handle(state, OffersReceived((offer("S1"),), 10.0))
    assert state.jobs[JOB].never_fits_since == 10.0
    commands = handle(state, OffersReceived((offer("S1"),), 40.0))
    assert state.jobs[JOB].state is JobState.PENDING
    assert not [c for c in commands if isinstance(c, Persist)]      # the same message: nothing to write
    commands = handle(state, OffersReceived((offer("S1"),), 70.0))
    job = state.jobs[JOB]
    assert job.state is JobState.FAILED
    assert job.message == f"{NEVER} (for 60 s)"
    assert [c.record["state"] for c in commands if isinstance(c, Persist)] == ["FAILED"]
    assert [c for c in commands if isinstance(c, Decline)]


def test_never_fits_is_forgotten_when_the_job_fits_somewhere_again() -> None:
    outcomes: list[Outcome] = [NeverFits(JOB, TASK, 2, COUNTS), WaitReason(JOB, TASK, 3, COUNTS)]

    def planner(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
                hosts: Sequence[Any] = ()) -> CyclePlan:
        return stub_planner(outcomes.pop(0))(requests, offers, hosts)

    state = SchedulerState(planner=planner, never_fits_after_seconds=60.0)
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record(JOB, single_job(JOB, gpus=1)), 0.0))
    handle(state, OffersReceived((offer("S1"),), 10.0))
    commands = handle(state, OffersReceived((offer("S1"),), 20.0))     # an agent joined: it may fit
    job = state.jobs[JOB]
    assert (job.state, job.message, job.never_fits_since) == (JobState.PENDING, "waiting for offers", None)
    assert [c.record["message"] for c in commands if isinstance(c, Persist)] == ["waiting for offers"]


def test_without_a_limit_a_job_that_never_fits_waits_saying_so() -> None:
    state = machine(stub_planner(NeverFits(JOB, TASK, 2, COUNTS)), never_fits_after_seconds=None)
    handle(state, OffersReceived((offer("S1"),), 1.0))
    handle(state, OffersReceived((offer("S1"),), 1e6))
    assert state.jobs[JOB].state is JobState.PENDING
    assert state.jobs[JOB].message.startswith("can never fit: ")


def test_the_real_planner_fails_a_job_that_fits_on_no_agent_of_the_catalog() -> None:
    agents = catalog_from_master_state({"slaves": [
        {"id": "S1", "hostname": "h1", "resources": {"cpus": 8.0, "mem": 16384.0, "gpus": 2.0}},
    ]})
    state = SchedulerState(planner=make_planner(catalog=lambda: agents), never_fits_after_seconds=30.0)
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record("huge", single_job("huge", gpus=4)), 0.0))
    state.handle(JobSubmitted(record("fits", single_job("fits", gpus=2)), 0.0))
    handle(state, OffersReceived((offer("S1", gpus=1),), 1.0))
    assert state.jobs["huge"].message == "can never fit: 0/1 agents fit: 1 insufficient gpus"
    assert state.jobs["fits"].wait_reason == "0/1 agents fit: 1 insufficient gpus"
    handle(state, OffersReceived((offer("S1", gpus=1),), 31.0))
    assert state.jobs["huge"].state is JobState.FAILED
    assert state.jobs["fits"].state is JobState.PENDING


def test_a_plan_that_breaks_the_contract_changes_nothing() -> None:
    partial = Plan(JOB, ())
    stray = CyclePlan({JOB: WaitReason(JOB, TASK, 1, ())}, plan_of(JOB).launches, ())
    cases = ((stub_planner(partial), "a partial gang"), (lambda *args: stray, "no planned job"))
    for broken, message in cases:
        state = machine(broken)
        with pytest.raises(AssertionError, match=message):
            state.handle(OffersReceived((offer("S1"),), 1.0))
        assert state.jobs[JOB].state is JobState.PENDING and not state.task_index


def test_offers_the_planner_did_not_name_are_declined() -> None:
    state = machine(lambda requests, offers, hosts: CyclePlan({}, (), ()))
    commands = handle(state, OffersReceived((offer("S1", offer_id="O1"), offer("S2", offer_id="O2")), 1.0))
    assert [c.offer_ids for c in commands if isinstance(c, Decline)] == [("O1", "O2")]
    assert state.jobs[JOB].wait_reason == "not considered in this offer cycle"


# ------------------------------------------------------------------- TaskInfo resources, as the offer's
def labelled_offer(agent: str, **labels: Any) -> dict[str, Any]:
    """An offer whose every resource carries `labels` (role, reservation(s), allocation_info)."""
    out = offer(agent, gpus=1)
    for resource in out["resources"]:
        resource.pop("role")
        resource.update(labels)
    return out


RESERVED_DYNAMIC = {"role": "tf", "reservation": {"principal": "ops", "labels": {"labels": [{"key": "k"}]}}}
RESERVED_REFINED = {"reservations": [{"type": "DYNAMIC", "role": "tf", "principal": "ops"}]}
ALLOCATED = {"role": "*", "allocation_info": {"role": "tf"}}


@pytest.mark.parametrize("labels", [ALLOCATED, RESERVED_DYNAMIC, {"role": "tf"}, RESERVED_REFINED],
                         ids=["allocation-info", "dynamic-reservation", "static-reservation", "refinement"])
@pytest.mark.parametrize("containerizer", [Containerizer.MESOS, Containerizer.DOCKER])
def test_task_resources_are_labelled_as_the_offer(labels: dict[str, Any],
                                                  containerizer: Containerizer) -> None:
    state = SchedulerState(planner=make_planner(), settings=LaunchSettings(zk_url="zk://zk:2181/x"))
    state.handle(Subscribed("F", 0.0))
    spec = tf_job(JOB, workers=1, chief=0, ps=0, gpus=1, containerizer=containerizer.value)
    state.handle(JobSubmitted(record(JOB, spec), 0.0))
    commands = handle(state, OffersReceived((labelled_offer("S1", **labels),), 1.0))
    [accept] = [c for c in commands if isinstance(c, Accept)]
    [info] = accept.task_infos
    resources = info["resources"]
    assert sorted(r["name"] for r in resources) == ["cpus", "gpus", "mem", "ports"]
    for resource in resources:
        assert {k: v for k, v in resource.items() if k in ("role", *labels)} == labels, resource
    ports = next(r for r in resources if r["name"] == "ports")
    assert ports["ranges"] == {"range": [{"begin": 31000, "end": 31000}]}     # the TF member's gRPC port
    if containerizer is Containerizer.DOCKER:
        for resource in info["executor"]["resources"]:
            assert {k: v for k, v in resource.items() if k in ("role", *labels)} == labels


def test_a_job_that_ran_before_is_never_failed_for_not_fitting() -> None:
    # Its agents fitted it once; gone for a while (a reboot, a partition) they drop out of the catalog.
    state = machine(stub_planner(NeverFits(JOB, TASK, 2, COUNTS)), never_fits_after_seconds=60.0)
    state.jobs[JOB].attempt = 0          # as after a first launch, now waiting to restart
    handle(state, OffersReceived((offer("S1"),), 10.0))
    handle(state, OffersReceived((offer("S1"),), 1000.0))
    job = state.jobs[JOB]
    assert (job.state, job.message) == (JobState.PENDING, NEVER)


def test_a_recovered_never_fits_message_is_replaced_once_the_job_only_waits() -> None:
    # `never_fits_since` is not persisted: after a failover the persisted message alone says it.
    state = machine(stub_planner(WaitReason(JOB, TASK, 3, COUNTS)))
    state.jobs[JOB].message = NEVER
    commands = handle(state, OffersReceived((offer("S1"),), 1.0))
    assert state.jobs[JOB].message == "waiting for offers"
    assert [c.record["message"] for c in commands if isinstance(c, Persist)] == ["waiting for offers"]


def test_a_name_offered_from_two_reservations_is_sent_with_the_role_only() -> None:
    # 8 statically reserved cpus for "tf" and 1 dynamically reserved: one TaskInfo entry cannot claim
    # from both, so no reservation details are copied for cpus (the role label stands for it).
    static = labelled_offer("S1", role="tf")
    dynamic_cpu = {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, **RESERVED_DYNAMIC}
    static["resources"].append(dynamic_cpu)
    state = SchedulerState(planner=make_planner(), settings=LaunchSettings(zk_url="zk://zk:2181/x"))
    state.handle(Subscribed("F", 0.0))
    state.handle(JobSubmitted(record(JOB, single_job(JOB, gpus=1)), 0.0))
    commands = handle(state, OffersReceived((static,), 1.0))
    [accept] = [c for c in commands if isinstance(c, Accept)]
    [info] = accept.task_infos
    cpus = next(r for r in info["resources"] if r["name"] == "cpus")
    assert cpus.get("role") == "tf" and "reservation" not in cpus and "reservations" not in cpus
