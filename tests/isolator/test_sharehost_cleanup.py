"""The share host's review fixes: no process of a share outlives it (setsid children, `nohup x &`), each
task's environment built from a clean base, the enforcement sentence in TASK_RUNNING, and the linger
clock started only once a first task has ended."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import pytest

from isolator.fakenvml import PROCESSES_ENV
from isolator.shares import HostSettings
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import LABEL_ENFORCEMENT
from tests.isolator.test_executor import RecordingDriver
from tests.isolator.test_sharerunner import StubLauncher, launch, make_host, opened, stdout_of
from tests.waiting import wait_until


@pytest.fixture
def driver():
    return RecordingDriver()


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for init to reap it counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def read_pid(path) -> int:
    def text() -> str:
        return path.read_text().strip() if path.exists() else ""

    return int(wait_until(text, 5, f"{path}"))


def test_a_setsid_child_over_the_cap_dies_with_its_task(tmp_path, driver):
    processes = tmp_path / "gpu-processes"
    processes.mkdir()
    spec = f"1xSimulated-GPU@16384M;processes={processes}"
    host = opened(make_host(tmp_path, spec, Isolation.CAPPED), driver, Isolation.CAPPED)
    child = tmp_path / "child.pid"
    declare = f'echo "$CUDA_VISIBLE_DEVICES 9000" > {processes}/$$; echo $$ > {child}; exec sleep 47'
    try:
        launch(host, driver, "t", f"setsid sh -c '{declare}' & sleep 30")
        pid = read_pid(child)
        ending = driver.wait_terminal("t")
        assert ending["message"] == "GPU memory 9000 MiB used, 4096 MiB allowed (capped share)"
        wait_until(lambda: gone(pid), 3, "the setsid child to be killed with its task")
    finally:
        host.close()


def test_a_nohup_background_process_dies_when_its_task_finishes(tmp_path, driver):
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.SHARED), driver, Isolation.SHARED)
    child = tmp_path / "child.pid"
    try:
        launch(host, driver, "t", f"nohup sleep 47 >/dev/null 2>&1 & echo $! > {child}; echo bye",
               isolation="shared")  # fmt: skip
        assert driver.wait_terminal("t")["state"] == "TASK_FINISHED"
        pid = read_pid(child)
        wait_until(lambda: gone(pid), 3, "the nohup'd sleep to be killed at the task's end")
    finally:
        host.close()


def test_a_daemon_that_left_its_session_dies_when_the_task_is_killed(tmp_path, driver):
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.SHARED), driver, Isolation.SHARED)
    child = tmp_path / "child.pid"
    try:  # the daemon double-forks into its own session, the root lives on until killed
        launch(host, driver, "t", f"(setsid sh -c 'echo $$ > {child}; exec sleep 47' &) ; sleep 30",
               isolation="shared")  # fmt: skip
        driver.wait_state("t", "TASK_RUNNING")
        pid = read_pid(child)
        host.kill(driver, "t", killing=False)
        assert driver.wait_terminal("t")["state"] == "TASK_KILLED"
        wait_until(lambda: gone(pid), 3, "the daemon to be killed with its task")
    finally:
        host.close()


EXECUTOR_ONLY = {
    "MESOS_EXECUTOR_ID": "sharehost.x", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
    "MESOS_SLAVE_PID": "slave(1)@127.0.0.1:5051", "MESOS_FRAMEWORK_ID": "fw", "MESOS_DIRECTORY": "/sandbox",
    "MESOS_EXECUTOR_AUTHENTICATION_TOKEN": "secret", "MESOS_CHECKPOINT": "1",
    "MESOS_GPU_FAKE_GPUS": "1xSimulated-GPU@16384M", "LIBPROCESS_PORT": "0",
}  # fmt: skip


def env_of(host, driver, task_id: str) -> dict[str, str]:
    launch(host, driver, task_id, "env", isolation="shared")
    assert driver.wait_terminal(task_id)["state"] == "TASK_FINISHED"
    return dict(line.split("=", 1) for line in stdout_of(host, task_id).splitlines() if "=" in line)


@pytest.mark.parametrize("fake", [True, False])
def test_a_share_task_does_not_inherit_the_executors_environment(tmp_path, driver, fake):
    host = make_host(tmp_path, "1xSimulated-GPU@16384M" if fake else None, Isolation.SHARED)
    host.env.update(EXECUTOR_ONLY, HOME="/home/u", LANG="C.UTF-8", **{PROCESSES_ENV: "/var/fake"})
    opened(host, driver, Isolation.SHARED)
    try:
        env = env_of(host, driver, "t")
        assert not set(EXECUTOR_ONLY) & set(env)
        assert env["MESOS_SANDBOX"] == os.path.join(host.config.sandbox, "tasks", "t")
        assert env["MESOS_TASK_ID"] == "t"
        assert (env["HOME"], env["LANG"], env["PATH"]) == ("/home/u", "C.UTF-8", os.environ["PATH"])
        assert env.get(PROCESSES_ENV) == ("/var/fake" if fake else None)
    finally:
        host.close()


def running_labels(driver, task_id: str) -> dict[str, str]:
    running = next(u for u in driver.updates if u["state"] == "TASK_RUNNING"
                   and u["task_id"]["value"] == task_id)  # fmt: skip
    labels = {x["key"]: x["value"] for x in running["labels"]["labels"]}
    data = json.loads(base64.b64decode(running["data"]))
    assert data["enforcement"] == labels[LABEL_ENFORCEMENT]
    return labels


def test_running_says_what_is_enforced_for_the_task(tmp_path, driver):
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.CAPPED), driver, Isolation.CAPPED)
    try:
        launch(host, driver, "t", "true")
        driver.wait_terminal("t")
        assert running_labels(driver, "t")[LABEL_ENFORCEMENT] == (
            "simulated (fake NVML): nothing is enforced on a real GPU"
        )
    finally:
        host.close()


def test_the_linger_clock_starts_when_a_first_task_has_ended(tmp_path, driver):
    idle = threading.Event()
    host = make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.SHARED, on_idle=lambda d: idle.set())
    host.open(HostSettings("sharehost.x", Isolation.SHARED, 0.0, 16384), driver)
    try:
        time.sleep(0.5)  # a linger of 0 s must not end the host before its first task arrives
        assert not idle.is_set()
        launch(host, driver, "t", "true", isolation="shared")
        driver.wait_terminal("t")
        wait_until(idle.is_set, 3, "the host to ask to stop after its first task")
    finally:
        host.close()


def test_an_image_share_gets_nothing_of_the_executors_environment(tmp_path, driver):
    stub = StubLauncher()
    host = make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.CAPPED, launcher_factory=lambda: stub)
    host.env.update(EXECUTOR_ONLY)
    opened(host, driver, Isolation.CAPPED)
    grant = {"host": "sharehost.x", "isolation": "capped", "gpus": 0.5, "gpu_memory": 8192}
    payload = {"command": None, "image": "trainer:1", "uris": [], "env": {}, "share": grant}
    host.start(driver, {"task_id": {"value": "img"}, "data": base64.b64encode(json.dumps(payload).encode())})
    try:
        assert driver.wait_terminal("img")["state"] == "TASK_FINISHED"
        [spec] = stub.specs
        allowed = {"MESOS_TASK_ID", "MESOS_SANDBOX", "MESOS_GPU_ISOLATION", "MESOS_GPU_SHARE",
                   "MESOS_GPU_MEMORY_LIMIT_MB"}  # fmt: skip
        assert not {name for name in spec.env if name.startswith("MESOS_")} - allowed
        assert spec.env["MESOS_TASK_ID"] == "img"
    finally:
        host.close()
