"""The master's pure pieces as tables: call and offer validation (local.master.validation), LAUNCH and
LAUNCH_GROUP as one `Launch` path (local.master.launch), and the allocator's `refuse_seconds`."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mesos_gpu.core.resources import Resources
from mesos_gpu.local.master.allocator import refuse_seconds
from mesos_gpu.local.master.launch import TASK_GROUP_INVALID, TASK_INVALID, launches
from mesos_gpu.local.master.records import AgentRecord, FrameworkRecord, OfferRecord
from mesos_gpu.local.master.validation import validate_offers, validate_scheduler_call

FID = {"value": "F"}
UUID = base64.b64encode(bytes(16)).decode()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({}, "Expecting 'type' to be present"),
        ({"type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
        (
            {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"id": FID}}},
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        ({"type": "SUBSCRIBE", "framework_id": FID, "subscribe": {"framework_info": {"id": FID}}}, None),
        ({"type": "REVIVE"}, "Expecting 'framework_id' to be present"),
        ({"type": "REVIVE", "framework_id": FID}, None),
        ({"type": "KILL", "framework_id": FID}, "Expecting 'kill' to be present"),
        ({"type": "ACKNOWLEDGE", "framework_id": FID, "acknowledge": {"uuid": "AAAA"}}, "Not a valid UUID"),
        ({"type": "ACKNOWLEDGE", "framework_id": FID, "acknowledge": {"uuid": UUID}}, None),
        (
            {"type": "ACKNOWLEDGE_OPERATION_STATUS", "framework_id": FID, "acknowledge_operation_status": {}},
            "Expecting 'agent_id' to be present",
        ),
        (
            {"type": "UPDATE_FRAMEWORK", "framework_id": FID, "update_framework": {"framework_info": {}}},
            "'framework_id' differs from 'update_framework.framework_info.id'",
        ),
    ],
)
def test_scheduler_call_validation(call, error):
    assert validate_scheduler_call(call) == error


def offer(offer_id: str, framework_id: str = "F", agent_id: str = "S0") -> OfferRecord:
    return OfferRecord(offer_id, framework_id, agent_id, Resources.parse("cpus:1"))


OFFERS = {o.offer_id: o for o in (offer("O1"), offer("O2"), offer("O3", "G"), offer("O4", agent_id="S1"))}


@pytest.mark.parametrize(
    ("offer_ids", "agents", "error"),
    [
        ([], {"S0"}, "No offers specified"),
        (["O1", "O2", "O1"], {"S0"}, "Duplicate offer O1 in offer list"),
        (["O1", "O9"], {"S0"}, "Offer O9 is no longer valid"),
        (["O3"], {"S0"}, "Offer O3 has invalid framework G while framework F is expected"),
        (
            ["O1", "O4"],
            {"S0", "S1"},
            "Aggregated offers must belong to one single agent. Offer O4 uses agent S1 and agent S0",
        ),
        (["O1"], set(), "Offer O1 is no longer valid"),  # its agent is gone
        (["O1", "O2"], {"S0"}, None),
    ],
)
def test_offer_validation(offer_ids, agents, error):
    assert validate_offers("F", offer_ids, OFFERS, agents) == error


@pytest.mark.parametrize(
    ("filters", "seconds"),
    [
        (None, 5.0),
        ({}, 5.0),
        ({"refuse_seconds": 0.5}, 0.5),
        ({"refuse_seconds": "junk"}, 5.0),
        ({"refuse_seconds": float("nan")}, 5.0),
        ({"refuse_seconds": 1e12}, 31536000.0),
        ({"refuse_seconds": -1}, -1.0),  # no filter at all
    ],
)
def test_refuse_seconds_like_the_master(filters, seconds):
    assert refuse_seconds(filters) == seconds


def resources(cpus: float, mem: float, disk: float = 0) -> list[dict[str, Any]]:
    amounts = {"cpus": cpus, "mem": mem, "disk": disk}
    return [{"name": n, "type": "SCALAR", "scalar": {"value": v}} for n, v in amounts.items() if v]


def task_info(task_id: str, **extra: Any) -> dict[str, Any]:
    info = {"name": task_id, "task_id": {"value": task_id}, "agent_id": {"value": "S0"}}
    info["resources"] = resources(1, 32)
    info.update(extra)
    return info


def records() -> tuple[FrameworkRecord, AgentRecord]:
    agent = AgentRecord("S0", link=None, info={}, total=Resources.parse("cpus:8;mem:1024;disk:100"))  # type: ignore[arg-type]
    return FrameworkRecord("F", {"user": "u", "name": "n"}), agent


def test_launch_tasks_are_validated_one_by_one_against_the_ones_before():
    framework, agent = records()
    operation = {
        "type": "LAUNCH",
        "launch": {"task_infos": [task_info("a", command={}), task_info("a", command={}), task_info("b")]},
    }
    pending: set[str] = set()
    seen = []
    for launch in launches(operation, framework, agent, pending):
        seen.append((launch.reason, launch.error))
        if launch.error is None:
            pending.add(launch.tasks[0]["task_id"]["value"])
    assert seen == [
        (TASK_INVALID, None),
        (TASK_INVALID, "Task has duplicate ID: a"),
        (TASK_INVALID, "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"),
    ]


def test_a_launch_operation_with_an_id_refuses_every_task():
    framework, agent = records()
    for kind, key in (("LAUNCH", "launch"), ("LAUNCH_GROUP", "launch_group")):
        tasks = [task_info("a")]
        body = {"task_infos": tasks} if kind == "LAUNCH" else {"task_group": {"tasks": tasks}}
        [launch] = launches({"type": kind, "id": {"value": "op"}, key: body}, framework, agent, set())
        assert launch.error == f"The `id` field cannot be set on {kind} operations"


def test_a_task_group_is_one_launch_that_counts_its_new_executor():
    framework, agent = records()
    executor = {"executor_id": {"value": "e"}, "type": "DEFAULT", "resources": resources(0.1, 32, 10)}
    group = {"executor": executor, "task_group": {"tasks": [task_info("a"), task_info("b")]}}
    [launch] = launches({"type": "LAUNCH_GROUP", "launch_group": group}, framework, agent, set())
    assert (launch.error, launch.reason, launch.new_executor, launch.executor_id) == (
        None, TASK_GROUP_INVALID, True, "e",
    )  # fmt: skip
    assert launch.resources == Resources.parse("cpus:2.1;mem:96;disk:10")
    assert launch.executor is not None and launch.executor["framework_id"] == FID  # filled in, a copy
    assert "framework_id" not in executor
    assert launch.problem(Resources.parse("cpus:2.1;mem:96;disk:10")) is None
    assert launch.problem(Resources.parse("cpus:1;mem:96;disk:10")) == (
        "Total resources cpus(allocated: *):2.1; mem(allocated: *):96; disk(allocated: *):10 required by "
        "task group and its executor are more than available cpus(allocated: *):1; mem(allocated: *):96; "
        "disk(allocated: *):10"
    )


def test_a_task_group_executor_needs_cpus_mem_and_disk():
    framework, agent = records()
    executor = {"executor_id": {"value": "e"}, "type": "DEFAULT", "resources": resources(0.1, 32)}
    group = {"executor": executor, "task_group": {"tasks": [task_info("a")]}}
    [launch] = launches({"type": "LAUNCH_GROUP", "launch_group": group}, framework, agent, set())
    assert launch.error == "Executor 'e' uses no disk"
