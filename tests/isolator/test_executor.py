"""isolator.executor: its configuration, then the executor's task handling against the
session's real dockerd with a small recording stand-in for the pymesos driver (the real driver runs in
tests/integration/test_docker_jobs.py), and orphan removal by a freshly started executor process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest

from isolator.allocator import ExclusiveGpuAllocator, Holder
from isolator.containers import (
    LABEL_EXECUTOR_ID,
    LABEL_FRAMEWORK_ID,
    LABEL_GPUS,
    LABEL_MANAGED,
    LABEL_TASK_ID,
    SANDBOX_MOUNT,
    GpuMode,
)
from isolator.devices import CgroupPaths, GpuInventory, GpuSource
from isolator.docker import DockerLauncher
from isolator.executor import DockerExecutor
from isolator.executorconfig import DEFAULT_ALLOCATOR_DIR, ExecutorConfig, config_from
from mesos_gpu.core import wire

ENGINE_GPU_ANSWER = 'could not select device driver "" with capabilities: [[gpu]]'
INVENTORY = "2xA100-SXM4-40GB"
UUID0 = "GPU-fa4e0000-0000-4000-8000-000000000000"
UUID1 = "GPU-fa4e0000-0000-4000-8000-000000000001"


def b64(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def test_configuration_from_flags_and_the_mesos_environment():
    env = {
        "MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_SLAVE_ID": "ag",
        "MESOS_SANDBOX": "/mnt/mesos/sandbox", "MESOS_DIRECTORY": "/var/lib/mesos/slaves/x",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "7secs", "MESOS_GPU_DOCKER_HOST": "unix:///env.sock",
        "MESOS_GPU_ALLOCATOR_DIR": "/env/alloc",
    }  # fmt: skip
    config, level = config_from([], env)
    assert (config.framework_id, config.executor_id, config.agent_id) == ("fw", "ex", "ag")
    assert (config.sandbox, config.host_sandbox) == ("/mnt/mesos/sandbox", "/var/lib/mesos/slaves/x")
    assert config.docker_host == "unix:///env.sock" and config.allocator_dir == "/env/alloc"
    assert config.allocator_state == "/env/alloc/gpus.json"
    assert config.shutdown_grace == 7.0 and config.network == "host" and config.gpu_mode == "device-request"
    assert config.gpu_source is GpuSource.AUTO and level == "INFO" and config.output_to_stdio
    flags = ["--docker-host", "unix:///flag.sock", "--allocator-dir", "/flag", "--gpu-source", "allocator",
             "--network", "none", "--gpu-mode", "legacy", "--fake-gpus", INVENTORY]  # fmt: skip
    config, _ = config_from(flags, env)
    assert config.docker_host == "unix:///flag.sock" and config.allocator_dir == "/flag"
    assert config.gpu_source is GpuSource.ALLOCATOR and config.network == "none"
    assert config.gpu_mode == "legacy" and config.fake_gpus == INVENTORY
    bare, _ = config_from([], {})
    assert (
        bare.allocator_dir == DEFAULT_ALLOCATOR_DIR
        and bare.docker_host is None
        and bare.shutdown_grace == 5.0
    )
    assert config.owner("t") == "fw/ex/t"


# ---- the executor against the real engine ------------------------------------------------------


class RecordingDriver:
    """Stands in for pymesos.MesosExecutorDriver: records the status updates, can refuse some."""

    def __init__(self, refuse: int = 0) -> None:
        self.updates: list[dict] = []
        self.refuse = refuse
        self.stopped = threading.Event()
        self.aborted = False
        self._lock = threading.Lock()

    def sendStatusUpdate(self, status: dict) -> None:
        with self._lock:
            if self.refuse > 0:
                self.refuse -= 1
                raise RuntimeError("Not connected yet")
            self.updates.append(status)

    def stop(self) -> None:
        self.stopped.set()

    def states(self, task_id: str) -> list[str]:
        with self._lock:
            return [u["state"] for u in self.updates if u["task_id"]["value"] == task_id]

    def last(self, task_id: str) -> dict:
        with self._lock:
            return [u for u in self.updates if u["task_id"]["value"] == task_id][-1]

    def wait_terminal(self, task_id: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.states(task_id)
            if states and states[-1] in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"):
                return self.last(task_id)
            time.sleep(0.02)
        raise AssertionError(f"task {task_id} did not end: {self.states(task_id)}")

    def wait_state(self, task_id: str, state: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if state in self.states(task_id):
                return
            time.sleep(0.02)
        raise AssertionError(f"task {task_id} never reached {state}: {self.states(task_id)}")


@pytest.fixture
def ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"fw-{tag}", f"ex-{tag}"


def make_executor(tmp_path, ids, launcher: DockerLauncher, env=None, **overrides) -> DockerExecutor:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    fields = {
        "framework_id": ids[0], "executor_id": ids[1], "agent_id": "agent-1",
        "sandbox": str(sandbox), "host_sandbox": str(sandbox), "allocator_dir": str(tmp_path / "alloc"),
        "network": "none", "shutdown_grace": 3.0, "exit_delay": 0.05, "update_retry_seconds": 5.0,
        "cgroup_paths": CgroupPaths(str(tmp_path / "no-proc-cgroup")),
    }  # fmt: skip
    fields.update(overrides)
    config = ExecutorConfig(**fields)
    executor = DockerExecutor(config, env or {}, lambda: launcher, GpuInventory(INVENTORY))
    executor.registered(
        None,
        {"executor_id": {"value": ids[1]}},
        {"id": {"value": ids[0]}, "capabilities": [{"type": "TASK_KILLING_STATE"}]},
        {"hostname": "localhost"},
    )
    return executor


def task_info(
    image: str, command: Any, *, task_id: str | None = None, gpus: int = 0, grace: float | None = None,
    env: dict | None = None,
) -> dict:  # fmt: skip
    info: dict[str, Any] = {
        "task_id": {"value": task_id or f"task-{uuid.uuid4().hex[:8]}"},
        "resources": [scalar("cpus", 0.2), scalar("mem", 32)] + ([scalar("gpus", gpus)] if gpus else []),
        "executor": {
            "command": {
                "environment": {"variables": [{"name": k, "value": v} for k, v in (env or {}).items()]}
            },
            "data": b64({"image": image, "command": command, "uris": []}),
        },
    }
    if grace is not None:
        info["kill_policy"] = {"grace_period": wire.duration_info(grace)}
    return info


@pytest.fixture
def launcher(docker_client) -> DockerLauncher:
    return DockerLauncher(docker_client, gpu_mode=GpuMode.DEVICE_REQUEST)


def containers(docker_client, **labels) -> list:
    """The containers with `labels`; one removed between Docker's list and docker-py's inspect of it is
    left out (the clean-up under test removes them while this polls: CI once saw that 404)."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    return docker_client.containers.list(all=True, filters=filters, ignore_removed=True)


