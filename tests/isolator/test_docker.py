"""isolator.docker against a real Docker Engine (the session's private dockerd) and, for the exact
request bodies, through a recording proxy in front of it."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
import uuid

import docker
import pytest

from isolator.containers import (
    LABEL_FRAMEWORK_ID,
    LABEL_GPUS,
    LABEL_MANAGED,
    LABEL_TASK_ID,
    SANDBOX_MOUNT,
    ContainerNotFoundError,
    ContainerSpec,
    ContainerTimeoutError,
    DockerLaunchError,
    DockerUnavailableError,
    GpuMode,
    GpuRequestRejectedError,
    ImageNotFoundError,
)
from isolator.docker import DockerLauncher, connect, detect_gpu_mode

pytestmark = pytest.mark.docker

ENGINE_GPU_ANSWER = 'could not select device driver "" with capabilities: [[gpu]]'
TEST_LABELS = {"mesos-gpu.test-run": "1"}


def spec(image: str, **kwargs) -> ContainerSpec:
    kwargs.setdefault("labels", TEST_LABELS)
    return ContainerSpec(image=image, **kwargs)


@pytest.fixture
def launcher(docker_client) -> DockerLauncher:
    return DockerLauncher(docker_client, gpu_mode=GpuMode.DEVICE_REQUEST)


def test_runs_to_completion_with_env_and_sandbox(launcher, docker_image, tmp_path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    cid = launcher.run(
        spec(
            docker_image,
            command='echo "hello $GREETING"; echo oops >&2; echo data > $MESOS_SANDBOX/out.txt; pwd',
            env={"GREETING": "mesos"},
            sandbox=str(sandbox),
            framework_id="fw-1",
            task_id="task-1",
        )
    )
    try:
        assert launcher.wait(cid, timeout=30) == 0
        assert (sandbox / "out.txt").read_text() == "data\n"
        launcher.copy_logs(cid, str(sandbox))
        assert (sandbox / "stdout").read_text() == "hello mesos\n/\n"
        assert (sandbox / "stderr").read_text() == "oops\n"
        assert launcher.status(cid) == "exited"
        assert launcher.exit_code(cid) == 0
    finally:
        launcher.remove(cid)


def test_followed_logs_arrive_per_stream_in_order(launcher, docker_image):
    chunks: list[tuple[str, bytes]] = []
    command = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.05; done"
    cid = launcher.run(spec(docker_image, command=command))
    try:
        follower = launcher.follow_logs(cid, lambda stream, data: chunks.append((stream, data)))
        assert launcher.wait(cid, timeout=30) == 0
        assert follower.finish(10) == []
        joined = {name: b"".join(d for s, d in chunks if s == name) for name in ("stdout", "stderr")}
        assert joined == {"stdout": b"out1\nout2\nout3\n", "stderr": b"err1\nerr2\nerr3\n"}
        assert follower.received == {"stdout": 15, "stderr": 15}
    finally:
        launcher.remove(cid)


def test_following_a_container_that_is_gone_says_so(launcher):
    chunks: list[tuple[str, bytes]] = []
    follower = launcher.follow_logs("0" * 64, lambda stream, data: chunks.append((stream, data)))
    problems = follower.finish(10)
    assert set(follower.failed) == {"stdout", "stderr"} and chunks == []
    assert [p.split(":")[0] for p in problems] == [
        "cannot copy the stdout of 000000000000",
        "cannot copy the stderr of 000000000000",
    ]


def test_exit_codes_shell_and_argv(launcher, docker_image):
    shell = launcher.run(spec(docker_image, command="exit 3"))
    argv = launcher.run(spec(docker_image, command=["/bin/false"]))
    default = launcher.run(spec(docker_image, command=None))  # image CMD /bin/sh, no stdin: exits 0
    try:
        assert launcher.wait(shell, timeout=30) == 3
        assert launcher.wait(argv, timeout=30) == 1
        assert launcher.wait(default, timeout=30) == 0
    finally:
        for cid in (shell, argv, default):
            launcher.remove(cid)


def test_argv_is_not_run_through_a_shell(launcher, docker_image, tmp_path):
    cid = launcher.run(spec(docker_image, command=["echo", "$HOME", "a b"]))
    try:
        assert launcher.wait(cid, timeout=30) == 0
        assert launcher.logs(cid) == (b"$HOME a b\n", b"")
    finally:
        launcher.remove(cid)


def test_stop_with_grace_delivers_sigterm_first(launcher, docker_image):
    cid = launcher.run(
        spec(
            docker_image,
            command="trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        )
    )
    try:
        _wait_for_output(launcher, cid, b"ready")
        started = time.monotonic()
        launcher.stop(cid, grace=10)
        assert time.monotonic() - started < 5
        assert launcher.wait(cid, timeout=10) == 7
        assert launcher.logs(cid)[0] == b"ready\ngot-term\n"
    finally:
        launcher.remove(cid)


def test_stop_kills_after_grace_when_term_is_ignored(launcher, docker_image):
    cid = launcher.run(spec(docker_image, command="trap '' TERM; echo ready; while true; do sleep 0.1; done"))
    try:
        _wait_for_output(launcher, cid, b"ready")
        started = time.monotonic()
        launcher.stop(cid, grace=1)
        elapsed = time.monotonic() - started
        assert 0.9 < elapsed < 8
        assert launcher.wait(cid, timeout=10) == 137  # SIGKILL
    finally:
        launcher.remove(cid)


def test_labels_and_list_by_label(launcher, docker_image):
    framework = f"fw-{uuid.uuid4().hex[:8]}"
    one = launcher.run(spec(docker_image, command="sleep 30", framework_id=framework, task_id="a"))
    two = launcher.run(
        spec(docker_image, command="true", framework_id=framework, task_id="b", executor_id="e")
    )
    try:
        refs = launcher.list_by_label({LABEL_FRAMEWORK_ID: framework})
        assert sorted(r.id for r in refs) == sorted([one, two])
        only_a = launcher.list_by_label({LABEL_FRAMEWORK_ID: framework, LABEL_TASK_ID: "a"})
        assert [r.id for r in only_a] == [one]
        assert only_a[0].labels[LABEL_MANAGED] == "true"
        assert only_a[0].labels["mesos-gpu.test-run"] == "1"
        assert only_a[0].gpus == ()
        assert only_a[0].status == "running"
        assert launcher.remove_all(refs) == [r.id for r in refs]
        assert launcher.list_by_label({LABEL_FRAMEWORK_ID: framework}) == []
    finally:
        launcher.remove(one)
        launcher.remove(two)


def test_limits_never_privileged_no_network(launcher, docker_client, docker_image):
    cid = launcher.run(
        spec(
            docker_image,
            command="cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/class/net",
            cpus=0.5,
            mem_mb=64,
        )
    )
    try:
        assert launcher.wait(cid, timeout=30) == 0
        host_config = docker_client.api.inspect_container(cid)["HostConfig"]
        assert host_config["NanoCpus"] == 500_000_000
        assert host_config["Memory"] == 64 * 1024 * 1024
        assert host_config["MemorySwap"] == 64 * 1024 * 1024
        assert host_config["Privileged"] is False
        assert host_config["NetworkMode"] == "none"
        assert host_config["DeviceRequests"] is None
        out = launcher.logs(cid)[0].decode().split()
        assert out[0] == str(64 * 1024 * 1024)  # the cgroup limit seen from inside
        assert out[1:] == ["lo"]  # network_mode none: loopback only
    finally:
        launcher.remove(cid)


def test_no_gpus_means_nvidia_visible_devices_void(launcher, docker_image):
    cid = launcher.run(spec(docker_image, command="echo $NVIDIA_VISIBLE_DEVICES"))
    try:
        assert launcher.wait(cid, timeout=30) == 0
        assert launcher.logs(cid)[0] == b"void\n"
    finally:
        launcher.remove(cid)


def test_gpu_request_on_gpu_less_host_is_the_engines_exact_500(launcher, docker_image):
    task = f"gpu-{uuid.uuid4().hex[:8]}"
    with pytest.raises(GpuRequestRejectedError) as caught:
        launcher.run(spec(docker_image, command="true", gpus=("0",), task_id=task))
    assert caught.value.status_code == 500
    assert caught.value.engine_message == ENGINE_GPU_ANSWER
    assert "NVIDIA Container Toolkit" in str(caught.value)
    assert launcher.list_by_label({LABEL_TASK_ID: task}) == []  # nothing left behind


@pytest.mark.parametrize(
    ("gpus", "device_ids"),
    [
        (("0",), ["0"]),
        (("1", "3"), ["1", "3"]),
        (("0", "1", "2", "3", "4", "5", "6", "7"), ["0", "1", "2", "3", "4", "5", "6", "7"]),
        (
            ("GPU-3b6f8a2c-1d4e-4f5a-9b7c-0e1f2a3b4c5d",),
            ["GPU-3b6f8a2c-1d4e-4f5a-9b7c-0e1f2a3b4c5d"],
        ),
        (
            ("GPU-aaaaaaaa-0000-0000-0000-000000000001", "GPU-aaaaaaaa-0000-0000-0000-000000000002"),
            ["GPU-aaaaaaaa-0000-0000-0000-000000000001", "GPU-aaaaaaaa-0000-0000-0000-000000000002"],
        ),
    ],
)
def test_exact_device_requests_body_per_layout(docker_recorder, docker_image, gpus, device_ids):
    launcher = DockerLauncher(docker_recorder.client(), gpu_mode=GpuMode.DEVICE_REQUEST)
    with pytest.raises(GpuRequestRejectedError):
        launcher.run(spec(docker_image, command="true", gpus=gpus))
    [create] = docker_recorder.creates()
    body = create.json()
    assert body["HostConfig"]["DeviceRequests"] == [
        {"Driver": "", "Count": 0, "DeviceIDs": device_ids, "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert body["HostConfig"].get("Privileged", False) is False  # the SDK omits a false flag
    assert f"NVIDIA_VISIBLE_DEVICES={','.join(device_ids)}" in body["Env"]
    assert body["Labels"][LABEL_GPUS] == ",".join(device_ids)
    # The engine accepts the create and refuses the start; the launcher then removes the container.
    assert create.status == 201
    cid = json.loads(create.response)["Id"]
    [start] = [r for r in docker_recorder.requests if r.path.endswith(f"/containers/{cid}/start")]
    assert start.status == 500
    assert json.loads(start.response) == {"message": ENGINE_GPU_ANSWER}
    [delete] = [r for r in docker_recorder.requests if r.method == "DELETE"]
    assert delete.path.split("?")[0].endswith(f"/containers/{cid}") and delete.status == 204


def test_no_gpus_sends_no_device_requests(docker_recorder, docker_image):
    launcher = DockerLauncher(docker_recorder.client(), gpu_mode=GpuMode.DEVICE_REQUEST)
    cid = launcher.run(spec(docker_image, command="true", cpus=2, mem_mb=128))
    try:
        [create] = docker_recorder.creates()
        host_config = create.json()["HostConfig"]
        assert "DeviceRequests" not in host_config
        assert host_config["NanoCpus"] == 2_000_000_000
        assert host_config["Memory"] == 128 * 1024 * 1024
        assert host_config["NetworkMode"] == "none"
        assert create.status == 201
    finally:
        launcher.remove(cid)


def _fake_device_dir(tmp_path, minors):
    """Char devices 1:3 (/dev/null) named like the NVIDIA nodes, to map through the real engine."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ["nvidiactl", "nvidia-uvm", *(f"nvidia{m}" for m in minors)]:
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return dev


