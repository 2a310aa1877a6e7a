"""isolator.devices: the devices-cgroup probe on fake cgroup files, the environment probe, and the
order in which DeviceSelector consults cgroup, environment and the host allocator."""

from __future__ import annotations

from pathlib import Path

import pytest

from isolator.allocator import ExclusiveGpuAllocator, Holder, ProcessProbe
from isolator.devices import (
    CgroupPaths,
    DeviceSelector,
    GpuInventory,
    GpuSelectionError,
    GpuSource,
    ProbeResult,
    devices_mount,
    ids_for_minors,
    parse_devices_list,
    parse_proc_cgroup,
    parse_visible_devices,
    probe_devices_cgroup,
    probe_environment,
)

V1_PROC_CGROUP = """\
12:pids:/mesos/3f1c
5:devices:/mesos/3f1c
4:memory:/mesos/3f1c
1:name=systemd:/mesos/3f1c
0::/
"""
V2_PROC_CGROUP = "0::/system.slice/mesos-agent.service/mesos/3f1c\n"
HOST_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 31 0:32 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,devices
37 31 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,memory
"""
# Inside a container the devices hierarchy is mounted from the container's own cgroup.
CONTAINER_MOUNTINFO = (
    "812 805 0:32 /mesos/3f1c /sys/fs/cgroup/devices ro,nosuid,nodev,noexec,relatime master:17 - "
    "cgroup cgroup rw,devices\n"
)
MESOS_DEVICES_LIST = """\
c *:* m
b *:* m
c 1:3 rwm
c 1:5 rwm
c 5:0 rwm
c 136:* rwm
c 195:255 rwm
c 195:254 rwm
c 243:0 rwm
c 195:2 rwm
c 195:0 rwm
"""
INVENTORY = "4xA100-SXM4-40GB"


def uuid(index: int) -> str:
    return f"GPU-fa4e0000-0000-4000-8000-{index:012x}"


def cgroup_tree(
    tmp_path: Path, proc: str, mountinfo: str, devices_dir: str | None, listing: str
) -> CgroupPaths:
    """Fake /proc/self/cgroup, /proc/self/mountinfo and a devices.list under tmp_path; mount points in
    `mountinfo` are rewritten into tmp_path."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "sys-fs-cgroup"
    (tmp_path / "cgroup").write_text(proc)
    (tmp_path / "mountinfo").write_text(mountinfo.replace("/sys/fs/cgroup", str(root)))
    if devices_dir is not None:
        directory = root / "devices" / devices_dir.lstrip("/")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "devices.list").write_text(listing)
    return CgroupPaths(str(tmp_path / "cgroup"), str(tmp_path / "mountinfo"), str(root))


# ---- parsing -----------------------------------------------------------------------------------


def test_proc_cgroup_maps_each_controller_and_the_v2_entry():
    parsed = parse_proc_cgroup(V1_PROC_CGROUP + "7:cpu,cpuacct:/x\n")
    assert parsed["devices"] == "/mesos/3f1c"
    assert parsed["name=systemd"] == "/mesos/3f1c"
    assert parsed["cpu"] == parsed["cpuacct"] == "/x"
    assert parsed[""] == "/"
    assert parse_proc_cgroup(V2_PROC_CGROUP) == {"": "/system.slice/mesos-agent.service/mesos/3f1c"}


def test_devices_mount_finds_the_devices_hierarchy():
    assert devices_mount(HOST_MOUNTINFO) == ("/", "/sys/fs/cgroup/devices")
    assert devices_mount(CONTAINER_MOUNTINFO) == ("/mesos/3f1c", "/sys/fs/cgroup/devices")
    assert devices_mount("31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n") is None


@pytest.mark.parametrize(
    ("listing", "minors"),
    [
        (MESOS_DEVICES_LIST, (0, 2)),  # nvidia-modeset (254) and nvidiactl (255) are not GPUs
        ("a *:* rwm\n", None),  # unrestricted
        ("c 1:3 rwm\nc 195:* rwm\n", None),  # every NVIDIA device
        ("c 1:3 rwm\nc 5:0 rwm\n", ()),  # restricted, no GPU
        ("c 195:7 rw\nb 195:3 rwm\n", (7,)),  # a block device 195 is not a GPU
        ("", ()),
    ],
)
def test_devices_list_parsing(listing, minors):
    assert parse_devices_list(listing) == minors