def test_a_task_runs_to_finished_with_its_output_in_the_sandbox(
    tmp_path, ids, launcher, docker_image, docker_client
):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    task = task_info(
        docker_image, 'echo "hi $GREETING"; echo $MESOS_TASK_ID; echo err >&2; pwd', env={"GREETING": "you"}
    )
    task_id = task["task_id"]["value"]
    executor.launchTask(driver, task)
    end = driver.wait_terminal(task_id)
    assert driver.states(task_id) == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert end["message"] == "Command exited with status 0"
    assert end["labels"] == {"labels": [{"key": "exit_code", "value": "0"}]}
    assert (tmp_path / "sandbox" / "stdout").read_text() == f"hi you\n{task_id}\n{SANDBOX_MOUNT}\n"
    assert (tmp_path / "sandbox" / "stderr").read_text() == "err\n"
    assert containers(docker_client, **{LABEL_TASK_ID: task_id}) == []
    assert driver.stopped.wait(5), "the executor did not stop after its last task"


def test_output_reaches_the_sandbox_while_the_container_runs(tmp_path, ids, launcher, docker_image):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    # The container prints, then waits for the test to create "go" in the sandbox (its working dir).
    command = "echo first; echo warn >&2; while [ ! -e go ]; do sleep 0.05; done; echo second"
    task = task_info(docker_image, command)
    task_id = task["task_id"]["value"]
    executor.launchTask(driver, task)
    driver.wait_state(task_id, "TASK_RUNNING")
    sandbox = tmp_path / "sandbox"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        (sandbox / "stdout").exists()
        and (sandbox / "stdout").read_text() == "first\n"
        and (sandbox / "stderr").exists()
        and (sandbox / "stderr").read_text() == "warn\n"
    ):
        time.sleep(0.05)
    assert (sandbox / "stdout").read_text() == "first\n", "the output was not streamed while it ran"
    assert driver.states(task_id) == ["TASK_STARTING", "TASK_RUNNING"]
    (sandbox / "go").touch()
    assert driver.wait_terminal(task_id)["state"] == "TASK_FINISHED"
    assert (sandbox / "stdout").read_text() == "first\nsecond\n"  # each line once
    assert (sandbox / "stderr").read_text() == "warn\n"