def test_legacy_mode_maps_only_the_given_devices_and_driver_volume(docker_client, docker_image, tmp_path):
    dev = _fake_device_dir(tmp_path, minors=[0, 1, 2, 3])
    driver = tmp_path / "nvidia-driver"
    (driver / "bin").mkdir(parents=True)
    smi = driver / "bin" / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho fake-smi\n")
    smi.chmod(0o755)
    launcher = DockerLauncher(
        docker_client,
        gpu_mode=GpuMode.LEGACY,
        legacy_minors={"GPU-a": 1, "GPU-b": 3},
        legacy_driver_volume=str(driver),
        device_dir=str(dev),
    )
    cid = launcher.run(
        spec(
            docker_image,
            command=(
                "ls /dev | grep nvidia; nvidia-smi; echo $PATH; echo $LD_LIBRARY_PATH;"
                " touch /usr/local/nvidia/x"
            ),
            gpus=("GPU-a", "GPU-b"),
        )
    )
    try:
        assert launcher.wait(cid, timeout=30) == 1  # the driver volume is read-only
        out, err = launcher.logs(cid)
        assert out.decode().splitlines() == [
            "nvidia-uvm",
            "nvidia1",
            "nvidia3",
            "nvidiactl",
            "fake-smi",
            "/bin:/usr/local/nvidia/bin",
            "/usr/local/cuda/compat:/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
        ]
        assert b"Read-only file system" in err
        host_config = docker_client.api.inspect_container(cid)["HostConfig"]
        assert host_config["Privileged"] is False
        assert host_config["DeviceRequests"] is None
    finally:
        launcher.remove(cid)


