"""What sharing asks of NVML: the fake's memory sizes, MIG instances, MPS switch and per-process used
memory declared by real processes; the real backend's MIG and process calls wired to pynvml's real
names; and the host facts (memory alike, one MIG layout, MPS possible) with their notes."""

from __future__ import annotations

import subprocess
import sys
import types

import pynvml
import pytest

from isolator.fakenvml import PROCESSES_ENV, FakeSpecError, fake_mig_uuid, parse_fake_spec
from isolator.nvml import PynvmlBackend
from isolator.sharenvml import SIMULATED_MPS, MigInstance, RunningProcess, profile_from_name, sharing_facts
from tests.isolator.test_nvml import _stand_in_pynvml

UUID0 = "GPU-fa4e0000-0000-4000-8000-000000000000"


def test_fake_gpus_have_a_memory_size_mig_instances_and_mps():
    fake = parse_fake_spec("2xA100-SXM4-80GB;mig=3g.40gb/2g.20gb/1g.10gb/1g.10gb")
    fake.init()
    assert fake.device(0).memory_total_bytes == 81920 * 1024 * 1024
    assert fake.mig_enabled(0) is True
    instances = fake.mig_instances(1)
    assert [i.profile for i in instances] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
    assert instances[0] == MigInstance(fake_mig_uuid(1, 0), "3g.40gb", 40960)
    assert all(i.uuid.startswith("MIG-") for i in instances) and len({i.uuid for i in instances}) == 4
    assert fake.mps_control() is None  # MPS is not offered on MIG GPUs
    plain = parse_fake_spec("1xSimulated-GPU@16384M;mps")
    plain.init()
    assert plain.device(0).memory_total_bytes == 16384 * 1024 * 1024
    assert plain.mig_enabled(0) is False and plain.mig_instances(0) == []
    assert plain.mps_control() == SIMULATED_MPS
    with pytest.raises(FakeSpecError, match="more than 7 compute slices"):
        parse_fake_spec("1xA100;mig=4g.40gb/4g.40gb")


def test_fake_running_processes_are_what_live_processes_declared(tmp_path, monkeypatch):
    monkeypatch.setenv(PROCESSES_ENV, str(tmp_path))
    fake = parse_fake_spec("2xA100-SXM4-80GB;mig=3g.40gb/4g.40gb")
    fake.init()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True
    )
    try:
        (tmp_path / str(child.pid)).write_text(f"{fake.gpus[0].uuid} 1500\n")
        (tmp_path / "999999999").write_text(f"{fake.gpus[0].uuid} 7\n")  # no such process
        (tmp_path / "notes.txt").write_text("ignored")
        (tmp_path / "1").write_text(f"{fake_mig_uuid(1, 1)} 300\n")  # pid 1 lives: on GPU 1's instance
        assert fake.running_processes(0) == [RunningProcess(child.pid, 1500 * 1024 * 1024)]
        assert fake.running_processes(1) == [RunningProcess(1, 300 * 1024 * 1024)]
    finally:
        child.communicate("")
    assert fake.running_processes(0) == []  # it ended: NVML no longer lists it


def test_fake_processes_directory_from_the_spec(tmp_path, monkeypatch):
    monkeypatch.delenv(PROCESSES_ENV, raising=False)
    fake = parse_fake_spec(f"1xT4;processes={tmp_path}")
    fake.init()
    (tmp_path / "1").write_text(f"{fake.gpus[0].uuid} 10\n")
    assert fake.running_processes(0) == [RunningProcess(1, 10 * 1024 * 1024)]


def test_pynvml_backend_sharing_calls_use_the_real_pynvml_names():
    err = pynvml.NVMLError
    mig_handles = {0: "m0", 2: "m2"}  # slot 1 is empty

    def mig_handle(handle, slot):
        return mig_handles[slot] if slot in mig_handles else err(pynvml.NVML_ERROR_NOT_FOUND)

    def processes(handle):
        used = {"h0": (1, 100), "m0": (2, 200), "m2": (3, None)}[handle]
        return [types.SimpleNamespace(pid=used[0], usedGpuMemory=used[1])]

    answers = {
        "nvmlDeviceGetHandleByIndex": lambda i: "h0",
        "nvmlDeviceGetMigMode": [pynvml.NVML_DEVICE_MIG_ENABLE, pynvml.NVML_DEVICE_MIG_ENABLE],
        "nvmlDeviceGetMaxMigDeviceCount": 3,
        "nvmlDeviceGetMigDeviceHandleByIndex": mig_handle,
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(total=(40 if h == "m0" else 10) * 1024**3),
        "nvmlDeviceGetAttributes": err(pynvml.NVML_ERROR_NOT_SUPPORTED),
        "nvmlDeviceGetName": lambda h: b"NVIDIA A100-SXM4-80GB MIG 3g.40gb" if h == "m0" else b"odd",
        "nvmlDeviceGetUUID": lambda h: f"MIG-{h}",
        "nvmlDeviceGetComputeRunningProcesses": processes,
    }
    backend = PynvmlBackend()
    backend._nvml = _stand_in_pynvml(answers)
    assert backend.mig_enabled(0) is True
    assert backend.mig_instances(0) == [
        MigInstance("MIG-m0", "3g.40gb", 40960),
        MigInstance("MIG-m2", "1g.10gb", 10240),
    ]
    assert sorted(backend.running_processes(0), key=lambda p: p.pid) == [
        RunningProcess(1, 100),
        RunningProcess(2, 200),
        RunningProcess(3, None),
    ]


def test_profile_names():
    assert profile_from_name("NVIDIA H100 80GB HBM3 MIG 2g.20gb", 20096) == "2g.20gb"
    assert profile_from_name("x", 20096, slices=2) == "2g.20gb"


def test_host_facts_and_their_notes():
    alike = sharing_facts(parse_fake_spec("2xA100-SXM4-80GB;mig=3g.40gb/2g.20gb"))
    assert alike.memory_mb() == (81920, []) and alike.mig_layout() == ("3g.40gb/2g.20gb", [])
    assert alike.by_id("1").index == 1 and alike.by_id(UUID0).index == 0 and alike.by_id("GPU-x") is None
    mixed = sharing_facts(parse_fake_spec("1xA100-SXM4-80GB,1xA100-SXM4-40GB;mps"))
    memory, notes = mixed.memory_mb()
    assert memory == 40960 and "GPUs differ in memory (40960, 81920 MB)" in notes[0]
    assert mixed.mps_capable() == (True, []) and mixed.mig_layout() == ("", [])
    fake = parse_fake_spec("2xA100-SXM4-80GB;mig=3g.40gb/2g.20gb")
    fake.gpus[1].mig = ("1g.10gb",)
    layout, notes = sharing_facts(fake).mig_layout()
    assert layout == "" and notes == [
        "GPUs have different MIG layouts (GPU 0: 3g.40gb/2g.20gb; GPU 1: 1g.10gb): no gpu_mig attribute; "
        "partition them alike"
    ]
    capable, why = sharing_facts(parse_fake_spec("1xT4")).mps_capable()
    assert not capable and why == [
        "nvidia-cuda-mps-control is not on PATH: no mps shares (install the driver's compute utilities)"
    ]