def test_a_nonzero_exit_fails_with_mesos_text(tmp_path, ids, launcher, docker_image):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver(refuse=2)  # the agent is briefly unreachable: updates are retried
    task = task_info(docker_image, "exit 3")
    executor.launchTask(driver, task)
    end = driver.wait_terminal(task["task_id"]["value"])
    assert end["state"] == "TASK_FAILED"
    assert end["message"] == "Command exited with status 3"
    assert end["reason"] == "REASON_COMMAND_EXECUTOR_FAILED"
    assert end["labels"] == {"labels": [{"key": "exit_code", "value": "3"}]}
    # STARTING was refused twice, retried, and delivered once, in order.
    assert driver.states(task["task_id"]["value"]) == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert driver.refuse == 0


def test_kill_stops_the_container_within_the_grace_and_sends_killed(
    tmp_path, ids, launcher, docker_image, docker_client
):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    # sh as PID 1 ignores SIGTERM: the stop takes the whole grace, then SIGKILL.
    task = task_info(docker_image, "echo started; sleep 60", grace=1.0)
    task_id = task["task_id"]["value"]
    executor.launchTask(driver, task)
    driver.wait_state(task_id, "TASK_RUNNING")
    (container,) = containers(docker_client, **{LABEL_TASK_ID: task_id})
    labels = container.labels
    assert (labels[LABEL_FRAMEWORK_ID], labels[LABEL_EXECUTOR_ID], labels["mesos-gpu.agent-id"]) == (
        *ids,
        "agent-1",
    )
    started = time.monotonic()
    executor.killTask(driver, {"value": task_id})
    end = driver.wait_terminal(task_id)
    took = time.monotonic() - started
    assert driver.states(task_id) == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
    assert end["message"] == "Container stopped (exit status 137)"
    assert 0.9 < took < 10, took
    assert (tmp_path / "sandbox" / "stdout").read_text() == "started\n"
    assert containers(docker_client, **{LABEL_TASK_ID: task_id}) == []
    executor.killTask(driver, {"value": task_id})  # a second kill of an ended task is ignored
    executor.killTask(driver, {"value": "never-launched"})
    time.sleep(0.1)
    assert driver.states(task_id)[-1] == "TASK_KILLED" and driver.states("never-launched") == []


class GatedLauncher(DockerLauncher):
    """The real launcher, held at the door of `run` until the test opens the gate."""

    def __init__(self, client) -> None:
        super().__init__(client, gpu_mode=GpuMode.DEVICE_REQUEST)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def run(self, spec):
        self.entered.set()
        assert self.gate.wait(10)
        return super().run(spec)


