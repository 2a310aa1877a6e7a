"""The share host's task handling (isolator.sharerunner.ShareHost) with a recording stand-in for the
pymesos driver (the real driver runs in test_sharehost.py): each level's environment reaching the
task, mps refused without MPS, mig on its instance, fetch, exit codes, kills with the task's grace,
a capped share without NVML refused, and the linger."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import threading
import time

import pytest

from isolator.containers import GpuAccess, create_arguments
from isolator.devices import CgroupPaths
from isolator.executorconfig import ExecutorConfig
from isolator.fakenvml import fake_mig_uuid, parse_fake_spec
from isolator.mps import MpsDaemon, MpsError
from isolator.sharerunner import MPS_PIPE_MOUNT, ShareHost
from isolator.shares import HostSettings
from mesos_gpu.core.model import Isolation
from tests.isolator.test_executor import RecordingDriver
from tests.waiting import wait_until

UUID0 = "GPU-fa4e0000-0000-4000-8000-000000000000"


def b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def make_host(tmp_path, spec: str | None, isolation: Isolation, linger: float = 30.0, **kw) -> ShareHost:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    config = ExecutorConfig(
        framework_id="fw", executor_id="sharehost.x", sandbox=str(sandbox), host_sandbox=str(sandbox),
        allocator_dir=str(tmp_path / "alloc"), fake_gpus=spec, shutdown_grace=2.0, update_retry_seconds=2.0,
        cgroup_paths=CgroupPaths(str(tmp_path / "no-proc-cgroup")),
    )  # fmt: skip
    env = {"PATH": os.environ["PATH"], "CUDA_VISIBLE_DEVICES": "0", "NVIDIA_VISIBLE_DEVICES": "0"}
    host = ShareHost(config, env, parse_fake_spec(spec) if spec else None, **kw)
    return host


def launch(host: ShareHost, driver, task_id: str, command: str, isolation: str = "capped", **share) -> None:
    grant = {"host": "sharehost.x", "isolation": isolation, "gpus": 0.5, "gpu_memory": 4096, **share}
    payload = {"command": command, "image": None, "uris": share.pop("uris", []), "env": {},
               "share": grant, "resources": {"cpus": 0.1, "mem": 32}, "kill_grace_seconds": 0.3}  # fmt: skip
    payload["uris"] = grant.pop("uris", [])
    host.start(driver, {"task_id": {"value": task_id}, "data": b64(payload)})


@pytest.fixture
def driver():
    return RecordingDriver()


def opened(host: ShareHost, driver, isolation: Isolation, linger: float = 30.0) -> ShareHost:
    host.open(HostSettings("sharehost.x", isolation, linger, 16384), driver)
    return host


def stdout_of(host: ShareHost, task_id: str) -> str:
    with open(os.path.join(host.config.sandbox, "tasks", task_id, "stdout")) as handle:
        return handle.read()


def test_mps_share_runs_with_the_daemon_of_its_gpu(tmp_path, driver):
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M;mps", Isolation.MPS), driver, Isolation.MPS)
    try:
        launch(host, driver, "t", "env | grep -E '^CUDA_' | sort", isolation="mps")
        assert driver.wait_terminal("t")["state"] == "TASK_FINISHED"
        mps = os.path.join(host.config.sandbox, "mps")
        assert stdout_of(host, "t").splitlines() == [
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50", f"CUDA_MPS_LOG_DIRECTORY={mps}/log",
            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=4096M", f"CUDA_MPS_PIPE_DIRECTORY={mps}/pipe",
            f"CUDA_VISIBLE_DEVICES={UUID0}",
        ]  # fmt: skip
        with open(f"{mps}/log/control.log") as log:
            assert "simulated MPS control daemon" in log.read()
    finally:
        host.close()


def test_mps_share_fails_clearly_without_mps(tmp_path, driver):
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.MPS), driver, Isolation.MPS)
    launch(host, driver, "t", "echo ran", isolation="mps")
    ending = driver.wait_terminal("t")
    assert ending["state"] == "TASK_FAILED" and ending["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert ending["message"] == (
        "Failed to launch the share: MPS is not available on this host: nvidia-cuda-mps-control is not on "
        "PATH (install the NVIDIA driver's compute utilities); the task is not run without MPS"
    )
    assert not os.path.exists(os.path.join(host.config.sandbox, "tasks", "t", "stdout"))


def test_mig_share_sees_its_instance_only(tmp_path, driver):
    spec = "1xA100-SXM4-80GB;mig=3g.40gb/2g.20gb/1g.10gb/1g.10gb"
    host = opened(make_host(tmp_path, spec, Isolation.MIG), driver, Isolation.MIG)
    launch(host, driver, "t", 'echo "$CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES"', isolation="mig",
           gpus=0.285, gpu_memory=20480, mig_index=1, mig_profile="2g.20gb")  # fmt: skip
    assert driver.wait_terminal("t")["state"] == "TASK_FINISHED"
    mig = fake_mig_uuid(0, 1)
    assert stdout_of(host, "t") == f"{mig} {mig}\n"
    running = next(u for u in driver.updates if u["state"] == "TASK_RUNNING")
    labels = {x["key"]: x["value"] for x in running["labels"]["labels"]}
    assert labels["mesos-gpu/device"] == mig and labels["mesos-gpu/gpu-memory"] == "20480"
    launch(host, driver, "u", "true", isolation="mig", mig_index=1, mig_profile="3g.40gb")
    assert "is a 2g.20gb, not the 3g.40gb granted" in driver.wait_terminal("u")["message"]


def test_fetched_archive_exit_code_and_the_wrong_level(tmp_path, driver):
    archive = tmp_path / "job.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"print('from the archive')\n"
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.CAPPED), driver, Isolation.CAPPED)
    try:
        launch(host, driver, "t", "cat train.py; exit 3", uris=[{"value": f"file://{archive}"}])
        ending = driver.wait_terminal("t")
        assert (ending["state"], ending["message"]) == ("TASK_FAILED", "Command exited with status 3")
        assert ending["labels"]["labels"] == [{"key": "exit_code", "value": "3"}]
        assert stdout_of(host, "t") == "print('from the archive')\n"
        launch(host, driver, "m", "true", isolation="mps")
        assert driver.wait_terminal("m")["message"] == (
            "Failed to launch the share: this share host runs capped shares, not mps"
        )
    finally:
        host.close()


def test_kill_honours_the_tasks_grace(tmp_path, driver):
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.SHARED), driver, Isolation.SHARED)
    launch(host, driver, "t", "trap '' TERM; sleep 30", isolation="shared")
    driver.wait_state("t", "TASK_RUNNING")
    started = time.monotonic()
    host.kill(driver, "t", killing=True)
    ending = driver.wait_terminal("t")
    assert time.monotonic() - started >= 0.3  # SIGTERM ignored: SIGKILL after the 0.3 s grace
    assert (ending["state"], ending["message"]) == ("TASK_KILLED", "Command terminated with signal Killed")
    assert driver.states("t") == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]


def test_a_capped_share_without_nvml_is_refused(tmp_path, driver):
    host = opened(make_host(tmp_path, None, Isolation.CAPPED), driver, Isolation.CAPPED)
    launch(host, driver, "t", "true")
    assert driver.wait_terminal("t")["message"] == (
        "Failed to launch the share: NVML does not answer for GPU 0, so the memory watchdog cannot enforce "
        "a capped share; the task is not run unenforced"
    )
    launch(host, driver, "s", "true", isolation="shared")  # a shared share needs nothing enforced
    assert driver.wait_terminal("s")["state"] == "TASK_FAILED"  # the host is capped: one level per GPU


def test_the_host_lingers_after_its_last_task_then_asks_to_stop(tmp_path, driver):
    idle = threading.Event()
    host = make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.SHARED, on_idle=lambda d: idle.set())
    opened(host, driver, Isolation.SHARED, linger=0.5)
    launch(host, driver, "t", "sleep 0.8", isolation="shared")
    driver.wait_state("t", "TASK_RUNNING")
    time.sleep(0.6)  # longer than the linger: a running task keeps the host
    assert not idle.is_set()
    driver.wait_terminal("t")
    ended = time.monotonic()
    wait_until(idle.is_set, timeout=5)
    assert time.monotonic() - ended >= 0.4
    host.close()


def test_mps_daemon_start_and_stop_through_the_control_binary(tmp_path):
    control = tmp_path / "nvidia-cuda-mps-control"
    record = tmp_path / "calls"
    control.write_text(
        "#!/bin/sh\n"
        f'echo "$* $CUDA_VISIBLE_DEVICES $(cat -)" >> {record}\n'
        'if [ "$1" = "-d" ]; then : > "$CUDA_MPS_PIPE_DIRECTORY/control"; fi\n'
    )
    control.chmod(0o755)
    daemon = MpsDaemon(str(control), UUID0, str(tmp_path / "mps"), {"PATH": "/usr/bin:/bin"})
    pipe, logs = daemon.ensure_started()
    assert (pipe, logs) == (str(tmp_path / "mps/pipe"), str(tmp_path / "mps/log"))
    assert daemon.ensure_started() == (pipe, logs)  # one daemon per GPU
    daemon.stop()
    assert record.read_text().splitlines() == [f"-d {UUID0} ", f" {UUID0} quit"]
    with pytest.raises(MpsError, match="not on PATH"):
        MpsDaemon(None, UUID0, str(tmp_path / "x")).ensure_started()


class StubLauncher:
    """Records the container a share would get; the container 'runs' until stopped or for a moment."""

    def __init__(self) -> None:
        self.specs: list = []
        self.stopped = threading.Event()

    def run(self, spec) -> str:
        self.specs.append(spec)
        return "c0ffee" * 4

    def pid(self, container_id: str) -> int | None:
        return None

    def follow_logs(self, container_id, write):
        raise RuntimeError("no log streaming in the stub")

    def logs(self, container_id):
        return b"from the container\n", b""

    def wait(self, container_id, timeout=None) -> int:
        self.stopped.wait(0.2)
        return 0

    def stop(self, container_id, grace=10.0) -> None:
        self.stopped.set()

    def remove(self, container_id) -> None:
        pass


def test_an_image_share_gets_a_device_request_for_its_gpu_only(tmp_path, driver):
    stub = StubLauncher()
    host = make_host(tmp_path, "2xA100-SXM4-80GB", Isolation.CAPPED, launcher_factory=lambda: stub)
    opened(host, driver, Isolation.CAPPED)
    grant = {"host": "sharehost.x", "isolation": "capped", "gpus": 0.5, "gpu_memory": 8192}
    payload = {"command": "python train.py", "image": "trainer:1", "uris": [], "env": {"A": "1"},
               "share": grant, "resources": {"cpus": 1.5, "mem": 512}}  # fmt: skip
    host.start(driver, {"task_id": {"value": "img"}, "data": b64(payload)})
    assert driver.wait_terminal("img")["state"] == "TASK_FINISHED"
    [spec] = stub.specs
    assert (spec.image, spec.command, spec.gpus, spec.cpus, spec.mem_mb) == (
        "trainer:1", "python train.py", (UUID0,), 1.5, 512
    )  # fmt: skip
    assert spec.sandbox == os.path.join(host.config.sandbox, "tasks", "img")
    assert spec.env["CUDA_VISIBLE_DEVICES"] == UUID0 and spec.env["MESOS_GPU_MEMORY_LIMIT_MB"] == "8192"
    assert spec.env["A"] == "1" and spec.working_dir == "/mnt/mesos/sandbox"
    assert stdout_of(host, "img") == "from the container\n"
    host.close()


def test_an_mps_image_share_gets_the_hosts_ipc_and_the_daemons_pipe_directory(tmp_path, driver):
    stub = StubLauncher()
    spec = "1xSimulated-GPU@16384M;mps"
    host = make_host(tmp_path, spec, Isolation.MPS, launcher_factory=lambda: stub)
    opened(host, driver, Isolation.MPS)
    grant = {"host": "sharehost.x", "isolation": "mps", "gpus": 0.25, "gpu_memory": 2048}
    payload = {"command": None, "image": "trainer:1", "uris": [], "env": {}, "share": grant}
    host.start(driver, {"task_id": {"value": "img"}, "data": b64(payload)})
    try:
        assert driver.wait_terminal("img")["state"] == "TASK_FINISHED"
        [container] = stub.specs
        pipe = os.path.join(host.config.sandbox, "mps", "pipe")
        assert container.ipc_mode == "host" and container.binds == {pipe: MPS_PIPE_MOUNT}
        assert container.env["CUDA_MPS_PIPE_DIRECTORY"] == MPS_PIPE_MOUNT
        assert "CUDA_MPS_LOG_DIRECTORY" not in container.env
        assert container.env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "25"
        kwargs = create_arguments(container, GpuAccess(), lambda image: [])
        assert kwargs["ipc_mode"] == "host"
        assert kwargs["volumes"][pipe] == {"bind": MPS_PIPE_MOUNT, "mode": "rw"}
        assert kwargs["device_requests"] == [{"device_ids": [UUID0], "capabilities": [["gpu"]]}]
    finally:
        host.close()
