"""Image tasks on the local agent through a REAL Docker Engine (checklist 39): the private dockerd and the
busybox image come from tests/fixtures/docker.py; they fail (never skip) when no engine can be had."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesos_gpu.local.agent.agent import AgentConfig
from tests.local.agent_helpers import FRAMEWORK_ID, AgentThread, command_task, framework_info

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]


def image_task(task_id: str, image: str, value: str, gpus: int = 0, mesos_form: bool = True) -> dict:
    task = command_task(task_id, value, gpus=gpus)
    if mesos_form:
        task["container"] = {
            "type": "MESOS",
            "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}},
        }
    else:
        task["container"] = {"type": "DOCKER", "docker": {"image": image}}
    return task


def sandbox_of(status: dict, tmp_path: Path) -> Path:
    task_id = status["task_id"]["value"]
    container = status["container_status"]["container_id"]["value"]
    return tmp_path / "agents/S0/frameworks" / FRAMEWORK_ID / "executors" / task_id / "runs" / container


def test_item39_image_task_runs_in_the_engine(tmp_path: Path, docker_daemon, docker_image) -> None:
    config = AgentConfig(cpus=2, mem=1024, disk=1024, docker="auto", docker_host=docker_daemon.base_url)
    with AgentThread(tmp_path, config) as a:
        script = 'echo "in=$(pwd) sandbox=$MESOS_SANDBOX x=$X"; echo "pid1=$(tr "\\0" " " < /proc/1/cmdline)"'
        task = image_task("img", docker_image, script, mesos_form=True)
        task["command"]["environment"] = {"variables": [{"name": "X", "value": "1"}]}
        a.call(a.agent.launch, framework_info(), task=task)
        running = a.master.wait_state("img", "TASK_RUNNING", timeout=60)
        assert "NOT used" not in running.get("message", "")
        final = a.master.wait_state("img", "TASK_FINISHED", timeout=60)
        stdout = (sandbox_of(final, tmp_path) / "stdout").read_text()
        assert "in=/mnt/mesos/sandbox sandbox=/mnt/mesos/sandbox x=1" in stdout
        assert "pid1=/bin/sh -c echo" in stdout  # its own PID namespace: the task is PID 1

        a.call(
            a.agent.launch,
            framework_info(),
            task=image_task("img-fail", docker_image, "exit 3", mesos_form=False),
        )
        failed = a.master.wait_state("img-fail", "TASK_FAILED", timeout=60)
        assert failed["message"] == "Command exited with status 3"
        assert "DOCKER container" not in a.master.wait_state("img-fail", "TASK_STARTING").get("message", "")


def test_item39_image_task_kill_stops_the_container(
    tmp_path: Path,
    docker_daemon,
    docker_image,
    docker_client,
) -> None:
    config = AgentConfig(
        cpus=2,
        mem=1024,
        disk=1024,
        docker="auto",
        docker_host=docker_daemon.base_url,
        command_kill_grace_period=1.0,
    )
    with AgentThread(tmp_path, config) as a:
        a.call(a.agent.launch, framework_info(), task=image_task("long", docker_image, "sleep 60"))
        a.master.wait_state("long", "TASK_RUNNING", timeout=60)
        a.call(a.agent.kill_task, FRAMEWORK_ID, "long", None)
        a.master.wait_state("long", "TASK_KILLED", timeout=30)
        a.master.wait_for(
            lambda: not docker_client.containers.list(all=True, filters={"label": "mesos-gpu.task-id=long"}),
            timeout=30,
            what="container removed",
        )


def test_item39_gpu_image_task_sends_device_request_for_exactly_its_gpus(
    tmp_path: Path,
    docker_image,
    docker_recorder,
    docker_client,
) -> None:
    gpu_engine = "nvidia" in (docker_client.info().get("Runtimes") or {})
    config = AgentConfig(
        cpus=2, mem=1024, disk=1024, gpus=3, docker="auto", docker_host=f"unix://{docker_recorder.socket}"
    )
    with AgentThread(tmp_path, config) as a:
        fw = framework_info(capabilities=("GPU_RESOURCES",))
        a.call(a.agent.launch, fw, task=command_task("hold", "sleep 30", gpus=1))  # takes index 0 (host)
        a.master.wait_state("hold", "TASK_RUNNING")
        a.call(a.agent.launch, fw, task=image_task("gpu-img", docker_image, "true", gpus=2))
        if gpu_engine:  # a host with the NVIDIA Container Toolkit runs it
            a.master.wait_state("gpu-img", "TASK_FINISHED", timeout=60)
            return
        status = a.master.wait_state("gpu-img", "TASK_FAILED", timeout=60)
        [create] = docker_recorder.creates()
        requests = create.json()["HostConfig"]["DeviceRequests"]
        assert requests == [
            {"Driver": "", "Count": 0, "DeviceIDs": ["1", "2"], "Capabilities": [["gpu"]], "Options": {}}
        ]
        # no GPU on this host: the engine refuses the device request, the task fails to launch
        assert status["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert status["message"].startswith("Failed to launch container: ")
        a.master.wait_for(lambda: a.call(lambda: a.agent.gpus.available) == 2, what="GPUs released")