@pytest.mark.parametrize(
    ("value", "devices"),
    [
        (None, None),
        ("all", None),
        ("ALL", None),
        ("void", ()),
        ("none", ()),
        ("", ()),
        ("-1", ()),
        ("0", ("0",)),
        ("1, 3", ("1", "3")),
        ("GPU-a,GPU-b", ("GPU-a", "GPU-b")),
    ],
)
def test_visible_devices_values(value, devices):
    assert parse_visible_devices(value) == devices


def test_minors_become_uuids_where_nvml_knows_them():
    assert ids_for_minors([0, 2], {0: "GPU-a", 2: "GPU-c"}) == ("GPU-a", "GPU-c")
    assert ids_for_minors([0, 5], {0: "GPU-a"}) == ("GPU-a", "5")
    assert ids_for_minors([3], None) == ("3",)


# ---- the cgroup probe on fake files -------------------------------------------------------------


def test_cgroup_v1_probe_on_the_host_layout(tmp_path):
    paths = cgroup_tree(tmp_path, V1_PROC_CGROUP, HOST_MOUNTINFO, "/mesos/3f1c", MESOS_DEVICES_LIST)
    result = probe_devices_cgroup(paths, {0: uuid(0), 2: uuid(2)})
    assert result == ProbeResult(
        "cgroup-v1", (uuid(0), uuid(2)), "devices cgroup /mesos/3f1c allows GPU minors [0, 2]"
    )
    assert probe_devices_cgroup(paths).devices == ("0", "2")  # no NVML: minors as indices


def test_cgroup_v1_probe_inside_a_container(tmp_path):
    # The mount's root is the container's cgroup: devices.list sits at the mount point itself.
    paths = cgroup_tree(tmp_path, V1_PROC_CGROUP, CONTAINER_MOUNTINFO, "/", "c 195:1 rwm\n")
    assert probe_devices_cgroup(paths).devices == ("1",)


def test_cgroup_v1_without_mountinfo_uses_the_cgroup_root(tmp_path):
    paths = cgroup_tree(tmp_path, V1_PROC_CGROUP, "", "/mesos/3f1c", "c 195:3 rwm\n")
    assert probe_devices_cgroup(paths).devices == ("3",)


def test_an_unrestricted_cgroup_cannot_tell(tmp_path):
    paths = cgroup_tree(tmp_path, V1_PROC_CGROUP, HOST_MOUNTINFO, "/mesos/3f1c", "a *:* rwm\n")
    result = probe_devices_cgroup(paths)
    assert result.devices is None
    assert result.detail == "devices cgroup /mesos/3f1c does not restrict GPUs"


def test_cgroup_v2_is_reported_as_unprobeable(tmp_path):
    paths = cgroup_tree(tmp_path, V2_PROC_CGROUP, "", None, "")
    result = probe_devices_cgroup(paths)
    assert result.source == "cgroup-v2" and result.devices is None
    assert "BPF program" in result.detail


def test_missing_files_are_reported_not_raised(tmp_path):
    result = probe_devices_cgroup(CgroupPaths(str(tmp_path / "nope"), str(tmp_path / "nope2"), str(tmp_path)))
    assert result.devices is None and "cannot be read" in result.detail
    paths = cgroup_tree(tmp_path, V1_PROC_CGROUP, HOST_MOUNTINFO, None, "")
    result = probe_devices_cgroup(paths)
    assert result.devices is None and "devices.list cannot be read" in result.detail


def test_this_hosts_own_cgroup_is_probed_without_error():
    result = probe_devices_cgroup()
    assert result.source in ("cgroup-v1", "cgroup-v2")
    assert result.detail


