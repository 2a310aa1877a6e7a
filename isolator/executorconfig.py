"""The nvidia-docker executor's configuration: its command line, the Mesos executor environment
(MESOS_FRAMEWORK_ID, MESOS_SANDBOX, ...) and the MESOS_GPU_* variables, and the Docker launcher they
name."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from isolator import docker as isolator_docker
from isolator.devices import CgroupPaths, GpuInventory, GpuSource
from isolator.docker import DockerLauncher, GpuMode
from isolator.taskinputs import DEFAULT_SHUTDOWN_GRACE, shutdown_grace

DEFAULT_ALLOCATOR_DIR = "/var/run/mesos-gpu"
ALLOCATOR_STATE_FILE = "gpus.json"
DEFAULT_NETWORK = "host"


@dataclass(frozen=True)
class ExecutorConfig:
    """How the executor reaches the engine, finds GPUs and names its sandbox."""

    framework_id: str
    executor_id: str
    agent_id: str = ""
    sandbox: str = "."  # as this process sees it (MESOS_SANDBOX)
    host_sandbox: str = "."  # as the engine sees it (MESOS_DIRECTORY): the bind-mount source
    docker_host: str | None = None
    allocator_dir: str = DEFAULT_ALLOCATOR_DIR
    gpu_source: GpuSource = GpuSource.AUTO
    gpu_mode: str = "device-request"  # device-request | legacy | auto (detect the nvidia runtime)
    nvidia_driver_volume: str | None = None
    network: str = DEFAULT_NETWORK
    fake_gpus: str | None = None
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    cgroup_paths: CgroupPaths = field(default_factory=CgroupPaths)
    exit_delay: float = 0.5  # after the last terminal update, before the driver stops
    output_to_stdio: bool = False  # container output through this process's stdout/stderr
    update_retry_seconds: float = 30.0

    @property
    def allocator_state(self) -> str:
        return os.path.join(self.allocator_dir, ALLOCATOR_STATE_FILE)

    def owner(self, task_id: str) -> str:
        """The allocator owner of a task's GPUs."""
        return f"{self.owner_prefix}{task_id}"

    @property
    def owner_prefix(self) -> str:
        return f"{self.framework_id}/{self.executor_id}/"


def build_parser(
    prog: str = "python -m isolator.executor",
    description: str = "mesos-gpu's nvidia-docker executor (started by a Mesos agent, not by hand).",
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--docker-host", help="Docker Engine URL (default: $MESOS_GPU_DOCKER_HOST, "
                        "else the SDK's $DOCKER_HOST / default socket)")  # fmt: skip
    parser.add_argument("--allocator-dir", help="directory of the host GPU allocator's state "
                        f"(default: $MESOS_GPU_ALLOCATOR_DIR or {DEFAULT_ALLOCATOR_DIR})")  # fmt: skip
    parser.add_argument(
        "--gpu-source",
        choices=[s.value for s in GpuSource],
        help="where the task's GPUs come from (default: $MESOS_GPU_GPU_SOURCE or auto)",
    )
    parser.add_argument("--gpu-mode", choices=["device-request", "legacy", "auto"],
                        help="how GPUs reach the container (default: $MESOS_GPU_DOCKER_GPU_MODE or "
                        "device-request, i.e. the NVIDIA Container Toolkit)")  # fmt: skip
    parser.add_argument("--nvidia-driver-volume", help="host directory of the driver volume (legacy mode)")
    parser.add_argument("--network", help="container network mode (default: $MESOS_GPU_DOCKER_NETWORK "
                        f"or {DEFAULT_NETWORK}); a payload's \"network\" wins")  # fmt: skip
    parser.add_argument("--fake-gpus", metavar="SPEC", help="a fake NVML inventory (demos, tests)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from(
    argv: Sequence[str] | None, env: Mapping[str, str], parser: argparse.ArgumentParser | None = None
) -> tuple[ExecutorConfig, str]:
    """The configuration from the command line and the Mesos executor environment; and the log level."""
    args = (parser or build_parser()).parse_args(argv)
    sandbox = env.get("MESOS_SANDBOX") or env.get("MESOS_DIRECTORY") or os.getcwd()
    config = ExecutorConfig(
        framework_id=env.get("MESOS_FRAMEWORK_ID", ""),
        executor_id=env.get("MESOS_EXECUTOR_ID", ""),
        agent_id=env.get("MESOS_SLAVE_ID", "") or env.get("MESOS_AGENT_ID", ""),
        sandbox=sandbox,
        host_sandbox=env.get("MESOS_DIRECTORY") or sandbox,
        docker_host=args.docker_host or env.get("MESOS_GPU_DOCKER_HOST") or None,
        allocator_dir=args.allocator_dir or env.get("MESOS_GPU_ALLOCATOR_DIR") or DEFAULT_ALLOCATOR_DIR,
        gpu_source=GpuSource(args.gpu_source or env.get("MESOS_GPU_GPU_SOURCE") or "auto"),
        gpu_mode=args.gpu_mode or env.get("MESOS_GPU_DOCKER_GPU_MODE") or "device-request",
        nvidia_driver_volume=args.nvidia_driver_volume or env.get("MESOS_GPU_NVIDIA_DRIVER_VOLUME") or None,
        network=args.network or env.get("MESOS_GPU_DOCKER_NETWORK") or DEFAULT_NETWORK,
        fake_gpus=args.fake_gpus or env.get("MESOS_GPU_FAKE_GPUS") or None,
        shutdown_grace=shutdown_grace(env),
        output_to_stdio=True,
    )
    return config, str(args.log_level)


def connect_launcher(config: ExecutorConfig, inventory: GpuInventory) -> DockerLauncher:
    """A DockerLauncher on the configured engine (the SDK stays imported in isolator/docker.py)."""
    client = isolator_docker.connect(config.docker_host, timeout=60)
    auto = config.gpu_mode == "auto"
    mode = isolator_docker.detect_gpu_mode(client) if auto else GpuMode(config.gpu_mode)
    return DockerLauncher(
        client,
        gpu_mode=mode,
        legacy_minors=inventory.legacy_minors() if mode is GpuMode.LEGACY else None,
        legacy_driver_volume=config.nvidia_driver_volume,
    )
