"""`mesos-gpu-agent config` and `doctor` on the fake NVML backend (several layouts, every failure
switch), against the real (absent) NVML, and the docker checks against the real engine."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from isolator.agentconfig import (
    agent_config,
    attribute_model,
    flag_errors,
    flags_from_env,
    gpus_in_resources,
    parse_flags,
    render,
)
from isolator.cli import main
from isolator.discovery import discover
from isolator.doctor import FAIL, PASS, SKIP, HostPaths, run_doctor
from isolator.fakenvml import parse_fake_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD = "filesystem/linux,docker/runtime,cgroups/devices,gpu/nvidia"


def config_of(spec, **kwargs):
    return agent_config(discover(parse_fake_spec(spec)), **kwargs)


@pytest.mark.parametrize(
    ("spec", "flags"),
    [
        (
            "1xTesla_T4@15G",
            {
                "resources": "gpus:1",
                "nvidia_gpu_devices": "0",
                "attributes": "gpu_model:Tesla-T4;gpu_memory_mib:15360;gpu_nvlink:false;gpu_nvlink_group:1;"
                "gpu_driver:535.104.05;gpu_cuda:12.2",
            },
        ),
        (
            "4xA100-PCIE-40GB;driver=550.54.15;cuda=12.4",
            {
                "resources": "gpus:4",
                "nvidia_gpu_devices": "0,1,2,3",
                "attributes": "gpu_model:A100-PCIE-40GB;gpu_memory_mib:40960;gpu_nvlink:false;"
                "gpu_nvlink_group:1;gpu_driver:550.54.15;gpu_cuda:12.4",
            },
        ),
        (
            "8xA100-SXM4-80GB;nvlink=pairs",
            {
                "resources": "gpus:8",
                "nvidia_gpu_devices": "0,1,2,3,4,5,6,7",
                "attributes": "gpu_model:A100-SXM4-80GB;gpu_memory_mib:81920;gpu_nvlink:true;"
                "gpu_nvlink_group:2;gpu_driver:535.104.05;gpu_cuda:12.2",
            },
        ),
        (
            "8xH100_80GB_HBM3;nvlink=all",
            {
                "resources": "gpus:8",
                "nvidia_gpu_devices": "0,1,2,3,4,5,6,7",
                "attributes": "gpu_model:H100-80GB-HBM3;gpu_memory_mib:81920;gpu_nvlink:true;"
                "gpu_nvlink_group:8;gpu_driver:535.104.05;gpu_cuda:12.2",
            },
        ),
        (
            "2xA100-SXM4-40GB,2xTesla_V100-SXM2-16GB;nvlink=0-1:12/2-3:6",
            {
                "resources": "gpus:4",
                "nvidia_gpu_devices": "0,1,2,3",
                "attributes": "gpu_model:A100-SXM4-40GB/Tesla-V100-SXM2-16GB;gpu_memory_mib:16384;"
                "gpu_nvlink:true;gpu_nvlink_group:2;gpu_driver:535.104.05;gpu_cuda:12.2",
            },
        ),
    ],
)
def test_config_for_layouts(spec, flags):
    config = config_of(spec)
    assert dict(config.flags) == {"isolation": GOOD, "image_providers": "docker", **flags}
    assert flag_errors(parse_flags(render(config).replace("\n", " ")), None) == []


def test_mixed_models_get_a_note():
    config = config_of("2xA100-SXM4-40GB,2xTesla_V100-SXM2-16GB")
    assert config.notes == (
        "mixed GPU models (A100-SXM4-40GB, Tesla-V100-SXM2-16GB): Mesos cannot choose which model a "
        "task gets; consider one agent per model or --nvidia_gpu_devices per model",
    )


def test_zero_gpus_gives_a_cpu_agent():
    config = config_of("0")
    assert dict(config.flags) == {
        "isolation": "filesystem/linux,docker/runtime,cgroups/cpu,cgroups/mem",
        "image_providers": "docker",
    }
    assert config.notes == ("no usable GPU: these are the flags of a CPU-only agent",)


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        ("ecc=2:1", "1 uncorrectable ECC errors since the driver loaded"),
        ("retired=2:64", "64 retired memory pages (limit 60): replace the GPU"),
        ("pending=2", "a page retirement is pending: reset the GPU or reboot"),
        ("remap-failure=2", "row remapping failed: replace the GPU"),
        ("xid=2:48", "critical XID events: 48"),
        (
            "health-error=2",
            "health cannot be read: nvmlDeviceGetTotalEccErrors failed: Unknown Error (NVML error 999)",
        ),
    ],
)
def test_unhealthy_gpu_is_left_out_of_the_flags(option, reason):
    config = config_of(f"4xA100-SXM4-40GB;nvlink=pairs;{option}")
    assert config.flags["resources"] == "gpus:3"
    assert config.flags["nvidia_gpu_devices"] == "0,1,3"
    assert "gpu_nvlink_group:1" in config.flags["attributes"]  # GPU 3 lost its NVLink partner
    assert config.notes[0] == f"GPU 2 (GPU-fa4e0000-0000-4000-8000-000000000002) left out: {reason}"
    included = config_of(f"4xA100-SXM4-40GB;{option}", include_unhealthy=True)
    assert included.flags["resources"] == "gpus:4"


def test_lost_gpu_is_left_out_with_a_note():
    config = config_of("4xA100-SXM4-40GB;lost=1")
    assert config.flags["nvidia_gpu_devices"] == "0,2,3"
    assert config.notes == ("left out: GPU 1: cannot be read: device failed: GPU is lost (NVML error 15)",)


def test_render_formats():
    config = config_of("2xA100-SXM4-40GB")
    assert render(config).splitlines()[0] == f"--isolation={GOOD}"
    env = render(config, "env").splitlines()
    assert env[2] == "MESOS_RESOURCES=gpus:2"
    assert env[4].startswith("MESOS_ATTRIBUTES='gpu_model:A100-SXM4-40GB;")
    assert json.loads(render(config, "json"))["flags"]["nvidia_gpu_devices"] == "0,1"


def test_attribute_model_names():
    assert attribute_model("NVIDIA A100-SXM4-80GB") == "A100-SXM4-80GB"
    assert attribute_model("Tesla V100-SXM2-16GB") == "Tesla-V100-SXM2-16GB"
    assert attribute_model("NVIDIA GeForce RTX 4090 (rev a1)") == "GeForce-RTX-4090-rev-a1"


# ---- flag consistency (Mesos' own texts) ------------------------------------------------------------


def errors(text, gpu_count=4):
    return [detail for detail, _fix in flag_errors(parse_flags(text), gpu_count)]


BASE = f"--isolation={GOOD} --image_providers=docker"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{BASE} --resources=cpus:8;gpus:2 --nvidia_gpu_devices=0,1", []),
        (f"{BASE} --resources=gpus(gpu-role):2 --nvidia_gpu_devices 2,3", []),
        (
            f"{BASE} --resources=gpus:4 --nvidia_gpu_devices=0,1",
            ["'--resources' and '--nvidia_gpu_devices' specify different numbers of GPU devices"],
        ),
        (
            f"{BASE} --resources=gpus:2",
            ["The `gpus` resource cannot be set without also setting `--nvidia_gpu_devices`"],
        ),
        (
            f"{BASE} --nvidia_gpu_devices=0",
            ["'--nvidia_gpus_devices' cannot be set without also setting 'gpus' in '--resources'"],
        ),
        (
            f"{BASE} --resources=gpus:0 --nvidia_gpu_devices=0",
            ["'--nvidia_gpus_devices' cannot be specified when '--resources' specifies 0 GPUs"],
        ),
        (
            f"{BASE} --resources=gpus:1.5 --nvidia_gpu_devices=0",
            ["The 'gpus' resource must be an non-negative integer"],
        ),
        (
            f"{BASE} --resources=gpus:2 --nvidia_gpu_devices=1,1",
            ["'--nvidia_gpu_devices' contains duplicates"],
        ),
        (
            f"{BASE} --resources=gpus:6 --nvidia_gpu_devices=0,1,2,3,4,5",
            [
                "The number of GPUs requested is greater than the number of GPUs available on the machine",
                "--nvidia_gpu_devices names GPUs [4, 5] but NVML sees 4 GPUs",
            ],
        ),
        (
            "--isolation=cgroups/devices --image_providers=docker --resources=gpus:1 --nvidia_gpu_devices=0",
            [
                "'--nvidia_gpus_devices' can only be specified if the `--isolation` flag contains"
                " 'gpu/nvidia'",
                "--isolation lacks gpu/nvidia: GPUs are advertised with no device isolation",
                "Docker images need --isolation with docker/runtime and --image_providers=docker",
            ],
        ),
        (
            "--isolation=gpu/nvidia,docker/runtime --image_providers=docker --resources=gpus:1 "
            "--nvidia_gpu_devices=0",
            [
                "--isolation lacks cgroups/devices, which gpu/nvidia needs",
                "--isolation lacks filesystem/linux, which gpu/nvidia needs",
            ],
        ),
        (
            f"{BASE} --containerizers=docker --resources=gpus:1 --nvidia_gpu_devices=0",
            [
                "GPU support needs the Mesos containerizer, but --containerizers is 'docker' "
                "(the Docker containerizer has no GPU support)"
            ],
        ),
        (
            f"{BASE} --resources=gpus:1 --nvidia_gpu_devices=zero",
            ["--nvidia_gpu_devices='zero' is not a list of GPU indices"],
        ),
    ],
)
def test_flag_errors(text, expected):
    assert errors(text) == expected


def test_resources_json_and_env_flags():
    assert gpus_in_resources('[{"name": "gpus", "type": "SCALAR", "scalar": {"value": 2}}]') == 2
    two_roles = json.dumps([
        {"name": "gpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "ml"},
        {"name": "gpus", "type": "SCALAR", "scalar": {"value": 2}},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 8}},
    ])  # fmt: skip
    assert gpus_in_resources(two_roles) == 3
    assert gpus_in_resources('[{"name": "gpus", "type": "SCALAR", "scalar": {"value": 0}}]') == 0
    assert gpus_in_resources('[{"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}}]') is None
    with pytest.raises(ValueError, match=r"without scalar\.value"):
        gpus_in_resources('[{"name": "gpus", "type": "SCALAR"}]')
    assert gpus_in_resources("cpus:4;mem:1024") is None
    flags = flags_from_env(
        {"MESOS_ISOLATION": GOOD, "MESOS_RESOURCES": "gpus:1", "MESOS_NVIDIA_GPU_DEVICES": "0"}
    )
    assert flags.get("resources") == "gpus:1" and flags.get("nvidia_gpu_devices") == "0"


# ---- doctor ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_host_paths(tmp_path):
    """A /dev with the NVIDIA nodes (char devices 1:3) and a driver version file."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidiactl", "nvidia-uvm", "nvidia0", "nvidia1"):
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    version = tmp_path / "version"
    version.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
    )
    return HostPaths(dev=str(dev), driver_version_file=str(version))


