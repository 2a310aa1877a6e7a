"""`mesos-gpu-agent doctor`: checks a GPU agent host (driver, device nodes, NVML health, agent flags, the
GPU sharing attributes against the host (memory, MPS binary, MIG mode and layout), Docker and the NVIDIA
runtime) and reports each as pass/fail/warn/skip with the fix for a failure. One cause is one FAIL: a check
that cannot run because of a failure already reported (device nodes and NVML without the kernel driver, a
GPU whose health cannot be read) is SKIP or leaves it to the check that reports it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from isolator.agentconfig import (
    ExistingFlags,
    agent_config,
    flag_errors,
    parse_attributes,
    render,
    sharing_attributes,
    unhealthy_listed,
)
from isolator.containers import EngineStatus as DockerStatus
from isolator.discovery import HostGpus, NvmlBackend, NvmlError, discover
from isolator.sharenvml import MPS_CONTROL, HostSharing, ShareNvml, sharing_facts
from mesos_gpu.core.sharing import ATTR_GPU_MEMORY, ATTR_GPU_MIG, ATTR_GPU_MPS

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class HostPaths:
    """Where the driver shows itself (overridable for tests)."""

    dev: str = "/dev"
    driver_version_file: str = "/proc/driver/nvidia/version"


def check_driver(paths: HostPaths, fake: bool) -> Check:
    if fake:
        return Check("nvidia driver", SKIP, "fake GPUs: the kernel driver is not checked")
    try:
        with open(paths.driver_version_file) as handle:
            first = handle.readline().strip()
    except OSError:
        return Check(
            "nvidia driver",
            FAIL,
            f"{paths.driver_version_file} is missing: the NVIDIA kernel driver is not loaded",
            "install the NVIDIA driver (340.29 or newer) and load it: modprobe nvidia",
        )
    return Check("nvidia driver", PASS, first)


def check_device_nodes(
    paths: HostPaths, host: HostGpus | None, fake: bool, driver_failed: bool = False
) -> Check:
    if fake:
        return Check("device nodes", SKIP, "fake GPUs: /dev/nvidia* are not checked")
    if driver_failed:  # the loaded driver makes them: their absence is the driver's failure
        return Check("device nodes", SKIP, "not checked: see nvidia driver")
    wanted = ["nvidiactl", "nvidia-uvm"]
    if host is not None:
        wanted += [f"nvidia{g.minor}" for g in host.ordered()]
    missing = [name for name in wanted if not os.path.exists(os.path.join(paths.dev, name))]
    if missing:
        return Check(
            "device nodes",
            FAIL,
            "missing " + ", ".join(f"{paths.dev}/{m}" for m in missing),
            "create them with nvidia-modprobe -u -c=0 (or run nvidia-smi once as root) and load nvidia-uvm",
        )
    return Check("device nodes", PASS, ", ".join(f"{paths.dev}/{w}" for w in wanted))


def check_nvml(discovered: HostGpus | NvmlError, driver_failed: bool = False) -> Check:
    """NVML's own state. `driver_failed`: the driver check failed, which explains any NVML failure (SKIP);
    a GPU's unreadable health is left to `check_health`."""
    if isinstance(discovered, NvmlError):
        if driver_failed:
            return Check("nvml", SKIP, f"not checked: see nvidia driver ({discovered})")
        return Check("nvml", FAIL, str(discovered), "fix the NVIDIA driver installation (see the message)")
    problems = _own_problems(discovered)
    if problems:
        return Check(
            "nvml",
            FAIL,
            "; ".join(problems),
            "reset or reseat the GPU named (nvidia-smi -r), or reboot; check dmesg for XID errors",
        )
    return Check(
        "nvml",
        PASS,
        f"{len(discovered.gpus)} GPUs, driver {discovered.driver_version}, CUDA {discovered.cuda_version}",
    )


def _own_problems(host: HostGpus) -> list[str]:
    """The host's NVML problems less those `check_health` reports (a GPU's health that cannot be read)."""
    health = {f"GPU {g.index} ({g.uuid}): {reason}" for g in host.ordered() for reason in g.health.reasons}
    return [problem for problem in host.problems if problem not in health]


def check_health(host: HostGpus) -> Check:
    sick = [g for g in host.ordered() if not g.health.healthy]
    if sick:
        return Check(
            "gpu health",
            FAIL,
            "; ".join(f"GPU {g.index} ({g.uuid}): {', '.join(g.health.reasons)}" for g in sick),
            "keep it out of --nvidia_gpu_devices (mesos-gpu-agent config does) and reset or replace it",
        )
    if not host.gpus:
        return Check("gpu health", WARN, "NVML sees no GPU on this host", "is this meant to be a GPU agent?")
    return Check("gpu health", PASS, f"all {len(host.gpus)} GPUs healthy")


def check_flags(flags: ExistingFlags | None, host: HostGpus | None) -> list[Check]:
    if flags is None:
        return [Check("agent flags", SKIP, "no agent flags given (use --flags or --flags-from-env)")]
    if not flags.values:
        return [Check("agent flags", FAIL, "none of the GPU flags is set", _suggest(host))]
    problems = flag_errors(flags, len(host.gpus) if host is not None else None)
    checks = [Check("agent flags", FAIL, detail, fix) for detail, fix in problems]
    if host is not None:
        listed = unhealthy_listed(flags, host)
        if listed:
            checks.append(
                Check(
                    "agent flags",
                    FAIL,
                    "--nvidia_gpu_devices offers unhealthy GPUs: " + "; ".join(listed),
                    _suggest(host),
                )
            )
    return checks or [Check("agent flags", PASS, "consistent with this host")]


