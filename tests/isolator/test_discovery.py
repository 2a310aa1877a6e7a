"""GPU discovery (isolator.discovery) on the fake backend: GPU layouts, every failure switch, and the
pure mapping helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isolator.discovery import (
    NvmlCallError,
    NvmlUnavailable,
    RawHealth,
    cuda_version_text,
    discover,
    gpu_health,
    normalise_bus_id,
)
from isolator.fakenvml import FakeNvml, FakeSpecError, parse_fake_spec


def test_no_gpus():
    fake = parse_fake_spec("0")
    host = discover(fake)
    assert host.gpus == {}
    assert host.links == ()
    assert host.nvlink_groups() == []
    assert host.driver_version == "535.104.05"
    assert host.cuda_version == "12.2"
    assert fake.initialised == 0  # shut down again


def test_one_gpu():
    host = discover(parse_fake_spec("1xTesla_T4@15G;driver=470.82.01;cuda=11.4"))
    [gpu] = host.ordered()
    assert gpu.uuid == "GPU-fa4e0000-0000-4000-8000-000000000000"
    assert (gpu.index, gpu.minor, gpu.model, gpu.memory_mib) == (0, 0, "Tesla T4", 15 * 1024)
    assert gpu.pci_bus_id == "00000000:10:00.0"
    assert gpu.device_path == "/dev/nvidia0"
    assert gpu.health.healthy and gpu.health.reasons == ()
    assert (host.driver_version, host.cuda_version) == ("470.82.01", "11.4")
    assert list(host.gpus) == [gpu.uuid]


def test_four_gpus_pcie_only():
    host = discover(parse_fake_spec("4xA100-PCIE-40GB"))
    assert [g.index for g in host.ordered()] == [0, 1, 2, 3]
    assert {g.model for g in host.ordered()} == {"NVIDIA A100-PCIE-40GB"}
    assert {g.memory_mib for g in host.ordered()} == {40960}
    assert len(host.links) == 6
    assert {link.kind for link in host.links} == {"pcie"}
    assert {link.pcie for link in host.links} == {"host-bridge"}
    assert host.nvlink_groups() == [[g.uuid] for g in host.ordered()]


def test_eight_gpus_nvlink_pairs_and_numa_split():
    host = discover(parse_fake_spec("8xA100-SXM4-80GB;nvlink=pairs"))
    uuids = [g.uuid for g in host.ordered()]
    assert host.nvlink_groups() == [uuids[0:2], uuids[2:4], uuids[4:6], uuids[6:8]]
    link = host.link(uuids[1], uuids[0])
    assert link is not None and link.kind == "nvlink" and link.nvlinks == 4
    assert host.link(uuids[1], uuids[2]).nvlinks == 0
    assert host.link(uuids[0], uuids[4]).pcie == "system"  # across the CPU sockets
    assert host.link(uuids[0], uuids[3]).pcie == "host-bridge"
    assert len(host.links) == 28


def test_nvlink_all_and_explicit_pairs():
    host = discover(parse_fake_spec("4xV100-SXM2-16GB;nvlink=all"))
    assert len(host.nvlink_groups()) == 1
    host = discover(parse_fake_spec("4xV100-SXM2-16GB;nvlink=0-3:2/1-2:6"))
    uuids = [g.uuid for g in host.ordered()]
    assert host.nvlink_groups() == [[uuids[0], uuids[3]], [uuids[1], uuids[2]]]
    assert host.link(uuids[2], uuids[1]).nvlinks == 6


def test_mixed_models_and_minor_numbers_that_differ_from_indices():
    fake = parse_fake_spec("2xA100-SXM4-40GB,1xTesla_V100-SXM2-32GB,1xH100_80GB_HBM3")
    fake.gpus[0].minor = 3
    fake.gpus[3].minor = 0
    host = discover(fake)
    assert host.models() == ["NVIDIA A100-SXM4-40GB", "Tesla V100-SXM2-32GB", "NVIDIA H100 80GB HBM3"]
    assert [g.minor for g in host.ordered()] == [3, 1, 2, 0]
    assert [g.memory_mib for g in host.ordered()] == [40960, 40960, 32768, 81920]


@pytest.mark.parametrize(
    ("switch", "code", "fix"),
    [
        ("nolib", 12, "libnvidia-ml.so.1 was not found"),
        ("nodriver", 9, "modprobe nvidia"),
        ("noperm", 4, "/dev/nvidia*"),
        ("mismatch", 18, "reboot"),
    ],
)
def test_init_failures_are_typed_and_say_what_to_do(switch, code, fix):
    fake = parse_fake_spec(f"2xA100-SXM4-40GB;fail={switch}")
    with pytest.raises(NvmlUnavailable) as caught:
        discover(fake)
    message = str(caught.value)
    assert message.startswith("NVML is unavailable: ")
    assert f"(NVML error {code})" in message
    assert fix in message
    assert caught.value.code == "nvml_unavailable"


@pytest.mark.parametrize("call", ["driver_version", "cuda_driver_version", "device_count"])
def test_host_wide_call_failures_raise_and_still_shut_down(call):
    fake = parse_fake_spec(f"2xA100-SXM4-40GB;fail={call}")
    with pytest.raises(NvmlCallError) as caught:
        discover(fake)
    assert caught.value.call == call
    assert str(caught.value) == f"{call} failed: Unknown Error (NVML error 999)"
    assert fake.initialised == 0
    assert fake.calls[-1] == "shutdown"


def test_xid_query_failure_is_a_problem_not_a_crash():
    host = discover(parse_fake_spec("2xA100-SXM4-40GB;fail=xid_events"))
    assert len(host.gpus) == 2
    assert host.problems == ("XID events cannot be read: xid_events failed: Unknown Error (NVML error 999)",)


def test_lost_gpu_is_left_out_and_reported():
    host = discover(parse_fake_spec("4xA100-SXM4-40GB;lost=2;nvlink=pairs"))
    assert [g.index for g in host.ordered()] == [0, 1, 3]
    assert host.problems == ("GPU 2: cannot be read: device failed: GPU is lost (NVML error 15)",)
    assert len(host.links) == 3
    assert len(host.nvlink_groups()) == 2


def test_health_query_failure_marks_gpu_unhealthy():
    host = discover(parse_fake_spec("2xA100-SXM4-40GB;health-error=1"))
    gpus = host.ordered()
    assert gpus[0].health.healthy
    assert not gpus[1].health.healthy
    assert gpus[1].health.reasons == (
        "health cannot be read: nvmlDeviceGetTotalEccErrors failed: Unknown Error (NVML error 999)",
    )
    assert host.healthy() == [gpus[0]]
    assert len(host.problems) == 1


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        ("ecc=1:2", "2 uncorrectable ECC errors since the driver loaded"),
        ("retired=1:60", "60 retired memory pages (limit 60): replace the GPU"),
        ("pending=1", "a page retirement is pending: reset the GPU or reboot"),
        ("remap-failure=1", "row remapping failed: replace the GPU"),
        ("xid=1:79", "critical XID events: 79"),
    ],
)
def test_each_health_switch_makes_exactly_that_gpu_unhealthy(option, reason):
    host = discover(parse_fake_spec(f"3xA100-SXM4-40GB;{option}"))
    gpus = host.ordered()
    assert [g.health.healthy for g in gpus] == [True, False, True]
    assert gpus[1].health.reasons == (reason,)
    assert host.problems == ()


def test_below_limit_retired_pages_and_application_xids_stay_healthy():
    host = discover(parse_fake_spec("2xA100-SXM4-40GB;retired=0:59;xid=1:13;xid=1:43"))
    assert [g.health.healthy for g in host.ordered()] == [True, True]
    assert host.ordered()[0].health.retired_pages == 59
    assert host.ordered()[1].health.xids == ()


def test_unsupported_nvlink_and_xid_are_not_problems():
    host = discover(parse_fake_spec("2xTesla_K80;nvlink-unsupported;xid-unsupported"))
    assert host.problems == ()
    assert [link.nvlinks for link in host.links] == [0]


def test_calls_before_init_fail_like_nvml():
    fake = FakeNvml()
    with pytest.raises(NvmlCallError, match="Uninitialized"):
        fake.device_count()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("4xA100;nvlink=0-9", "bad NVLink pair"),
        ("4xA100;frobnicate=1", "unknown option"),
        ("two-A100s", "bad GPU group"),
        ("1xA100;ecc=3:1", "no GPU 3"),
        ("1xA100;fail=everything", "unknown failure"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(FakeSpecError, match=message):
        parse_fake_spec(spec)


def test_pure_helpers():
    assert cuda_version_text(12040) == "12.4"
    assert cuda_version_text(11080) == "11.8"
    assert normalise_bus_id("0000:07:00.0") == "00000000:07:00.0"
    assert normalise_bus_id("00000000:1A:00.0") == "00000000:1a:00.0"
    assert gpu_health(RawHealth()).healthy  # nothing supported: nothing known to be wrong


@given(
    count=st.integers(min_value=0, max_value=8),
    pairs=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(1, 12)), max_size=12),
)
def test_nvlink_groups_partition_the_gpus(count, pairs):
    fake = parse_fake_spec(f"{count}xA100-SXM4-40GB" if count else "0")
    fake.nvlinks = {(min(a, b), max(a, b)): n for a, b, n in pairs if a != b and a < count and b < count}
    host = discover(fake)
    groups = host.nvlink_groups()
    flat = [uuid for group in groups for uuid in group]
    assert sorted(flat) == sorted(host.gpus)
    for link in host.links:
        same = any(link.a in g and link.b in g for g in groups)
        assert same or link.nvlinks == 0
