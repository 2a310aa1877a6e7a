"""The engine-free side of the Docker launcher (isolator.containers): the create arguments built from a
spec in each GPU mode, the labels, and the legacy device and environment rules. No engine needed; the
same arguments against a real engine are in test_docker.py."""

from __future__ import annotations

import os

import pytest

from isolator.containers import (
    LABEL_EXECUTOR_ID,
    LABEL_FRAMEWORK_ID,
    LABEL_GPUS,
    LABEL_MANAGED,
    LABEL_TASK_ID,
    SANDBOX_MOUNT,
    ContainerRef,
    ContainerSpec,
    DockerLaunchError,
    GpuAccess,
    GpuMode,
    create_arguments,
    legacy_devices,
    legacy_env,
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LIBS = "/usr/local/cuda/compat:/usr/local/nvidia/lib:/usr/local/nvidia/lib64"


def no_image_env(image: str) -> list[str]:
    raise AssertionError(f"the image environment of {image} must not be read")


def test_a_bare_spec_runs_unprivileged_without_gpus():
    kwargs = create_arguments(ContainerSpec(image="img"), GpuAccess(), no_image_env)
    assert kwargs == {
        "image": "img",
        "labels": {LABEL_MANAGED: "true", LABEL_GPUS: ""},
        "network_mode": "none",
        "privileged": False,
        "detach": True,
        "environment": {"NVIDIA_VISIBLE_DEVICES": "void"},
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"command": "echo $X"}, {"entrypoint": ["/bin/sh", "-c"], "command": ["echo $X"]}),
        ({"command": ("/bin/echo", "a b")}, {"command": ["/bin/echo", "a b"]}),
        ({"cpus": 1.5}, {"nano_cpus": 1_500_000_000}),
        ({"mem_mb": 512}, {"mem_limit": "512m", "memswap_limit": "512m"}),
        ({"name": "n", "user": "1", "working_dir": "/w"}, {"name": "n", "user": "1", "working_dir": "/w"}),
    ],
    ids=["shell-command", "argv", "cpus", "memory-with-swap", "name-user-dir"],
)
def test_command_and_limits(changes, expected):
    kwargs = create_arguments(ContainerSpec(image="img", **changes), GpuAccess(), no_image_env)
    assert {k: kwargs[k] for k in expected} == expected


def test_the_sandbox_is_mounted_and_named_in_the_environment(tmp_path):
    spec = ContainerSpec(image="img", sandbox=str(tmp_path), env={"A": "1"})
    kwargs = create_arguments(spec, GpuAccess(), no_image_env)
    assert kwargs["volumes"] == {str(tmp_path): {"bind": SANDBOX_MOUNT, "mode": "rw"}}
    assert kwargs["environment"] == {
        "A": "1", "MESOS_SANDBOX": SANDBOX_MOUNT, "NVIDIA_VISIBLE_DEVICES": "void",
    }  # fmt: skip


def test_the_labels_name_framework_task_executor_and_gpus():
    spec = ContainerSpec(image="img", gpus=("GPU-a", "1"), framework_id="fw", task_id="t", executor_id="ex",
                         labels={"mine": "x"})  # fmt: skip
    assert spec.all_labels() == {
        "mine": "x", LABEL_MANAGED: "true", LABEL_FRAMEWORK_ID: "fw", LABEL_TASK_ID: "t",
        LABEL_EXECUTOR_ID: "ex", LABEL_GPUS: "GPU-a,1",
    }  # fmt: skip
    assert ContainerRef("id", "n", "running", spec.all_labels()).gpus == ("GPU-a", "1")
    assert ContainerRef("id", "n", "running", {}).gpus == ()


def test_device_request_mode_asks_for_exactly_those_devices():
    spec = ContainerSpec(image="img", gpus=("GPU-a", "3"))
    kwargs = create_arguments(spec, GpuAccess(GpuMode.DEVICE_REQUEST), no_image_env)
    assert kwargs["device_requests"] == [{"device_ids": ["GPU-a", "3"], "capabilities": [["gpu"]]}]
    assert kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == "GPU-a,3"
    assert "devices" not in kwargs


def _device_dir(tmp_path, names):
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in names:
        (dev / name).touch()
    return str(dev)


def test_legacy_mode_maps_devices_and_the_driver_volume(tmp_path):
    dev = _device_dir(tmp_path, ["nvidiactl", "nvidia-uvm", "nvidia1", "nvidia3"])
    access = GpuAccess(GpuMode.LEGACY, {"GPU-a": 1, "GPU-b": 3}, "/drv", dev)
    spec = ContainerSpec(image="img", gpus=("GPU-a", "GPU-b"))
    kwargs = create_arguments(spec, access, lambda image: ["PATH=/bin", "HOME=/root"])
    assert kwargs["devices"] == [
        f"{dev}/nvidiactl:/dev/nvidiactl:rwm",
        f"{dev}/nvidia-uvm:/dev/nvidia-uvm:rwm",
        f"{dev}/nvidia1:/dev/nvidia1:rwm",
        f"{dev}/nvidia3:/dev/nvidia3:rwm",
    ]
    assert kwargs["volumes"] == {"/drv": {"bind": "/usr/local/nvidia", "mode": "ro"}}
    assert kwargs["environment"] == {
        "PATH": "/bin:/usr/local/nvidia/bin", "LD_LIBRARY_PATH": LIBS, "NVIDIA_VISIBLE_DEVICES": "void",
    }  # fmt: skip
    assert "device_requests" not in kwargs


def test_legacy_mode_without_a_driver_volume_never_reads_the_image(tmp_path):
    access = GpuAccess(GpuMode.LEGACY, {"GPU-a": 0}, None, _device_dir(tmp_path, []))
    kwargs = create_arguments(ContainerSpec(image="img", gpus=("GPU-a",)), access, no_image_env)
    assert kwargs["devices"] == [f"{os.path.join(access.device_dir, 'nvidia0')}:/dev/nvidia0:rwm"]
    assert "volumes" not in kwargs


def test_legacy_mode_needs_each_gpus_minor(tmp_path):
    with pytest.raises(DockerLaunchError, match="minor number of device 'GPU-x'"):
        legacy_devices(("GPU-x",), {"GPU-a": 0}, str(tmp_path))


@pytest.mark.parametrize(
    ("image_env", "env", "expected"),
    [
        ([], {}, {"PATH": f"{DEFAULT_PATH}:/usr/local/nvidia/bin", "LD_LIBRARY_PATH": LIBS}),
        (["PATH=/img", "LD_LIBRARY_PATH=/imglib"], {},
         {"PATH": "/img:/usr/local/nvidia/bin", "LD_LIBRARY_PATH": f"/imglib:{LIBS}"}),
        (["PATH=/img", "BROKEN"], {"PATH": "/task"},
         {"PATH": "/task:/usr/local/nvidia/bin", "LD_LIBRARY_PATH": LIBS}),
    ],
    ids=["defaults", "the-images-own", "the-task-wins"],
)  # fmt: skip
def test_legacy_environment_extends_the_images(image_env, env, expected):
    assert legacy_env(image_env, env) == expected
