"""Simulated GPUs for GPU shares: memory, MIG layout and MPS as agent attributes (core.sharing's names)
in offers that unmodified pymesos receives, and the fake NVML environment of a process holding GPUs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import pytest

from isolator.fakenvml import parse_fake_spec
from mesos_gpu.core.placement.offers import attributes_from_mesos
from mesos_gpu.core.sharing import ATTR_GPU_MEMORY, ATTR_GPU_MIG, ATTR_GPU_MPS
from mesos_gpu.local.agent.gpus import (
    DEFAULT_GPU_MEMORY_MB,
    ENV_FAKE_GPUS,
    ENV_FAKE_NVML_DIR,
    GpuSharing,
    check_attributes,
    fake_nvml_env,
    simulated_devices,
)
from mesos_gpu.local.cli import add_gpu_sharing_arguments, gpu_sharing_options, register
from tests.local.agent_helpers import AgentThread, command_task, framework_info
from tests.local.test_agent_command import config, sandbox_of

MIG_A100 = "3g.20gb/2g.10gb/1g.5gb/1g.5gb"
MESOS_TEXT = re.compile(r"^[a-zA-Z0-9_/.-]+$")  # docs/attributes-resources.md: text


def test_gpu_sharing_refuses_what_no_gpu_has() -> None:
    with pytest.raises(ValueError, match="positive"):
        GpuSharing(memory_mb=0)
    with pytest.raises(ValueError, match="not a MIG profile"):
        GpuSharing(memory_mb=40960, mig="3g.20gb,2g.10gb")
    with pytest.raises(ValueError, match="more than 7 compute slices"):
        GpuSharing(memory_mb=81920, mig="4g.40gb/4g.40gb")
    with pytest.raises(ValueError, match="more memory than a GPU of 16384 MB"):
        GpuSharing(mig=MIG_A100)
    assert GpuSharing(memory_mb=40960, mig=" 3g.20gb / 2g.10gb ").layout == "3g.20gb/2g.10gb"
    with pytest.raises(ValueError, match="not in MIG mode"):
        GpuSharing(memory_mb=40960, mig=MIG_A100, mps=True)


def test_attributes_follow_mesos_grammar() -> None:
    sharing = GpuSharing(memory_mb=40960, mig=MIG_A100)
    attributes = sharing.attributes(simulated_devices(2, memory_mb=40960))
    assert attributes == {ATTR_GPU_MEMORY: 40960.0, ATTR_GPU_MIG: MIG_A100, ATTR_GPU_MPS: "false"}
    check_attributes(attributes)
    assert all(MESOS_TEXT.match(v) for v in attributes.values() if isinstance(v, str))
    assert sharing.attributes([]) == {}  # an agent without GPUs announces nothing about them
    assert GpuSharing(mps=True).attributes(simulated_devices(1)) == {
        ATTR_GPU_MEMORY: float(DEFAULT_GPU_MEMORY_MB), ATTR_GPU_MPS: "true",
    }
    with pytest.raises(ValueError, match="text value"):
        check_attributes({"zone": "a b"})
    with pytest.raises(ValueError, match="name"):
        check_attributes({"gpu mig": "x"})


def test_simulated_uuids_are_the_fake_nvml_ones() -> None:
    devices = simulated_devices(3, memory_mb=8192)
    fake = parse_fake_spec("3xSimulated-GPU@8192M")
    assert [d.uuid for d in devices] == [g.uuid for g in fake.gpus]
    assert len({d.uuid for d in devices}) == 3


def test_offers_carry_the_sharing_attributes_to_pymesos(cluster_factory, driver_factory) -> None:
    cluster = cluster_factory(agents=1, gpus_per_agent=2, gpu_memory=40960, gpu_mig=MIG_A100)
    _, recorder = driver_factory(cluster.master_address)
    offer = recorder.wait_for("offer")
    raw = {a["name"]: a for a in offer["attributes"]}
    assert raw[ATTR_GPU_MEMORY] == {"name": ATTR_GPU_MEMORY, "type": "SCALAR", "scalar": {"value": 40960.0}}
    assert raw[ATTR_GPU_MIG] == {"name": ATTR_GPU_MIG, "type": "TEXT", "text": {"value": MIG_A100}}
    assert raw[ATTR_GPU_MPS] == {"name": ATTR_GPU_MPS, "type": "TEXT", "text": {"value": "false"}}
    flat = attributes_from_mesos(offer["attributes"])  # what placement reads
    assert (flat[ATTR_GPU_MEMORY], flat[ATTR_GPU_MIG], flat[ATTR_GPU_MPS]) == ("40960", MIG_A100, "false")
    slaves = cluster.call(cluster.master.slaves)["slaves"]
    assert slaves[0]["attributes"][ATTR_GPU_MEMORY] == 40960.0


def test_a_plain_gpu_cluster_announces_memory_only(cluster_factory, driver_factory) -> None:
    cluster = cluster_factory(agents=1, gpus_per_agent=1)
    _, recorder = driver_factory(cluster.master_address)
    flat = attributes_from_mesos(recorder.wait_for("offer")["attributes"])
    assert flat[ATTR_GPU_MEMORY] == str(DEFAULT_GPU_MEMORY_MB)
    assert ATTR_GPU_MIG not in flat and flat[ATTR_GPU_MPS] == "false"


def test_bad_layout_refuses_the_cluster(tmp_path: Path) -> None:
    from mesos_gpu.local.cluster import LocalCluster

    with pytest.raises(ValueError, match="MIG"):
        LocalCluster(agents=1, workdir=tmp_path, gpu_mig="9g.90gb")


def test_a_gpu_process_sees_the_agents_gpus_through_the_fake_nvml(tmp_path: Path) -> None:
    cfg = config(gpus=2, gpu_memory=24576)
    show = f'echo "FAKE=${ENV_FAKE_GPUS}" "DIR=${ENV_FAKE_NVML_DIR}" "CUDA=$CUDA_VISIBLE_DEVICES"'
    with AgentThread(tmp_path, cfg) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("g", show, gpus=1))
        a.call(a.agent.launch, framework_info(), task=command_task("c", show))
        finished = a.master.wait_state("g", "TASK_FINISHED")
        cpu_finished = a.master.wait_state("c", "TASK_FINISHED")
        uuids = [d.uuid for d in a.agent.gpus.devices]
        state_dir = a.agent.root / "fake-nvml"
    text = (sandbox_of(finished, tmp_path) / "stdout").read_text()
    spec, directory, cuda = re.search(r"FAKE=(\S*) DIR=(\S*) CUDA=(\S*)", text).groups()
    fake = parse_fake_spec(spec)  # the whole agent's inventory, as NVML lists every GPU of a host
    assert [g.uuid for g in fake.gpus] == uuids
    assert [g.memory_mib for g in fake.gpus] == [24576, 24576]
    assert cuda == "0" and Path(directory) == state_dir and state_dir.is_dir()
    cpu_text = (sandbox_of(cpu_finished, tmp_path) / "stdout").read_text()
    assert "FAKE= DIR= CUDA=" in cpu_text  # no GPU: nothing of the fake NVML


def test_state_lists_the_simulated_memory(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=1, gpu_memory=8192, gpu_mps=True)) as a:
        state = json.loads(a.http("GET", "/state")[2])
    attributes = {x["name"]: x for x in state["attributes"]}
    assert attributes[ATTR_GPU_MEMORY]["scalar"]["value"] == 8192.0
    assert attributes[ATTR_GPU_MPS]["text"]["value"] == "true"


def test_cli_flags_reach_the_cluster_options() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["local", "up", "--gpu-memory", "40960", "--mig", MIG_A100])
    assert gpu_sharing_options(args) == {"gpu_memory": 40960, "gpu_mig": MIG_A100, "gpu_mps": False}
    assert gpu_sharing_options(parser.parse_args(["local", "up", "--mps"]))["gpu_mps"] is True
    plain = argparse.ArgumentParser()
    add_gpu_sharing_arguments(plain)
    assert gpu_sharing_options(plain.parse_args([])) == {
        "gpu_memory": DEFAULT_GPU_MEMORY_MB, "gpu_mig": "", "gpu_mps": False,
    }
    with pytest.raises(ValueError, match="more memory"):
        gpu_sharing_options(plain.parse_args(["--mig", MIG_A100]))


def test_mesos_gpu_local_refuses_a_bad_layout(capsys: pytest.CaptureFixture[str]) -> None:
    from mesos_gpu.commands.local import register as register_stack
    from mesos_gpu.commands.local import run_local

    parser = argparse.ArgumentParser()
    register_stack(parser.add_subparsers())
    args = parser.parse_args(["local", "--gpu-memory", "16384", "--mig", "3g.40gb/2g.20gb"])
    assert run_local(args) == 2
    assert "more memory than a GPU of 16384 MB" in capsys.readouterr().err


def test_the_fake_nvml_environment_carries_mig_and_mps(tmp_path: Path) -> None:
    sharing = GpuSharing(memory_mb=40960, mig=MIG_A100)
    devices = simulated_devices(2, memory_mb=40960)
    env = fake_nvml_env(devices, sharing, tmp_path)
    assert env[ENV_FAKE_NVML_DIR] == str(tmp_path)
    fake = parse_fake_spec(env[ENV_FAKE_GPUS])
    assert [g.uuid for g in fake.gpus] == [d.uuid for d in devices]
    assert all("/".join(g.mig) == MIG_A100 for g in fake.gpus) and not fake.mps
    mps = parse_fake_spec(fake_nvml_env(devices, GpuSharing(memory_mb=40960, mps=True), None)[ENV_FAKE_GPUS])
    assert mps.mps and not any(g.mig for g in mps.gpus)
    assert fake_nvml_env([], sharing, tmp_path) == {}
    real = [dataclasses.replace(d, simulated=False) for d in devices]
    assert fake_nvml_env(real, sharing, tmp_path) == {}  # real GPUs: the real NVML answers


def test_a_real_gpu_model_becomes_a_valid_attribute_text() -> None:
    from mesos_gpu.local.agent.gpus import nvml_devices

    fake = parse_fake_spec("1xA100-SXM4-40GB")
    fake.gpus[0].name = "NVIDIA GeForce RTX (TM) 4090"
    [device] = nvml_devices(fake)
    assert device.model == "NVIDIA-GeForce-RTX--TM--4090"
    check_attributes({"gpu_model": device.model})


def test_the_banner_names_what_the_gpus_offer_shares(tmp_path: Path) -> None:
    from mesos_gpu.local.agent.agent import Agent, AgentConfig
    from mesos_gpu.local.cli import describe_gpus

    mig = Agent(None, "S0", tmp_path, AgentConfig(gpus=2, gpu_memory=40960, gpu_mig=MIG_A100))
    assert describe_gpus(mig) == f"2 GPUs, 40960 MB each, MIG {MIG_A100}"
    mps = Agent(None, "S2", tmp_path, AgentConfig(gpus=1, gpu_mps=True))
    assert describe_gpus(mps) == "1 GPUs, 16384 MB each, MPS"
    assert describe_gpus(Agent(None, "S1", tmp_path, AgentConfig(gpus=0))) == "0 GPUs"