def test_legacy_mode_needs_minor_numbers(docker_client, docker_image):
    launcher = DockerLauncher(docker_client, gpu_mode=GpuMode.LEGACY, legacy_minors={"GPU-a": 0})
    with pytest.raises(DockerLaunchError, match="minor number of device 'GPU-x'"):
        launcher.run(spec(docker_image, command="true", gpus=("GPU-x",)))


def test_detect_gpu_mode_without_toolkit_is_legacy(docker_client):
    assert detect_gpu_mode(docker_client) is GpuMode.LEGACY


def test_wait_timeout(launcher, docker_image):
    cid = launcher.run(spec(docker_image, command="sleep 30"))
    try:
        with pytest.raises(ContainerTimeoutError):
            launcher.wait(cid, timeout=0.5)
    finally:
        launcher.remove(cid)
    with pytest.raises(ContainerNotFoundError):
        launcher.wait(cid, timeout=1)
    launcher.remove(cid)  # removing a removed container is fine


def test_missing_image(launcher):
    with pytest.raises(ImageNotFoundError, match="no-such-image"):
        launcher.run(spec("mesos-gpu-test/no-such-image:1", command="true"))


def test_unreachable_engine():
    # A closed TCP port: docker-py's unix adapter would leak the socket of a failed connect (its
    # bug; `isolator.docker.connect` avoids it), urllib3's TCP path closes it.
    client = docker.DockerClient(base_url="tcp://127.0.0.1:1", version="1.41", timeout=2)
    launcher = DockerLauncher(client)
    try:
        assert launcher.available() is False
        with pytest.raises(DockerUnavailableError):
            launcher.run(ContainerSpec(image="x", command="true"))
        with pytest.raises(DockerUnavailableError):
            launcher.list_by_label()
    finally:
        client.close()


def test_connect_to_a_missing_or_dead_socket_fails_cleanly(tmp_path):
    with pytest.raises(DockerUnavailableError, match="does not exist"):
        connect(f"unix://{tmp_path}/nothing.sock", timeout=2)
    dead = tmp_path / "dead.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(dead))
    listener.close()  # the file stays, nothing listens: connection refused
    with pytest.raises(DockerUnavailableError, match="no Docker engine answers"):
        connect(f"unix://{dead}", timeout=2)


def test_available(launcher):
    assert launcher.available() is True


def test_sandbox_mount_point_constant():
    assert SANDBOX_MOUNT == "/mnt/mesos/sandbox"


def _wait_for_output(launcher, cid, marker, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in launcher.logs(cid)[0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"{marker!r} never appeared in the output of {cid[:12]}")