def _suggest(host: HostGpus | None) -> str:
    if host is None:
        return "set the flags printed by mesos-gpu-agent config"
    return "use: " + render(agent_config(host)).replace("\n", " ")


def check_sharing(flags: ExistingFlags | None, sharing: HostSharing | NvmlError | None) -> list[Check]:
    """The sharing attributes of --attributes against what the host has: gpu_memory_mb, gpu_mps (the
    MPS binary; no MIG), gpu_mig (MIG mode on, the same layout)."""
    if sharing is None or isinstance(sharing, NvmlError):
        return [
            Check("gpu sharing", SKIP, f"NVML sharing facts unavailable{f': {sharing}' if sharing else ''}")
        ]
    if flags is None or flags.get("attributes") is None:
        return [Check("gpu sharing", SKIP, "no --attributes given: the sharing attributes are not checked")]
    given = parse_attributes(flags.get("attributes") or "")
    wanted = dict(sharing_attributes(sharing)[0])
    fix = (
        "set " + ";".join(f"{k}:{v}" for k, v in wanted.items()) + " in --attributes (mesos-gpu-agent config)"
    )
    checks = []
    for name, detail_ok in (
        (ATTR_GPU_MEMORY, "GPU memory"),
        (ATTR_GPU_MPS, f"MPS ({sharing.mps or MPS_CONTROL + ' absent'})"),
        (ATTR_GPU_MIG, "MIG layout"),
    ):
        have, want = given.get(name), wanted.get(name)
        if have == want:
            state = want if want is not None else "no MIG"
            checks.append(Check(f"attribute {name}", PASS, f"{detail_ok}: {state}"))
        elif have is None:
            checks.append(Check(f"attribute {name}", WARN, f"not set; this host has {name}:{want}", fix))
        else:
            why = _sharing_mismatch(name, have, want, sharing)
            checks.append(Check(f"attribute {name}", FAIL, why, fix))
    return checks


def _sharing_mismatch(name: str, have: str, want: str | None, sharing: HostSharing) -> str:
    if name == ATTR_GPU_MPS and have == "true":
        reasons = sharing.mps_capable()[1]
        return f"gpu_mps:true but this host cannot run MPS: {'; '.join(reasons)}"
    if name == ATTR_GPU_MIG:
        if want is None:
            notes = sharing.mig_layout()[1]
            state = "; ".join(notes) if notes else "MIG mode is off"
            return f"gpu_mig:{have} but {state}: placement would send mig shares here"
        return f"gpu_mig:{have} but the GPUs' MIG instances are {want}"
    return f"{name}:{have} but this host has {name}:{want}"


def check_docker(status: DockerStatus | None) -> list[Check]:
    if status is None:
        return [Check("docker", SKIP, "docker path not checked (--no-docker)")]
    if not status.reachable:
        return [
            Check(
                "docker",
                FAIL,
                f"the Docker Engine does not answer: {status.error}",
                "install and start Docker (apt-get install docker.io; systemctl start docker) "
                "or set DOCKER_HOST",
            ),
            Check("nvidia runtime", SKIP, "Docker is not reachable"),
        ]
    docker = Check("docker", PASS, "the Docker Engine answers")
    if status.nvidia_runtime:
        return [docker, Check("nvidia runtime", PASS, "the nvidia runtime is registered with Docker")]
    return [
        docker,
        Check(
            "nvidia runtime",
            FAIL,
            'Docker has no nvidia runtime: containerizer "docker" jobs cannot get GPUs',
            "install nvidia-container-toolkit, run nvidia-ctk runtime configure --runtime=docker,"
            " restart Docker",
        ),
    ]


def run_doctor(
    backend: NvmlBackend,
    flags: ExistingFlags | None,
    paths: HostPaths,
    docker_status: Callable[[], DockerStatus] | None,
    fake: bool = False,
) -> list[Check]:
    """Every check, in table order (the backend answers `isolator.sharenvml.ShareNvml` too)."""
    discovered: HostGpus | NvmlError
    try:
        discovered = discover(backend)
    except NvmlError as exc:
        discovered = exc
    host = discovered if isinstance(discovered, HostGpus) else None
    driver = check_driver(paths, fake)
    no_driver = driver.status == FAIL
    checks = [driver, check_device_nodes(paths, host, fake, no_driver), check_nvml(discovered, no_driver)]
    if host is not None:
        checks.append(check_health(host))
    else:
        checks.append(Check("gpu health", SKIP, "NVML unavailable"))
    checks += check_flags(flags, host)
    sharing: HostSharing | NvmlError | None = None
    if host is not None and hasattr(backend, "mig_enabled"):
        try:
            sharing = sharing_facts(cast(ShareNvml, backend))
        except NvmlError as exc:
            sharing = exc
    checks += check_sharing(flags, sharing)
    checks += check_docker(docker_status() if docker_status is not None else None)
    return checks


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def table(checks: list[Check]) -> str:
    """A plain-text table: STATUS  CHECK  DETAIL, with the fix under each failure."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():<4}  {c.name:<{width}}  {c.detail}")
        if c.status in (FAIL, WARN) and c.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    total = sum(c.status == FAIL for c in checks)
    lines.append(f"{total} check{'s' if total != 1 else ''} failed" if total else "all checks passed")
    return "\n".join(lines)
