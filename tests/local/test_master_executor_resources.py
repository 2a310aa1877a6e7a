"""A custom executor holding a GPU, as Mesos treats one (the share host's footing), with unmodified pymesos:

- its resources count once, when it is launched: a later task to the running executor takes only its own
  (master.cpp `Master::_accept`: `if (!slave->hasExecutor(...)) resources += executor.resources()`);
- a later task's ExecutorInfo must equal the running executor's, in the sense of Mesos' `operator==`
  (src/common/type_utils.cpp: id, type, data, resources as a multiset, command with URIs and environment
  in any order, framework id, name, source, container, discovery; labels and shutdown grace not
  compared), else TASK_ERROR "ExecutorInfo is not compatible ..." (validation.cpp
  `validateCompatibleExecutorInfo`);
- when it ends, its GPU, cpus and mem are free and offered again, and the scheduler hears FAILURE
  {agent_id, executor_id, status} (pymesos `executorLost`).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import sys
from pathlib import Path
from typing import Any

from mesos_gpu.local.agent.gpus import ENV_FAKE_GPUS
from mesos_gpu.local.master.validation import executor_infos_equal
from tests.local.conftest import command_task, scalar

TEST_EXECUTOR = Path(__file__).with_name("agent_test_executor.py")
NOW = {"refuse_seconds": 0}


def resource(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def holder(**extra: Any) -> dict[str, Any]:
    info = {
        "executor_id": {"value": "holder"},
        "command": {"value": f"{sys.executable} {TEST_EXECUTOR}"},
        "resources": [resource("cpus", 0.1), resource("mem", 32), resource("gpus", 1)],
    }
    info.update(extra)
    return info


def on_executor(offer: Any, task_id: str, executor: dict[str, Any], mode: str = "hold") -> dict[str, Any]:
    task = command_task(offer, task_id, executor=executor, data=base64.b64encode(mode.encode()).decode())
    del task["command"]
    return task


def next_offer(recorder: Any, mark: int) -> Any:
    return recorder.wait_for("offer", after=mark)


def start(cluster_factory: Any, driver_factory: Any) -> tuple[Any, Any, Any]:
    """One agent with one GPU, task t1 running on the executor `holder` (which holds the GPU)."""
    cluster = cluster_factory(agents=1, gpus_per_agent=1)
    driver, recorder = driver_factory(cluster.master_address)
    offer = recorder.wait_for("offer")
    assert scalar(offer, "gpus") == 1
    mark = recorder.mark()
    driver.launchTasks(offer["id"], [on_executor(offer, "t1", holder())], NOW)
    recorder.wait_state("t1", "TASK_RUNNING", timeout=20)
    return cluster, driver, recorder, mark


def test_executor_resources_count_once_and_return_when_it_ends(cluster_factory, driver_factory) -> None:
    cluster, driver, recorder, mark = start(cluster_factory, driver_factory)
    offer = next_offer(recorder, mark)
    assert scalar(offer, "gpus") == 0  # the executor holds the agent's only GPU
    mark = recorder.mark()
    driver.launchTasks(offer["id"], [on_executor(offer, "t2", holder())], NOW)
    recorder.wait_state("t2", "TASK_RUNNING")
    agent_id = offer["agent_id"]["value"]
    used = cluster.call(lambda: cluster.master.agents[agent_id].used)
    assert (used.scalar("gpus"), round(used.scalar("cpus"), 3), used.scalar("mem")) == (1, 0.3, 96)
    pattern = cluster.workdir / "**" / "executors" / "holder" / "runs" / "*" / "stdout"
    [stdout] = {os.path.realpath(path) for path in glob.glob(str(pattern), recursive=True)}
    events = [json.loads(line) for line in Path(stdout).read_text().splitlines()]
    env = next(e for e in events if e["event"] == "registered")["env"]
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env[ENV_FAKE_GPUS].startswith("1x")
    for task_id in ("t1", "t2"):
        driver.killTask({"value": task_id})
        recorder.wait_state(task_id, "TASK_KILLED")
    mark = recorder.mark()
    driver._send({
        "type": "SHUTDOWN",
        "framework_id": {"value": driver.framework_id},
        "shutdown": {"executor_id": {"value": "holder"}, "agent_id": {"value": agent_id}},
    })
    lost = recorder.wait_for("executor_lost", after=mark, timeout=15)
    assert lost["executor_id"] == {"value": "holder"} and lost["agent_id"] == {"value": agent_id}
    assert isinstance(lost["status"], int)
    recorder.wait_for("offer", lambda o: scalar(o, "gpus") == 1, after=mark, timeout=15)
    used = cluster.call(lambda: cluster.master.agents[agent_id].used)
    assert (used.scalar("gpus"), used.scalar("cpus"), used.scalar("mem")) == (0, 0, 0)


def test_a_later_task_must_name_a_compatible_executor(cluster_factory, driver_factory) -> None:
    _, driver, recorder, mark = start(cluster_factory, driver_factory)
    offer = next_offer(recorder, mark)
    other = holder(command={"value": f"{sys.executable} {TEST_EXECUTOR} --other"})
    mark = recorder.mark()
    driver.launchTasks(offer["id"], [on_executor(offer, "t-bad", other)], NOW)
    error = recorder.wait_state("t-bad", "TASK_ERROR")
    assert error["message"].startswith("ExecutorInfo is not compatible with existing ExecutorInfo")
    assert error["reason"] == "REASON_TASK_INVALID"
    # Mesos' equality: resources in another order, labels and a shutdown grace period do not matter.
    same = holder(
        resources=list(reversed(holder()["resources"])),
        labels={"labels": [{"key": "k", "value": "v"}]},
        shutdown_grace_period={"nanoseconds": 1_000_000_000},
    )
    offer = next_offer(recorder, mark)
    driver.launchTasks(offer["id"], [on_executor(offer, "t-same", same)], NOW)
    recorder.wait_state("t-same", "TASK_RUNNING")


def test_executor_info_equality_is_mesos() -> None:
    base = holder(
        framework_id={"value": "F"},
        command={
            "value": "run",
            "uris": [{"value": "http://a/x.tgz"}, {"value": "http://a/y", "extract": False}],
            "environment": {"variables": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        },
    )
    reordered = json.loads(json.dumps(base))
    reordered["command"]["uris"].reverse()
    reordered["command"]["environment"]["variables"].reverse()
    reordered["resources"].reverse()
    reordered["labels"] = {"labels": [{"key": "x", "value": "y"}]}
    assert executor_infos_equal(base, reordered)
    defaults = json.loads(json.dumps(base))
    defaults["command"]["shell"] = True  # the proto default, written out
    defaults["command"]["uris"][0]["extract"] = True
    assert executor_infos_equal(base, defaults)
    for change in (
        {"data": base64.b64encode(b"x").decode()},
        {"resources": [resource("cpus", 0.2), resource("mem", 32), resource("gpus", 1)]},
        {"name": "other"},
        {"type": "CUSTOM"},
        {"container": {"type": "DOCKER", "docker": {"image": "x"}}},
    ):
        assert not executor_infos_equal(base, {**base, **change}), change
    args = json.loads(json.dumps(base))
    args["command"]["arguments"] = ["a", "b"]
    swapped = json.loads(json.dumps(base))
    swapped["command"]["arguments"] = ["b", "a"]
    assert not executor_infos_equal(args, swapped)  # argv order matters
