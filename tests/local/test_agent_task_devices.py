"""The local agent's TASK_RUNNING names the GPUs it gave a command task (labels `mesos-gpu/device`: the
UUIDs, `mesos-gpu/device-index`: the indices, as the fake NVML or NVML names them), for a command task and
a task of a DEFAULT executor's group; a custom executor's own updates are passed on as it sent them (it
reports its devices itself). An image a custom executor was given but could not use (no Docker engine)
is said in its tasks' STARTING/RUNNING messages, as for a command task, and in the agent's own terminal
update of a task the executor never reported on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mesos_gpu.core.sharing import LABEL_DEVICE, LABEL_DEVICE_INDEX
from mesos_gpu.local.agent.agent import AgentConfig
from tests.local.agent_helpers import AgentThread, command_task, framework_info
from tests.local.test_agent_executor_api import TEST_EXECUTOR, executor_info, task_on

IMAGE = {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "mesos-gpu/x:1"}}}}
NOT_USED = "Docker image 'mesos-gpu/x:1' was NOT used: no Docker engine is reachable"


def config(gpus: int = 0) -> AgentConfig:
    return AgentConfig(cpus=2, mem=1024, disk=1024, docker="off", gpus=gpus,
                       executor_registration_timeout=30.0)


def labels(status: dict[str, Any]) -> dict[str, str]:
    return {label["key"]: label["value"] for label in status.get("labels", {}).get("labels", ())}


def test_a_command_tasks_running_status_names_its_gpus(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=3)) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("first", "sleep 30", gpus=1))
        a.master.wait_state("first", "TASK_RUNNING")
        a.call(a.agent.launch, framework_info(), task=command_task("t1", "sleep 30", gpus=2))
        running = a.master.wait_state("t1", "TASK_RUNNING")
        devices = a.call(lambda: list(a.agent.gpus.devices))
        assert labels(running) == {
            LABEL_DEVICE: f"{devices[1].uuid},{devices[2].uuid}", LABEL_DEVICE_INDEX: "1,2",
        }
        assert devices[1].uuid.startswith("GPU-") and devices[1].uuid != devices[2].uuid
        (starting,) = [u for u in a.master.updates("t1") if u["state"] == "TASK_STARTING"]
        assert "labels" not in starting   # the devices are said once the task runs


def test_a_task_without_gpus_names_no_device(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=2)) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("t1", "true"))
        a.master.wait_state("t1", "TASK_FINISHED")
        assert all("labels" not in u for u in a.master.updates("t1"))


def test_a_task_groups_task_names_its_gpus(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=2)) as a:
        pod = {**executor_info("pod"), "type": "DEFAULT"}
        del pod["command"]
        group = {"tasks": [command_task("g1", "sleep 30", gpus=1)]}
        a.call(a.agent.launch, framework_info(), executor=pod, task_group=group)
        running = a.master.wait_state("g1", "TASK_RUNNING")
        devices = a.call(lambda: list(a.agent.gpus.devices))
        assert labels(running) == {LABEL_DEVICE: devices[0].uuid, LABEL_DEVICE_INDEX: "0"}


def test_a_custom_executors_updates_are_passed_on_without_device_labels(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=1)) as a:
        ex = executor_info("pyexec", command=f"{sys.executable} {TEST_EXECUTOR}")
        a.call(a.agent.launch, framework_info(), task=task_on(ex, "t1", data="finish", gpus=1))
        a.master.wait_state("t1", "TASK_FINISHED", timeout=20)
        assert all("labels" not in u and "message" not in u for u in a.master.updates("t1"))


def test_an_image_a_custom_executor_could_not_use_is_said_in_its_tasks_status(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        ex = executor_info("pyexec", command=f"{sys.executable} {TEST_EXECUTOR}", container=IMAGE)
        a.call(a.agent.launch, framework_info(), task=task_on(ex, "t1", data="fail"))
        running = a.master.wait_state("t1", "TASK_RUNNING", timeout=20)
        assert running["message"].startswith(NOT_USED)
        failed = a.master.wait_state("t1", "TASK_FAILED", timeout=20)
        assert failed["message"] == "asked"   # the executor's own words for the end, as a command task's


def test_an_executor_that_never_reported_ends_its_tasks_with_the_image_note(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        # enough stderr that the agent's own WARNING line is no longer in its last lines
        noise = "for i in 1 2 3 4 5 6; do echo noise $i >&2; done"
        command = f"{noise}; echo 'python3: not found' >&2; exit 127"
        ex = executor_info("broken", command=command, container=IMAGE)
        a.call(a.agent.launch, framework_info(), task=task_on(ex, "t1"))
        failed = a.master.wait_state("t1", "TASK_FAILED", timeout=20)
        assert failed["message"].startswith(f"Executor terminated; {NOT_USED}")
        assert failed["message"].endswith("last lines of stderr:\nnoise 3\nnoise 4\nnoise 5\nnoise 6\n"
                                          "python3: not found")