def statuses(checks):
    return [(c.name, c.status) for c in checks]


def test_doctor_all_good(fake_host_paths):
    flags = parse_flags(f"{BASE} --resources=gpus:2 --nvidia_gpu_devices=0,1")
    checks = run_doctor(parse_fake_spec("2xA100-SXM4-40GB"), flags, fake_host_paths, None)
    assert statuses(checks) == [
        ("nvidia driver", PASS),
        ("device nodes", PASS),
        ("nvml", PASS),
        ("gpu health", PASS),
        ("agent flags", PASS),
        ("gpu sharing", SKIP),  # no --attributes given
        ("docker", SKIP),
    ]
    assert checks[0].detail.startswith("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05")


def test_doctor_missing_device_node_and_driver(tmp_path, fake_host_paths):
    os.unlink(os.path.join(fake_host_paths.dev, "nvidia1"))
    paths = HostPaths(dev=fake_host_paths.dev, driver_version_file=str(tmp_path / "absent"))
    checks = run_doctor(parse_fake_spec("2xA100-SXM4-40GB"), None, paths, None)
    assert checks[0].status == FAIL and "modprobe nvidia" in checks[0].fix
    # one cause, one FAIL: with the driver missing, the device nodes are not judged again
    assert checks[1].status == SKIP and "nvidia driver" in checks[1].detail
    # with the driver there, the missing node is the failure
    driver_present = run_doctor(parse_fake_spec("2xA100-SXM4-40GB"), None, fake_host_paths, None)[1]
    assert driver_present.status == FAIL and driver_present.detail == f"missing {fake_host_paths.dev}/nvidia1"


