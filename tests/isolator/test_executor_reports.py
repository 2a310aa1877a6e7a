"""What the docker executor says of a task beyond Mesos' words: the GPUs its container got (TASK_RUNNING
labels `mesos-gpu/device`: UUIDs, `mesos-gpu/device-index`: NVML indices, so the scheduler can show
which device an exclusive task has), and the last lines of the container's stderr when it fails, as the
command executor does ("Command exited with status 127; last lines of stderr: ... not found"). A
stand-in launcher plays the engine (a GPU container cannot start on an engine without the NVIDIA
toolkit); the real engine's stderr is checked in the last test."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from isolator.containers import ContainerSpec, DockerUnavailableError
from isolator.devices import CgroupPaths, GpuInventory
from isolator.docker import DockerLauncher, GpuMode
from isolator.executor import DockerExecutor
from isolator.executorconfig import ExecutorConfig
from mesos_gpu.core.sharing import LABEL_DEVICE, LABEL_DEVICE_INDEX
from tests.isolator.test_executor import INVENTORY, UUID0, UUID1, RecordingDriver, task_info


class StandInLauncher:
    """The engine as the task runner uses it: the container exits with `code` after writing `stderr`."""

    def __init__(self, code: int = 0, stderr: bytes = b"", refuse: Exception | None = None) -> None:
        self.code, self.stderr, self.refuse = code, stderr, refuse
        self.specs: list[ContainerSpec] = []

    def run(self, spec: ContainerSpec) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.specs.append(spec)
        return uuid.uuid4().hex

    def follow_logs(self, container_id: str, write: Any) -> Any:
        raise RuntimeError("not followed: copied at the end")

    def logs(self, container_id: str) -> tuple[bytes, bytes]:
        return b"", self.stderr

    def wait(self, container_id: str, timeout: float | None = None) -> int:
        return self.code

    def stop(self, container_id: str, grace: float = 10.0) -> None:
        pass

    def remove(self, container_id: str) -> None:
        pass

    def list_by_label(self, labels: Any = None) -> list[Any]:
        return []


class NoInventory(GpuInventory):
    """A host where NVML cannot be used."""

    def host(self) -> None:
        self.error = "no NVML inventory: NVML Shared Library Not Found"


def executor(tmp_path: Path, launcher: Any, env: dict[str, str] | None = None,
             inventory: GpuInventory | None = None) -> DockerExecutor:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    config = ExecutorConfig(
        framework_id="fw", executor_id="ex", agent_id="agent-1", sandbox=str(sandbox),
        host_sandbox=str(sandbox), allocator_dir=str(tmp_path / "alloc"), network="none", shutdown_grace=3.0,
        exit_delay=0.05, update_retry_seconds=5.0, cgroup_paths=CgroupPaths(str(tmp_path / "no-proc-cgroup")),
    )  # fmt: skip
    made = DockerExecutor(config, env or {}, lambda: launcher, inventory or GpuInventory(INVENTORY))
    made.registered(None, {"executor_id": {"value": "ex"}}, {"id": {"value": "fw"}}, {"hostname": "h"})
    return made


def labels(status: dict[str, Any]) -> dict[str, str]:
    return {label["key"]: label["value"] for label in status.get("labels", {}).get("labels", ())}


def run_task(tmp_path: Path, launcher: Any, gpus: int = 0, env: dict[str, str] | None = None,
             inventory: GpuInventory | None = None) -> tuple[RecordingDriver, str]:
    driver = RecordingDriver()
    task = task_info("img:1", "train", gpus=gpus)
    task_id = task["task_id"]["value"]
    executor(tmp_path, launcher, env, inventory).launchTask(driver, task)
    driver.wait_terminal(task_id)
    return driver, task_id


def running(driver: RecordingDriver, task_id: str) -> dict[str, Any]:
    (status,) = [u for u in driver.updates
                 if u["task_id"]["value"] == task_id and u["state"] == "TASK_RUNNING"]
    return status


@pytest.mark.parametrize(
    ("visible", "reported"),
    [
        ("1", {LABEL_DEVICE: UUID1, LABEL_DEVICE_INDEX: "1"}),            # the local agent: host indices
        (f"{UUID1},{UUID0}", {LABEL_DEVICE: f"{UUID1},{UUID0}", LABEL_DEVICE_INDEX: "1,0"}),   # UUIDs
    ],
)
def test_running_names_the_containers_gpus(tmp_path: Path, visible: str, reported: dict[str, str]) -> None:
    launcher = StandInLauncher()
    count = len(visible.split(","))
    driver, task_id = run_task(tmp_path, launcher, gpus=count, env={"NVIDIA_VISIBLE_DEVICES": visible})
    assert labels(running(driver, task_id)) == reported
    assert launcher.specs[0].gpus == tuple(visible.split(","))


def test_without_an_inventory_only_the_indices_are_said(tmp_path: Path) -> None:
    launcher = StandInLauncher()
    driver, task_id = run_task(tmp_path, launcher, gpus=1, env={"NVIDIA_VISIBLE_DEVICES": "1"},
                               inventory=NoInventory())
    assert labels(running(driver, task_id)) == {LABEL_DEVICE_INDEX: "1"}


def test_a_task_without_gpus_names_no_device(tmp_path: Path) -> None:
    driver, task_id = run_task(tmp_path, StandInLauncher())
    assert labels(running(driver, task_id)) == {}


def test_a_failed_containers_stderr_tail_is_in_the_message(tmp_path: Path) -> None:
    stderr = b"".join(b"line %d\n" % i for i in range(8)) + b"\n/bin/sh: 1: python3: not found\n"
    driver, task_id = run_task(tmp_path, StandInLauncher(code=127, stderr=stderr))
    end = driver.last(task_id)
    assert end["state"] == "TASK_FAILED" and end["reason"] == "REASON_COMMAND_EXECUTOR_FAILED"
    assert end["message"] == (
        "Command exited with status 127; last lines of stderr:\n"
        "line 4\nline 5\nline 6\nline 7\n/bin/sh: 1: python3: not found"
    )
    assert labels(end) == {"exit_code": "127"}


def test_a_finished_container_says_no_stderr(tmp_path: Path) -> None:
    driver, task_id = run_task(tmp_path, StandInLauncher(code=0, stderr=b"warning: slow\n"))
    assert driver.last(task_id)["message"] == "Command exited with status 0"


def test_an_unreachable_engine_is_said_in_the_failure(tmp_path: Path) -> None:
    refused = DockerUnavailableError("no Docker engine: /var/run/docker.sock does not exist")
    driver, task_id = run_task(tmp_path, StandInLauncher(refuse=refused))
    end = driver.last(task_id)
    assert end["state"] == "TASK_FAILED" and end["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert end["message"] == f"Failed to launch container: {refused}"


def test_the_real_engines_stderr_reaches_the_failure(tmp_path: Path, docker_client: Any, docker_image: str
                                                     ) -> None:
    launcher = DockerLauncher(docker_client, gpu_mode=GpuMode.DEVICE_REQUEST)
    driver = RecordingDriver()
    task = task_info(docker_image, "echo starting; echo 'train.py: no such file' >&2; exit 2")
    executor(tmp_path, launcher).launchTask(driver, task)
    end = driver.wait_terminal(task["task_id"]["value"])
    assert end["message"] == "Command exited with status 2; last lines of stderr:\ntrain.py: no such file"