def test_environment_probe_prefers_nvidia_visible_devices():
    assert probe_environment({"NVIDIA_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "0"}).devices == ("1",)
    assert probe_environment({"NVIDIA_VISIBLE_DEVICES": "all", "CUDA_VISIBLE_DEVICES": "0,1"}).devices == (
        "0",
        "1",
    )
    assert probe_environment({"NVIDIA_VISIBLE_DEVICES": "void"}).devices == ()
    assert probe_environment({}).devices is None


# ---- selection order ---------------------------------------------------------------------------


@pytest.fixture
def inventory() -> GpuInventory:
    return GpuInventory(INVENTORY)


def allocator_factory(tmp_path: Path):
    def make(devices):
        return ExclusiveGpuAllocator(
            str(tmp_path / "alloc" / "gpus.json"), devices, holder_probes=(ProcessProbe(),)
        )

    return make


def selector(tmp_path, inventory, env, source=GpuSource.AUTO, listing: str | None = "a *:* rwm\n"):
    paths = cgroup_tree(
        tmp_path, V1_PROC_CGROUP, HOST_MOUNTINFO, "/mesos/3f1c" if listing else None, listing or ""
    )
    return DeviceSelector(source, env, inventory, allocator_factory(tmp_path), paths)


def test_no_gpus_asked_none_given(tmp_path, inventory):
    grant = selector(tmp_path, inventory, {"CUDA_VISIBLE_DEVICES": "0"}).select(0, "o")
    assert grant.devices == () and grant.source == "none" and grant.owner is None


def test_the_cgroup_wins_over_the_environment(tmp_path, inventory):
    chosen = selector(
        tmp_path, inventory, {"NVIDIA_VISIBLE_DEVICES": "0"}, listing="c 195:2 rwm\nc 195:3 rwm\n"
    )
    grant = chosen.select(2, "fw/e/t")
    assert grant.devices == (uuid(2), uuid(3))
    assert grant.source == "cgroup-v1" and grant.owner is None
    assert chosen.release(grant) == []


def test_the_environment_is_used_when_the_cgroup_cannot_tell(tmp_path, inventory):
    grant = selector(tmp_path, inventory, {"NVIDIA_VISIBLE_DEVICES": "1,3"}).select(1, "o", taken={"1"})
    assert grant.devices == ("3",) and grant.source == "env"


def test_a_cgroup_without_gpus_falls_through(tmp_path, inventory):
    grant = selector(tmp_path, inventory, {"CUDA_VISIBLE_DEVICES": "2"}, listing="c 1:3 rwm\n").select(1, "o")
    assert grant.devices == ("2",) and grant.source == "env"


def test_too_few_probed_devices_is_an_error_not_a_fallback(tmp_path, inventory):
    with pytest.raises(GpuSelectionError) as caught:
        selector(tmp_path, inventory, {"NVIDIA_VISIBLE_DEVICES": "1"}).select(2, "o")
    assert (
        str(caught.value)
        == "the task needs 2 gpus but NVIDIA_VISIBLE_DEVICES=1 gives this container 1 free (1)"
    )


def test_the_allocator_is_the_last_resort_and_is_exclusive(tmp_path, inventory):
    chosen = selector(tmp_path, inventory, {})
    first = chosen.select(3, "fw/e/t1")
    assert first.devices == (uuid(0), uuid(1), uuid(2))
    assert first.source == "allocator" and first.owner == "fw/e/t1"
    assert "cgroup-v1: devices cgroup /mesos/3f1c does not restrict GPUs" in first.detail
    with pytest.raises(GpuSelectionError, match=r"^Requested 2 gpus but only 1 available$"):
        chosen.select(2, "fw/e/t2")
    assert chosen.release(first) == list(first.devices)
    assert chosen.select(2, "fw/e/t2").devices == (uuid(0), uuid(1))


def test_the_allocator_attaches_the_container(tmp_path, inventory):
    chosen = selector(tmp_path, inventory, {})
    grant = chosen.select(1, "fw/e/t")
    chosen.attach(grant, "c0ffee")
    holder = chosen.allocator_factory(None).snapshot().allocations["fw/e/t"].holder
    assert holder.container_id == "c0ffee" and holder == Holder(holder.pid, holder.pid_start, "c0ffee")


def test_without_an_inventory_the_allocator_says_why(tmp_path):
    broken = GpuInventory("0;fail=nodriver")
    with pytest.raises(GpuSelectionError) as caught:
        selector(tmp_path, broken, {}).select(1, "o")
    assert str(caught.value).startswith("Requested 1 gpus but only 0 available (no NVML inventory: ")


def test_a_forced_source_does_not_fall_back(tmp_path, inventory):
    with pytest.raises(GpuSelectionError, match="no probe names any: env: neither"):
        selector(tmp_path, inventory, {}, source=GpuSource.ENV).select(1, "o")
    grant = selector(tmp_path, inventory, {"CUDA_VISIBLE_DEVICES": "0"}, source=GpuSource.ALLOCATOR).select(
        1, "o"
    )
    assert grant.source == "allocator"
    only_cgroup = selector(tmp_path / "c", inventory, {"CUDA_VISIBLE_DEVICES": "0"}, source=GpuSource.CGROUP)
    with pytest.raises(GpuSelectionError, match="no probe names any: cgroup-v1"):
        only_cgroup.select(1, "o")