@pytest.mark.parametrize(
    ("switch", "check", "detail"),
    [
        ("fail=nolib", "nvml", "NVML is unavailable: NVML Shared Library Not Found (NVML error 12)"),
        ("fail=nodriver", "nvml", "NVML is unavailable: Driver Not Loaded (NVML error 9)"),
        ("fail=noperm", "nvml", "NVML is unavailable: Insufficient Permissions (NVML error 4)"),
        ("fail=mismatch", "nvml", "RM has detected an NVML/RM version mismatch."),
        ("fail=device_count", "nvml", "device_count failed: Unknown Error (NVML error 999)"),
        ("fail=driver_version", "nvml", "driver_version failed: Unknown Error (NVML error 999)"),
        ("fail=cuda_driver_version", "nvml", "cuda_driver_version failed"),
        ("fail=xid_events", "nvml", "XID events cannot be read"),
        ("lost=1", "nvml", "GPU 1: cannot be read: device failed: GPU is lost (NVML error 15)"),
        (
            "ecc=1:5",
            "gpu health",
            "GPU 1 (GPU-fa4e0000-0000-4000-8000-000000000001): 5 uncorrectable ECC errors",
        ),
        ("retired=0:61", "gpu health", "61 retired memory pages"),
        ("pending=0", "gpu health", "a page retirement is pending"),
        ("remap-failure=0", "gpu health", "row remapping failed"),
        ("xid=0:79", "gpu health", "critical XID events: 79"),
        ("health-error=1", "gpu health", "health cannot be read"),
    ],
)
def test_doctor_reports_every_failure_switch(fake_host_paths, switch, check, detail):
    flags = parse_flags(f"{BASE} --resources=gpus:2 --nvidia_gpu_devices=0,1")
    checks = run_doctor(parse_fake_spec(f"2xA100-SXM4-40GB;{switch}"), flags, fake_host_paths, None)
    [found] = [c for c in checks if c.name == check]
    assert found.status == FAIL
    assert detail in found.detail
    assert found.fix


