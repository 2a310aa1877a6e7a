"""`doctor` reports one cause once (issue 19 item 11f): a check that cannot run because of a failure
already reported is SKIP, naming it, not a second FAIL."""

from __future__ import annotations

import os
import stat

from isolator.doctor import FAIL, PASS, SKIP, HostPaths, failed, run_doctor
from isolator.fakenvml import parse_fake_spec


def _paths(tmp_path, driver: bool = True) -> HostPaths:
    dev = tmp_path / "dev"
    dev.mkdir(parents=True)
    for name in ("nvidiactl", "nvidia-uvm", "nvidia0", "nvidia1"):
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    version = tmp_path / "version"
    if driver:
        version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05\n")
    return HostPaths(dev=str(dev), driver_version_file=str(version))


def _by_name(checks):
    return {c.name: c for c in checks}


def test_no_driver_fails_the_driver_check_only_and_skips_what_needs_it(tmp_path):
    fake = parse_fake_spec("2xA100-SXM4-40GB;fail=nodriver")
    checks = run_doctor(fake, None, _paths(tmp_path, driver=False), None)
    named = _by_name(checks)
    assert named["nvidia driver"].status == FAIL
    assert named["nvml"].status == SKIP
    assert "nvidia driver" in named["nvml"].detail and "Driver Not Loaded" in named["nvml"].detail
    assert named["gpu health"].status == SKIP
    assert named["device nodes"].status == SKIP and "nvidia driver" in named["device nodes"].detail
    assert [c.name for c in checks if c.status == FAIL] == ["nvidia driver"]


def test_a_gpu_whose_health_cannot_be_read_is_one_fail(tmp_path):
    checks = run_doctor(parse_fake_spec("2xA100-SXM4-40GB;health-error=1"), None, _paths(tmp_path), None)
    named = _by_name(checks)
    assert named["gpu health"].status == FAIL and "health cannot be read" in named["gpu health"].detail
    assert named["nvml"].status == PASS
    assert [c.name for c in checks if c.status == FAIL] == ["gpu health"]
    assert failed(checks)


def test_other_nvml_problems_still_fail_nvml(tmp_path):
    checks = run_doctor(parse_fake_spec("2xA100-SXM4-40GB;lost=1"), None, _paths(tmp_path), None)
    assert _by_name(checks)["nvml"].status == FAIL
    fake = parse_fake_spec("2xA100-SXM4-40GB;fail=nodriver")
    with_driver = run_doctor(fake, None, _paths(tmp_path / "b"), None)
    assert _by_name(with_driver)["nvml"].status == FAIL  # the driver file is there: NVML's own failure
