"""Review fixes around the share host, without a running task: the enforcement sentence of each case,
the MPS pipe directory's life (short path under /tmp with an owner, stale ones removed, removed when the
start fails), the MPS message when NVML was not opened, and fake-NVML UUIDs unique per agent."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from isolator import mps as mps_module
from isolator.discovery import NvmlCallError
from isolator.fakenvml import fake_mig_uuid, parse_fake_spec
from isolator.mps import OWNER_FILE, MpsDaemon, MpsError, remove_stale_pipe_dirs
from isolator.shareenv import ENVIRONMENT_ONLY, NO_PROCESS_MEMORY, SIMULATED, enforcement, task_environment
from isolator.sharenvml import SIMULATED_MPS
from mesos_gpu.core.model import Isolation
from mesos_gpu.local.agent.gpus import ENV_FAKE_GPUS
from mesos_gpu.local.cluster import LocalCluster
from tests.isolator.test_executor import RecordingDriver
from tests.isolator.test_sharerunner import launch, make_host, opened

UUID = "GPU-1234"
MIG = "MIG-abcd"


@pytest.mark.parametrize(
    ("level", "image", "simulated", "process_memory", "sentence"),
    [
        (Isolation.CAPPED, False, True, True, SIMULATED),
        (Isolation.MPS, False, True, True, SIMULATED),
        (Isolation.CAPPED, False, False, False, NO_PROCESS_MEMORY),
        (Isolation.CAPPED, False, False, True, "memory: the NVML watchdog kills the task above 4096 MiB"),
        (Isolation.MIG, False, False, True, f"{ENVIRONMENT_ONLY}: {MIG}"),
        (Isolation.MIG, True, False, True, f"device request: MIG instance {MIG}"),
        (Isolation.MPS, False, False, True,
         f"{ENVIRONMENT_ONLY}; MPS limits (4096 MiB, compute percentage) are client-side environment "
         "variables the task can raise"),
        (Isolation.SHARED, False, False, True, "nothing enforced (time-sliced)"),
        (Isolation.SHARED, True, False, True, f"device request: GPU {UUID}; nothing else enforced"),
    ],
)  # fmt: skip
def test_the_enforcement_sentence_says_what_holds(level, image, simulated, process_memory, sentence):
    device = MIG if level is Isolation.MIG else UUID
    got = enforcement(level, device, 4096, image=image, simulated=simulated, process_memory=process_memory)
    assert got == sentence


def test_a_task_environment_keeps_the_basics_and_only_its_own_mesos_variables():
    host = {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "MESOS_DIRECTORY": "/s",
            "MESOS_GPU_FAKE_GPUS": "1xT4", "LIBPROCESS_IP": "1.2.3.4", "CUDA_VISIBLE_DEVICES": "0",
            "MESOS_GPU_FAKE_GPU_PROCESSES": "/p"}  # fmt: skip
    env = task_environment(host, {"MESOS_GPU_SHARE": "0.5"}, "t", "/s/tasks/t")
    assert env == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "MESOS_GPU_SHARE": "0.5",
                   "MESOS_TASK_ID": "t", "MESOS_SANDBOX": "/s/tasks/t"}  # fmt: skip
    assert task_environment(host, {}, "t", "/x", "/p")["MESOS_GPU_FAKE_GPU_PROCESSES"] == "/p"


def test_a_capped_share_where_nvml_gives_no_process_memory_says_so(tmp_path):
    driver = RecordingDriver()
    host = make_host(tmp_path, "1xSimulated-GPU@16384M", Isolation.CAPPED)
    host.config = dataclasses.replace(host.config, fake_gpus=None)  # as on a real GPU

    def unsupported(index: int) -> list:
        raise NvmlCallError("running_processes", 3, "Not Supported")

    host.backend.running_processes = unsupported  # type: ignore[method-assign]
    opened(host, driver, Isolation.CAPPED)
    try:
        launch(host, driver, "t", "true")
        assert driver.wait_terminal("t")["state"] == "TASK_FINISHED"
        running = next(u for u in driver.updates if u["state"] == "TASK_RUNNING")
        labels = {x["key"]: x["value"] for x in running["labels"]["labels"]}
        assert labels["mesos-gpu/enforcement"] == NO_PROCESS_MEMORY
    finally:
        host.close()


@pytest.fixture
def short_tmp(tmp_path, monkeypatch):
    directory = tmp_path / "t"
    directory.mkdir()
    monkeypatch.setattr(mps_module.tempfile, "tempdir", str(directory))
    return directory


def deep_root(tmp_path) -> str:
    return str(tmp_path / ("d" * 90) / "mps")


def test_a_long_sandbox_gets_a_short_pipe_directory_removed_at_stop(tmp_path, short_tmp):
    daemon = MpsDaemon(SIMULATED_MPS, UUID, deep_root(tmp_path))
    pipe, _ = daemon.ensure_started()
    assert os.path.dirname(pipe) == str(short_tmp) and len(pipe) < len(deep_root(tmp_path))
    with open(os.path.join(pipe, OWNER_FILE)) as handle:
        assert handle.read().split()[0] == str(os.getpid())
    daemon.stop()
    assert not os.path.exists(pipe)


def test_stale_pipe_directories_of_dead_hosts_are_removed(tmp_path, short_tmp):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, alive, foreign = (short_tmp / name for name in ("mesos-gpu-mps-stale", "mesos-gpu-mps-alive", "x"))
    for path in (stale, alive, foreign):
        path.mkdir()
    (stale / OWNER_FILE).write_text(f"{dead.pid} 1")
    (alive / OWNER_FILE).write_text(mps_module._owner_text(os.getpid()))
    daemon = MpsDaemon(SIMULATED_MPS, UUID, deep_root(tmp_path))
    daemon.ensure_started()  # a new host removes what dead ones left
    assert not stale.exists() and alive.exists() and foreign.exists()
    daemon.stop()
    assert remove_stale_pipe_dirs(str(short_tmp)) == []


def test_a_failed_daemon_start_removes_its_short_pipe_directory(tmp_path, short_tmp):
    control = tmp_path / "nvidia-cuda-mps-control"
    control.write_text("#!/bin/sh\necho no GPU >&2\nexit 1\n")
    control.chmod(0o755)
    with pytest.raises(MpsError, match="no GPU"):
        MpsDaemon(str(control), UUID, deep_root(tmp_path)).ensure_started()
    assert os.listdir(short_tmp) == []


def test_mps_says_nvml_was_not_opened_rather_than_not_on_path(tmp_path):
    driver = RecordingDriver()
    host = opened(make_host(tmp_path, "1xSimulated-GPU@16384M;mps;fail=nolib", Isolation.MPS), driver,
                  Isolation.MPS)  # fmt: skip
    try:
        launch(host, driver, "t", "true", isolation="mps")
        message = driver.wait_terminal("t")["message"]
        assert "NVML could not be opened" in message and "not on PATH" not in message
    finally:
        host.close()


def test_a_seed_makes_fake_uuids_distinct():
    plain = parse_fake_spec("2xA100-SXM4-80GB;mig=3g.40gb/2g.20gb")
    assert plain.gpus[0].uuid == "GPU-fa4e0000-0000-4000-8000-000000000000"  # no seed: as before
    a, b = (parse_fake_spec(f"2xA100-SXM4-80GB;mig=3g.40gb/2g.20gb;seed={s}") for s in ("S0", "S1"))
    uuids = [gpu.uuid for fake in (plain, a, b) for gpu in fake.gpus]
    assert len(set(uuids)) == 6
    b.init()
    assert b.mig_instances(1)[1].uuid == fake_mig_uuid(1, 1, "S1") != fake_mig_uuid(1, 1, "S0")


def test_no_gpu_uuid_is_offered_by_two_agents_of_a_local_cluster(tmp_path):
    with LocalCluster(agents=2, gpus_per_agent=2, workdir=tmp_path) as cluster:
        agents = cluster.agents
        by_agent = [{d.uuid for d in agent.gpus.devices} for agent in agents]
        assert all(len(uuids) == 2 for uuids in by_agent) and not by_agent[0] & by_agent[1]
        seen = [{g.uuid for g in parse_fake_spec(agent._containerizer.gpu_env[ENV_FAKE_GPUS]).gpus}
                for agent in agents]  # fmt: skip
        assert seen == by_agent  # what a share host on each agent sees through the fake NVML
