"""Issue 20 item 3: a kill that comes while a task's URIs are still being fetched (a gang's launcher
bundle) ends the task TASK_KILLED exactly once and frees its GPUs, and the fetch that completes later
starts nothing. Mesos' slave.cpp `killTask` answers a task whose executor has not registered yet with
TASK_KILLED (REASON_TASK_KILLED_DURING_LAUNCH) from the agent itself.

Each test repeats the race 20 times, killing at four moments: in the launch's own loop turn, while the
fetch waits at the (gated) HTTP server, as the fetch completes, and after it completed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.core.wire import TERMINAL_TASK_STATES
from mesos_gpu.local.agent.agent import Agent, AgentConfig
from mesos_gpu.local.agent.records import Executor, Task
from tests.local.agent_helpers import (
    FRAMEWORK_ID,
    AgentThread,
    GatedFileServer,
    command_task,
    framework_info,
)
from tests.waiting import wait_until

MODES = ("at-launch", "during-fetch", "as-fetch-ends", "after-fetch")
GPUS = 4
KILLED_BEFORE_DELIVERY = "Killed before delivery to the executor"
GROUP_KILLED_BEFORE_DELIVERY = "A task within the task group was killed before delivery to the executor"


def config() -> AgentConfig:
    return AgentConfig(cpus=2, mem=1024, disk=1024, docker="off", gpus=GPUS, command_kill_grace_period=3.0)


def gpu_resource(count: int) -> dict[str, Any]:
    return {"name": "gpus", "type": "SCALAR", "scalar": {"value": count}}


def fetched_task(server: GatedFileServer, task_id: str, executor: bool = False) -> dict[str, Any]:
    """A one-GPU task whose command fetches `task_id` from the gated server first."""
    task = command_task(task_id, "touch started; exec sleep 30", gpus=1)
    task["command"]["uris"] = [{"value": server.url(task_id), "extract": False}]
    if executor:
        del task["command"]
    return task


def launch(
    agent: Agent, kill: list[str], caps: tuple[str, ...] = ("GPU_RESOURCES",), **launch_args: Any
) -> dict[str, Any]:
    """On the loop: launch, note the records of the launched tasks and executors (by id), and kill
    `kill` in the same turn."""
    tasks, executors = set(agent.tasks), set(agent.executors)
    agent.launch(framework_info(capabilities=caps), **launch_args)
    records: dict[str, Any] = {key[1]: agent.tasks[key] for key in agent.tasks.keys() - tasks}
    records.update({key[1]: agent.executors[key] for key in agent.executors.keys() - executors})
    for task_id in kill:
        agent.kill_task(FRAMEWORK_ID, task_id, None)
    return records


def kill_at(
    a: AgentThread, server: GatedFileServer, mode: str, *, fetched: list[Task | Executor], kill: list[str]
) -> None:
    """Kill `kill` at the moment `mode` names of the fetch of each of `fetched` (its URI's name is its
    id; at-launch: done by `launch` already)."""
    if mode == "at-launch":
        return
    names = [r.task_id if isinstance(r, Task) else r.executor_id for r in fetched]
    if mode != "after-fetch":
        for name in names:
            server.wait_arrived(name)
    if mode != "during-fetch":
        for name in names:
            server.release(name)
    if mode == "after-fetch":
        wait_until(lambda: fetch_settled(a, *fetched), 5, "fetch completion handled")
    for task_id in kill:
        a.call(a.agent.kill_task, FRAMEWORK_ID, task_id, None)


def let_late_fetches_complete(a: AgentThread, server: GatedFileServer, *fetched: Task | Executor) -> None:
    for record in fetched:
        server.release(record.task_id if isinstance(record, Task) else record.executor_id)
    wait_until(lambda: fetch_settled(a, *fetched), 5, "the late fetch completions")


def fetch_settled(a: AgentThread, *records: Task | Executor) -> bool:
    """Whether the fetch of each record has completed and its completion has been handled."""
    return bool(a.call(lambda: all(r.fetch is not None and r.fetch.done() for r in records)))


def never_started(a: AgentThread, record: Task | Executor) -> bool:
    if isinstance(record, Executor):
        return a.call(lambda: record.process) is None
    return a.call(lambda: record.command is not None and record.command.process is None)


def assert_gpus_free(a: AgentThread) -> None:
    assert a.call(lambda: (a.agent.gpus.available, a.agent.gpus.holders())) == (GPUS, {})


def assert_ended_killed_once(a: AgentThread, task_id: str, before_start: bool) -> dict[str, Any]:
    states = a.master.states(task_id)
    assert [s for s in states if s in TERMINAL_TASK_STATES] == ["TASK_KILLED"], states
    assert states[-1] == "TASK_KILLED", states
    if before_start:
        assert states == ["TASK_KILLED"], states
    return a.master.updates(task_id)[-1]


def command_task_race(a: AgentThread, server: GatedFileServer, i: int, caps: tuple[str, ...]) -> None:
    mode, task_id = MODES[i % len(MODES)], f"t{i}"
    kill = [task_id] if mode == "at-launch" else []
    record = a.call(launch, a.agent, kill, caps, task=fetched_task(server, task_id))[task_id]
    kill_at(a, server, mode, fetched=[record], kill=[task_id])
    a.master.wait_state(task_id, "TASK_KILLED", timeout=3)
    assert_gpus_free(a)
    let_late_fetches_complete(a, server, record)
    before_start = mode in ("at-launch", "during-fetch")
    killed = assert_ended_killed_once(a, task_id, before_start)
    if before_start:
        assert never_started(a, record)
        assert (killed["source"], killed["reason"], killed["message"]) == (
            "SOURCE_AGENT",
            "REASON_TASK_KILLED_DURING_LAUNCH",
            KILLED_BEFORE_DELIVERY,
        )
        assert killed["executor_id"] == {"value": task_id}
    assert_gpus_free(a)


@pytest.mark.parametrize("killing_state", [False, True], ids=["plain", "task_killing_state"])
def test_command_task_killed_at_any_moment_of_its_fetch(tmp_path: Path, killing_state: bool) -> None:
    caps = ("GPU_RESOURCES", "TASK_KILLING_STATE") if killing_state else ("GPU_RESOURCES",)
    with GatedFileServer() as server, AgentThread(tmp_path, config()) as a:
        for i in range(20):
            command_task_race(a, server, i, caps)
        wait_until(lambda: a.call(a.agent.running) == [], 5, "no task left on the agent")


def default_executor_gang_race(a: AgentThread, server: GatedFileServer, i: int) -> None:
    mode, pod = MODES[i % len(MODES)], f"pod{i}"
    members = [f"g{i}a", f"g{i}b"]
    kill = members if (i // len(MODES)) % 2 == 0 else members[:1]  # DELETE kills all; or one fails
    executor = {"type": "DEFAULT", "executor_id": {"value": pod}, "resources": [gpu_resource(1)]}
    group = {"tasks": [fetched_task(server, m) for m in members]}
    at_launch = kill if mode == "at-launch" else []
    records = a.call(launch, a.agent, at_launch, executor=executor, task_group=group)
    tasks = [records[m] for m in members]
    kill_at(a, server, mode, fetched=tasks, kill=kill)
    for member in members:
        a.master.wait_state(member, "TASK_KILLED", timeout=3)
    a.master.wait_for(lambda: ("S0", FRAMEWORK_ID, pod, 0) in a.master.of("executor_exited"), 3)
    assert_gpus_free(a)
    let_late_fetches_complete(a, server, *tasks)
    before_start = mode in ("at-launch", "during-fetch")
    for task in tasks:
        killed = assert_ended_killed_once(a, task.task_id, before_start)
        assert killed["executor_id"] == {"value": pod}
        if before_start:
            assert never_started(a, task)
            assert killed["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH"
    assert a.master.of("executor_exited").count(("S0", FRAMEWORK_ID, pod, 0)) == 1
    assert_gpus_free(a)


def test_gang_on_the_default_executor_killed_at_any_moment_of_its_fetch(tmp_path: Path) -> None:
    with GatedFileServer() as server, AgentThread(tmp_path, config()) as a:
        for i in range(20):
            default_executor_gang_race(a, server, i)
        wait_until(lambda: a.call(a.agent.running) == [], 5, "no task or executor left on the agent")


def custom_executor_race(a: AgentThread, server: GatedFileServer, i: int) -> None:
    mode, executor_id = MODES[i % len(MODES)], f"ex{i}"
    grouped = (i // len(MODES)) % 2 == 1
    members = [f"c{i}a", f"c{i}b"] if grouped else [f"c{i}a"]
    executor = {
        "type": "CUSTOM",
        "executor_id": {"value": executor_id},
        "command": {"value": "exec sleep 30", "uris": [{"value": server.url(executor_id)}]},
        "resources": [gpu_resource(1)],
    }
    kill = members[:1]  # Mesos kills a queued task group whole
    at_launch = kill if mode == "at-launch" else []
    if grouped:
        group = {"tasks": [fetched_task(server, m, executor=True) for m in members]}
        records = a.call(launch, a.agent, at_launch, executor=executor, task_group=group)
    else:
        task = {**fetched_task(server, members[0], executor=True), "executor": executor}
        records = a.call(launch, a.agent, at_launch, task=task)
    record = records[executor_id]
    kill_at(a, server, mode, fetched=[record], kill=kill)
    for member in members:
        killed = a.master.wait_state(member, "TASK_KILLED", timeout=3)
        assert (killed["source"], killed["reason"], killed["message"]) == (
            "SOURCE_AGENT",
            "REASON_TASK_KILLED_DURING_LAUNCH",
            GROUP_KILLED_BEFORE_DELIVERY if grouped else KILLED_BEFORE_DELIVERY,
        )
    a.master.wait_for(lambda: [c for c in a.master.of("executor_exited") if c[2] == executor_id], 3)
    assert_gpus_free(a)
    let_late_fetches_complete(a, server, record)
    for member in members:
        assert_ended_killed_once(a, member, before_start=True)
    if mode in ("at-launch", "during-fetch"):
        assert never_started(a, record)
    assert len([c for c in a.master.of("executor_exited") if c[2] == executor_id]) == 1
    assert_gpus_free(a)


def test_custom_executor_killed_at_any_moment_of_its_fetch(tmp_path: Path) -> None:
    with GatedFileServer() as server, AgentThread(tmp_path, config()) as a:
        for i in range(20):
            custom_executor_race(a, server, i)
        wait_until(lambda: a.call(a.agent.running) == [], 5, "no task or executor left on the agent")