def test_a_kill_while_the_container_starts_stops_it_without_running(
    tmp_path, ids, docker_client, docker_image
):
    launcher = GatedLauncher(docker_client)
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    task = task_info(docker_image, "sleep 60", grace=0.0)
    task_id = task["task_id"]["value"]
    executor.launchTask(driver, task)
    assert launcher.entered.wait(10)
    executor.killTask(driver, {"value": task_id})
    driver.wait_state(task_id, "TASK_KILLING")
    launcher.gate.set()
    end = driver.wait_terminal(task_id)
    assert driver.states(task_id) == ["TASK_STARTING", "TASK_KILLING", "TASK_KILLED"]
    assert end["message"] == "Container stopped (exit status 137)"
    assert containers(docker_client, **{LABEL_TASK_ID: task_id}) == []


def test_shutdown_kills_every_task(tmp_path, ids, launcher, docker_image, docker_client):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    tasks = [task_info(docker_image, "sleep 60", grace=5.0) for _ in range(2)]
    for task in tasks:
        executor.launchTask(driver, task)
    for task in tasks:
        driver.wait_state(task["task_id"]["value"], "TASK_RUNNING")
    started = time.monotonic()
    executor.shutdown(driver)  # shutdown grace 3 s: each stop gets at most 2 s, not the tasks' 5
    assert time.monotonic() - started < 4.5
    for task in tasks:
        assert driver.states(task["task_id"]["value"])[-1] == "TASK_KILLED"
    assert containers(docker_client, **{LABEL_EXECUTOR_ID: ids[1]}) == []
    assert not driver.stopped.is_set()  # pymesos itself aborts after shutdown()