def test_doctor_flags_unhealthy_gpu_still_offered(fake_host_paths):
    flags = parse_flags(f"{BASE} --resources=gpus:2 --nvidia_gpu_devices=0,1")
    checks = run_doctor(parse_fake_spec("2xA100-SXM4-40GB;ecc=1:2"), flags, fake_host_paths, None)
    [offered] = [c for c in checks if c.name == "agent flags"]
    assert (
        offered.detail
        == "--nvidia_gpu_devices offers unhealthy GPUs: GPU 1 (2 uncorrectable ECC errors since the driver"
        " loaded)"
    )
    assert "--resources=gpus:1 --nvidia_gpu_devices=0 " in offered.fix


def test_unsupported_switches_do_not_fail_the_doctor(fake_host_paths):
    checks = run_doctor(
        parse_fake_spec("2xA100-SXM4-40GB;nvlink-unsupported;xid-unsupported"), None, fake_host_paths, None
    )
    assert [c.status for c in checks if c.name in ("nvml", "gpu health")] == [PASS, PASS]


# ---- the command ---------------------------------------------------------------------------------------


def test_cli_config(capsys):
    assert main(["config", "--fake-gpus", "2xA100-SXM4-40GB;ecc=1:1"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[2:4] == ["--resources=gpus:1", "--nvidia_gpu_devices=0"]
    assert err.startswith("note: GPU 1 (GPU-fa4e0000-0000-4000-8000-000000000001) left out")
    assert main(["config", "--fake-gpus", "2xA100;frobnicate"]) == 2
    assert "unknown option 'frobnicate'" in capsys.readouterr().err


def test_cli_doctor_exit_codes(capsys):
    good = f"{BASE} --resources=gpus:2 --nvidia_gpu_devices=0,1"
    assert main(["doctor", "--fake-gpus", "2xA100-SXM4-40GB", "--no-docker", "--flags", good]) == 0
    assert capsys.readouterr().out.endswith("all checks passed\n")
    bad = f"{BASE} --resources=gpus:3 --nvidia_gpu_devices=0,1"
    assert main(["doctor", "--fake-gpus", "2xA100-SXM4-40GB", "--no-docker", "--flags", bad]) == 1
    out = capsys.readouterr().out
    assert "FAIL  agent flags    '--resources' and '--nvidia_gpu_devices' specify different numbers" in out
    assert "fix: gpus:3 must match the 2 devices listed" in out
    assert out.endswith("2 checks failed\n")  # + more GPUs than the machine has


def test_cli_doctor_flags_from_env(capsys, monkeypatch):
    monkeypatch.setenv("MESOS_ISOLATION", "cgroups/cpu,cgroups/mem")
    assert main(["doctor", "--fake-gpus", "1xT4", "--no-docker", "--flags-from-env"]) == 1
    assert "--isolation lacks gpu/nvidia: this agent offers no GPUs" in capsys.readouterr().out


def test_real_nvml_absent_gives_the_clear_error_not_a_traceback():
    """The installed command, run as a user would on this GPU-less host."""
    config = subprocess.run(
        [sys.executable, "-m", "isolator.cli", "config"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert config.returncode == 1
    assert config.stdout == ""
    assert config.stderr == (
        "mesos-gpu-agent: NVML is unavailable: NVML Shared Library Not Found (NVML error 12); "
        "libnvidia-ml.so.1 was not found: install the NVIDIA driver (e.g. apt-get install nvidia-driver) "
        "or add its library directory to the loader path\n"
    )
    doctor = subprocess.run(
        [sys.executable, "-m", "isolator.cli", "doctor", "--no-docker"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert doctor.returncode == 1
    assert "Traceback" not in doctor.stderr + doctor.stdout
    assert "SKIP  nvml" in doctor.stdout and "NVML Shared Library Not Found" in doctor.stdout


@pytest.mark.docker
def test_doctor_docker_checks_against_the_real_engine(docker_daemon, capsys, tmp_path):
    assert main(["doctor", "--fake-gpus", "1xT4", "--docker-host", docker_daemon.base_url]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "PASS docker the Docker Engine answers" in out
    assert (
        'FAIL nvidia runtime Docker has no nvidia runtime: containerizer "docker" jobs cannot get GPUs' in out
    )
    assert "fix: install nvidia-container-toolkit" in out
    missing = f"unix://{tmp_path}/none.sock"
    assert main(["doctor", "--fake-gpus", "1xT4", "--docker-host", missing]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "FAIL docker the Docker Engine does not answer" in out
    assert "SKIP nvidia runtime Docker is not reachable" in out