def test_a_payload_error_fails_the_launch(tmp_path, ids, launcher):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    task = {"task_id": {"value": "t-bad"}, "data": b64({"command": "true"})}
    executor.launchTask(driver, task)
    end = driver.wait_terminal("t-bad")
    assert end["state"] == "TASK_FAILED"
    assert end["message"] == "Failed to launch container: the payload names no image"
    assert end["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"


def test_a_missing_image_fails_the_launch(tmp_path, ids, launcher):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    task = task_info("mesos-gpu-test/absent:0", "true")
    executor.launchTask(driver, task)
    end = driver.wait_terminal(task["task_id"]["value"])
    assert end["state"] == "TASK_FAILED" and end["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert end["message"].startswith(
        "Failed to launch container: image 'mesos-gpu-test/absent:0' is not present"
    )


def test_callbacks_never_raise(tmp_path, ids, launcher):
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    executor.launchTask(driver, None)
    executor.launchTask(driver, {"task_id": "not-an-id"})
    executor.launchTaskGroup(driver, [None])
    executor.killTask(driver, None)
    executor.registered(driver, None, None, None)
    executor.reregistered(driver, None)
    executor.disconnected(driver)
    executor.frameworkMessage(driver, None)
    executor.error(driver, "boom")
    executor.shutdown(None)
    time.sleep(0.1)
    assert driver.updates == []


def create_requests(recorder) -> list[dict]:
    return [r.json() for r in recorder.creates()]


def gpu_requests(recorder) -> list[Any]:
    return [body["HostConfig"].get("DeviceRequests") for body in create_requests(recorder)]


def device_request(*ids: str) -> list[dict]:
    return [{"Driver": "", "Count": 0, "DeviceIDs": list(ids), "Capabilities": [["gpu"]], "Options": {}}]


def test_gpus_from_the_agent_environment_reach_the_engine_exactly(
    tmp_path, ids, docker_recorder, docker_image
):
    launcher = DockerLauncher(docker_recorder.client(), gpu_mode=GpuMode.DEVICE_REQUEST)
    executor = make_executor(
        tmp_path, ids, launcher, env={"NVIDIA_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "1"}
    )
    driver = RecordingDriver()
    task = task_info(docker_image, "true", gpus=1)
    executor.launchTask(driver, task)
    end = driver.wait_terminal(task["task_id"]["value"])
    assert gpu_requests(docker_recorder) == [device_request("1")]
    assert end["state"] == "TASK_FAILED" and end["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert end["message"] == (
        f"Failed to launch container: the engine refused the GPU request ({ENGINE_GPU_ANSWER}): install the "
        "NVIDIA Container Toolkit and restart dockerd, or use the legacy GPU mode"
    )
    body = create_requests(docker_recorder)[0]
    assert "NVIDIA_VISIBLE_DEVICES=1" in body["Env"]
    assert not any(e.startswith("CUDA_VISIBLE_DEVICES=") for e in body["Env"])  # host indices stay outside


def test_two_tasks_of_one_executor_never_share_a_probed_gpu(tmp_path, ids, docker_recorder, docker_image):
    launcher = GatedLauncher(docker_recorder.client())  # both tasks have chosen before either starts
    executor = make_executor(tmp_path, ids, launcher, env={"NVIDIA_VISIBLE_DEVICES": "0,1"})
    driver = RecordingDriver()
    tasks = [task_info(docker_image, "true", gpus=1) for _ in range(3)]
    for task in tasks:
        executor.launchTask(driver, task)
    task_ids = [task["task_id"]["value"] for task in tasks]

    def starved() -> list[str]:  # whichever chose last finds nothing left while the others wait at the gate
        return [t for t in task_ids if driver.states(t)[-1:] == ["TASK_FAILED"]]

    deadline = time.monotonic() + 10
    while not starved() and time.monotonic() < deadline:
        time.sleep(0.02)
    (loser,) = starved()
    assert driver.last(loser)["message"] == (
        "Failed to launch container: the task needs 1 gpus but NVIDIA_VISIBLE_DEVICES=0,1 gives this "
        "container 0 free (none)"
    )
    launcher.gate.set()
    for task_id in task_ids:
        assert driver.wait_terminal(task_id)["state"] == "TASK_FAILED"
    assert sorted(map(str, gpu_requests(docker_recorder))) == [
        str(device_request("0")),
        str(device_request("1")),
    ]


def test_gpus_from_the_devices_cgroup_become_uuids(tmp_path, ids, docker_recorder, docker_image):
    cgroup = tmp_path / "cg"
    (cgroup / "devices" / "mesos" / "c1").mkdir(parents=True)
    (cgroup / "devices" / "mesos" / "c1" / "devices.list").write_text(
        "c 1:3 rwm\nc 195:255 rwm\nc 195:1 rwm\n"
    )
    (tmp_path / "proc-cgroup").write_text("5:devices:/mesos/c1\n0::/\n")
    paths = CgroupPaths(str(tmp_path / "proc-cgroup"), str(tmp_path / "no-mountinfo"), str(cgroup))
    launcher = DockerLauncher(docker_recorder.client(), gpu_mode=GpuMode.DEVICE_REQUEST)
    executor = make_executor(tmp_path, ids, launcher, env={"CUDA_VISIBLE_DEVICES": "0"}, cgroup_paths=paths)
    driver = RecordingDriver()
    task = task_info(docker_image, "true", gpus=1)
    executor.launchTask(driver, task)
    assert driver.wait_terminal(task["task_id"]["value"])["state"] == "TASK_FAILED"
    assert gpu_requests(docker_recorder) == [device_request(UUID1)]


def test_allocator_gpus_are_released_when_the_engine_refuses(tmp_path, ids, docker_recorder, docker_image):
    launcher = DockerLauncher(docker_recorder.client(), gpu_mode=GpuMode.DEVICE_REQUEST)
    executor = make_executor(tmp_path, ids, launcher)  # no cgroup, no env: the host allocator decides
    driver = RecordingDriver()
    tasks = [task_info(docker_image, "true", gpus=2), task_info(docker_image, "true", gpus=1)]
    for task in tasks:
        executor.launchTask(driver, task)
        assert driver.wait_terminal(task["task_id"]["value"])["state"] == "TASK_FAILED"
    assert gpu_requests(docker_recorder) == [device_request(UUID0, UUID1), device_request(UUID0)]
    allocator = ExclusiveGpuAllocator(str(tmp_path / "alloc" / "gpus.json"))
    assert allocator.allocations() == {}
    assert allocator.snapshot().devices == [UUID0, UUID1]


def test_allocator_exhaustion_fails_the_launch_with_mesos_text(tmp_path, ids, launcher, docker_image):
    allocator = ExclusiveGpuAllocator(str(tmp_path / "alloc" / "gpus.json"), [UUID0, UUID1])
    allocator.allocate(2, "someone-else")  # held by this (live) test process
    executor = make_executor(tmp_path, ids, launcher)
    driver = RecordingDriver()
    task = task_info(docker_image, "true", gpus=1)
    executor.launchTask(driver, task)
    end = driver.wait_terminal(task["task_id"]["value"])
    assert end["message"] == "Failed to launch container: Requested 1 gpus but only 0 available"
    assert allocator.allocations() == {"someone-else": [UUID0, UUID1]}


def orphan(docker_client, image: str, framework_id: str, executor_id: str, *, task_id: str, gpus: str) -> Any:
    """A running container as an earlier (crashed) run of the executor would have left it."""
    labels = {LABEL_MANAGED: "true", LABEL_FRAMEWORK_ID: framework_id, LABEL_EXECUTOR_ID: executor_id,
              LABEL_TASK_ID: task_id, LABEL_GPUS: gpus}  # fmt: skip
    return docker_client.containers.run(
        image, ["sleep", "60"], labels=labels, detach=True, network_mode="none"
    )


def test_a_restarted_executor_removes_its_orphans_and_frees_their_gpus(
    tmp_path, ids, launcher, docker_image, docker_client
):
    framework_id, executor_id = ids
    mine = orphan(docker_client, docker_image, framework_id, executor_id, task_id="t1", gpus=UUID1)
    other = orphan(docker_client, docker_image, framework_id, "other-executor", task_id="t2", gpus=UUID0)
    allocator = ExclusiveGpuAllocator(str(tmp_path / "alloc" / "gpus.json"), [UUID0, UUID1])
    dead = Holder(pid=2**22 + 1, pid_start=1)  # the crashed executor's process is gone
    allocator.claim([UUID1], f"{framework_id}/{executor_id}/t1", dead)
    allocator.attach(f"{framework_id}/{executor_id}/t1", mine.id)
    allocator.claim([UUID0], f"{framework_id}/other-executor/t2", dead)
    allocator.attach(f"{framework_id}/other-executor/t2", other.id)
    try:
        executor = make_executor(tmp_path, ids, launcher)
        assert executor.remove_orphans() == [mine.id]
        assert containers(docker_client, **{LABEL_EXECUTOR_ID: executor_id}) == []
        # The other executor's container still runs and keeps its GPU through reconcile().
        assert allocator.allocations() == {f"{framework_id}/other-executor/t2": [UUID0]}
    finally:
        other.remove(force=True)


def test_a_freshly_started_executor_process_cleans_up_before_subscribing(
    tmp_path, ids, docker_daemon, docker_image, docker_client
):
    framework_id, executor_id = ids
    left = orphan(docker_client, docker_image, framework_id, executor_id, task_id="t1", gpus="0")
    env = dict(os.environ)
    env.update({
        "MESOS_FRAMEWORK_ID": framework_id, "MESOS_EXECUTOR_ID": executor_id,
        "MESOS_AGENT_ENDPOINT": "127.0.0.1:9",  # nothing answers: the driver keeps retrying
        "MESOS_SANDBOX": str(tmp_path), "MESOS_CHECKPOINT": "1",
    })  # fmt: skip
    command = [sys.executable, "-m", "isolator.executor", "--docker-host", docker_daemon.base_url,
               "--allocator-dir", str(tmp_path / "alloc")]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while containers(docker_client, **{LABEL_EXECUTOR_ID: executor_id}) and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.1)
        assert containers(docker_client, **{LABEL_EXECUTOR_ID: executor_id}) == []
    finally:
        process.kill()
        _, stderr = process.communicate(timeout=10)
    assert f"removing orphan container {left.id[:12]}" in stderr


def test_the_executor_refuses_to_run_outside_mesos():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
    result = subprocess.run(
        [sys.executable, "-m", "isolator.executor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "MESOS_FRAMEWORK_ID and MESOS_EXECUTOR_ID must be set" in result.stderr
