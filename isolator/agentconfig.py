"""The mesos-agent flags a GPU host needs, derived from NVML discovery (pure: HostGpus in, flags out),
and the parser and consistency rules for flags an agent already has (Mesos' own error texts).

With the host's sharing facts (`isolator.sharenvml.HostSharing`) the attributes also say what GPU shares
the agent can give (names in `mesos_gpu.core.sharing`): `gpu_memory_mb` (each GPU's memory; GPUs of an
agent should be alike, else the smallest and a note), `gpu_mps` ("true" when nvidia-cuda-mps-control is
on PATH and no GPU is in MIG mode) and `gpu_mig` (GPU 0's MIG instances, "3g.40gb/2g.20gb/...", when MIG
mode is on and every GPU has the same layout)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from isolator.discovery import HostGpus
from isolator.sharenvml import HostSharing
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import ATTR_GPU_MEMORY, ATTR_GPU_MIG, ATTR_GPU_MPS
from mesos_gpu.core.wire import resources_from_mesos_by_role

GPU_ISOLATION = ("filesystem/linux", "docker/runtime", "cgroups/devices", "gpu/nvidia")
CPU_ISOLATION = ("filesystem/linux", "docker/runtime", "cgroups/cpu", "cgroups/mem")
FLAG_NAMES = (
    "isolation",
    "image_providers",
    "resources",
    "nvidia_gpu_devices",
    "attributes",
    "containerizers",
)


@dataclass(frozen=True)
class AgentConfig:
    """Flags (name -> value, in print order) and notes for the operator."""

    flags: Mapping[str, str]
    notes: tuple[str, ...] = ()


def attribute_model(model: str) -> str:
    """A model name as a Mesos text attribute: "NVIDIA A100-SXM4-80GB" -> "A100-SXM4-80GB"."""
    name = model.removeprefix("NVIDIA ").strip()
    return re.sub(r"[^A-Za-z0-9_.\-/]+", "-", name).strip("-")


def sharing_attributes(
    sharing: HostSharing, uuids: set[str] | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """The share attributes (gpu_memory_mb, gpu_mps, gpu_mig) of the GPUs in `uuids` (None: all), notes."""
    gpus = tuple(g for g in sharing.gpus if uuids is None or g.uuid in uuids)
    facts = HostSharing(gpus, sharing.mps, sharing.problems)
    memory, notes = facts.memory_mb()
    mps, mps_notes = facts.mps_capable()
    layout, mig_notes = facts.mig_layout()
    notes += mps_notes + mig_notes + [f"sharing: {problem}" for problem in sharing.problems]
    attributes = [(ATTR_GPU_MEMORY, str(memory)), (ATTR_GPU_MPS, "true" if mps else "false")]
    if layout:
        attributes.append((ATTR_GPU_MIG, layout))
    return attributes, notes


def agent_config(
    host: HostGpus, include_unhealthy: bool = False, sharing: HostSharing | None = None
) -> AgentConfig:
    """The flags for this host: every healthy GPU (all of them with include_unhealthy) offered as
    whole `gpus`, isolated by `gpu/nvidia`, with attributes for placement constraints (and, given the
    `sharing` facts, for GPU shares)."""
    notes: list[str] = []
    usable = host.ordered() if include_unhealthy else host.healthy()
    for gpu in host.ordered():
        if gpu not in usable:
            notes.append(f"GPU {gpu.index} ({gpu.uuid}) left out: {'; '.join(gpu.health.reasons)}")
    for problem in host.problems:
        notes.append(f"left out: {problem}")
    if not usable:
        notes.append("no usable GPU: these are the flags of a CPU-only agent")
        return AgentConfig(
            flags={"isolation": ",".join(CPU_ISOLATION), "image_providers": "docker"}, notes=tuple(notes)
        )
    models = []
    for gpu in usable:
        name = attribute_model(gpu.model)
        if name not in models:
            models.append(name)
    if len(models) > 1:
        notes.append(
            "mixed GPU models (" + ", ".join(models) + "): Mesos cannot choose which model a task gets; "
            "consider one agent per model or --nvidia_gpu_devices per model"
        )
    usable_ids = {gpu.uuid for gpu in usable}
    groups = [[u for u in group if u in usable_ids] for group in host.nvlink_groups()]
    groups = [g for g in groups if g]
    smallest_group = min(len(g) for g in groups)
    attributes = [
        ("gpu_model", "/".join(models)),
        ("gpu_memory_mib", str(min(gpu.memory_mib for gpu in usable))),
        ("gpu_nvlink", "true" if any(len(g) > 1 for g in groups) else "false"),
        ("gpu_nvlink_group", str(smallest_group)),
        ("gpu_driver", host.driver_version),
        ("gpu_cuda", host.cuda_version),
    ]
    if sharing is not None:
        share_attributes, share_notes = sharing_attributes(sharing, {gpu.uuid for gpu in usable})
        attributes += share_attributes
        notes += share_notes
    flags = {
        "isolation": ",".join(GPU_ISOLATION),
        "image_providers": "docker",
        "resources": f"gpus:{len(usable)}",
        "nvidia_gpu_devices": ",".join(str(gpu.index) for gpu in usable),
        "attributes": ";".join(f"{k}:{v}" for k, v in attributes),
    }
    return AgentConfig(flags=flags, notes=tuple(notes))


def render(config: AgentConfig, style: str = "flags") -> str:
    """`flags`: one `--name=value` per line; `env`: MESOS_NAME='value' lines; `json`: an object."""
    if style == "json":
        return json.dumps({"flags": dict(config.flags), "notes": list(config.notes)}, indent=2)
    if style == "env":
        return "\n".join(f"MESOS_{k.upper()}={shlex.quote(v)}" for k, v in config.flags.items())
    if style == "flags":
        return "\n".join(f"--{k}={v}" for k, v in config.flags.items())
    raise ValueError(f"unknown format {style!r}")


# ---- existing flags ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExistingFlags:
    """The GPU-relevant flags of an agent as configured (None = not set)."""

    values: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def parse_flags(text: str) -> ExistingFlags:
    """Parse a mesos-agent command line (`--isolation=... --resources "gpus:2"`), keeping our flags."""
    values: dict[str, str] = {}
    words = shlex.split(text)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("--"):
            continue
        name, sep, value = word[2:].partition("=")
        if not sep:
            if i < len(words) and not words[i].startswith("--"):
                value = words[i]
                i += 1
            else:
                value = "true"
        values[name.replace("-", "_")] = value
    return ExistingFlags({k: v for k, v in values.items() if k in FLAG_NAMES})


def flags_from_env(env: Mapping[str, str]) -> ExistingFlags:
    """The same flags from the MESOS_* environment variables the agent reads."""
    prefixes = ("MESOS_", "MESOS_SLAVE_", "MESOS_AGENT_")
    values = {}
    for name in FLAG_NAMES:
        for prefix in prefixes:
            key = prefix + name.upper()
            if key in env:
                values[name] = env[key]
    return ExistingFlags(values)


def parse_attributes(text: str) -> dict[str, str]:
    """A mesos-agent --attributes value ("name:value;name:value") as a dict."""
    out = {}
    for item in text.split(";"):
        name, sep, value = item.partition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def gpus_in_resources(resources: str) -> float | None:
    """The `gpus` amount in a --resources value (`cpus:4;gpus(*):2` or a JSON array), None if absent."""
    text = resources.strip()
    if text.startswith("["):
        items = json.loads(text)
        if not any(isinstance(entry, Mapping) and entry.get("name") == "gpus" for entry in items):
            return None
        return Resources.sum(resources_from_mesos_by_role(items).values()).gpus
    total = None
    for item in text.split(";"):
        name, _, value = item.partition(":")
        if re.sub(r"\(.*\)$", "", name.strip()) == "gpus":
            total = (total or 0.0) + float(value)
    return total


def flag_errors(flags: ExistingFlags, gpu_count: int | None) -> list[tuple[str, str]]:
    """Problems with the agent's GPU flags as (what Mesos or we say, how to fix it); `gpu_count` is the
    number of GPUs NVML sees (None when unknown). Texts in quotes are Mesos' own (allocator.cpp)."""
    devices_text = flags.get("nvidia_gpu_devices")
    resources = flags.get("resources") or ""
    try:
        gpus = gpus_in_resources(resources) if resources else None
    except (ValueError, TypeError, AttributeError) as exc:
        return [(f"--resources cannot be parsed: {exc}", "write it as 'cpus:N;mem:M;gpus:K'")]
    problems = _isolation_problems(flags, gpus)
    devices: list[int] = []
    if devices_text is not None:
        try:
            devices = [int(d) for d in devices_text.split(",") if d.strip()]
        except ValueError:
            return [
                *problems,
                (f"--nvidia_gpu_devices={devices_text!r} is not a list of GPU indices", "e.g. 0,1,2,3"),
            ]
    if gpus is not None and gpus != int(gpus):
        problems.append(("The 'gpus' resource must be an non-negative integer", "use a whole number of gpus"))
    elif gpus == 0 and devices_text is not None:
        problems.append(
            (
                "'--nvidia_gpus_devices' cannot be specified when '--resources' specifies 0 GPUs",
                "drop one of them",
            )
        )
    elif devices_text is not None and gpus is None:
        problems.append(
            (
                "'--nvidia_gpus_devices' cannot be set without also setting 'gpus' in '--resources'",
                f"add gpus:{len(devices)} to --resources",
            )
        )
    elif gpus is not None and gpus > 0 and devices_text is None:
        problems.append(
            (
                "The `gpus` resource cannot be set without also setting `--nvidia_gpu_devices`",
                f"set --nvidia_gpu_devices={','.join(str(i) for i in range(int(gpus)))}",
            )
        )
    elif gpus is not None and gpus > 0:
        problems.extend(_device_list_problems(int(gpus), devices, gpu_count))
    return problems


def _isolation_problems(flags: ExistingFlags, gpus: float | None) -> list[tuple[str, str]]:
    """Problems with --containerizers, --isolation and --image_providers."""
    problems: list[tuple[str, str]] = []
    isolation = [i.strip() for i in (flags.get("isolation") or "").split(",") if i.strip()]
    containerizers = [c.strip() for c in (flags.get("containerizers") or "mesos").split(",")]
    if "mesos" not in containerizers:
        problems.append(
            (
                "GPU support needs the Mesos containerizer, but --containerizers is "
                f"{','.join(containerizers)!r} (the Docker containerizer has no GPU support)",
                "set --containerizers=mesos (or mesos,docker)",
            )
        )
    if "gpu/nvidia" not in isolation:
        if flags.get("nvidia_gpu_devices") is not None:
            problems.append(
                (
                    "'--nvidia_gpus_devices' can only be specified if the `--isolation` flag contains"
                    " 'gpu/nvidia'",
                    "add gpu/nvidia to --isolation",
                )
            )
        problems.append(
            (
                "--isolation lacks gpu/nvidia: GPUs are advertised with no device isolation"
                if gpus
                else "--isolation lacks gpu/nvidia: this agent offers no GPUs",
                f"set --isolation={','.join(GPU_ISOLATION)}",
            )
        )
    else:
        for needed in ("cgroups/devices", "filesystem/linux"):
            if needed not in isolation:
                problems.append(
                    (f"--isolation lacks {needed}, which gpu/nvidia needs", f"add {needed} to --isolation")
                )
    if "docker/runtime" not in isolation or flags.get("image_providers") != "docker":
        problems.append(
            (
                "Docker images need --isolation with docker/runtime and --image_providers=docker",
                "add docker/runtime to --isolation and set --image_providers=docker",
            )
        )
    return problems


def _device_list_problems(gpus: int, devices: list[int], gpu_count: int | None) -> list[tuple[str, str]]:
    """Problems of a --nvidia_gpu_devices list given with `gpus` > 0 GPUs in --resources."""
    problems: list[tuple[str, str]] = []
    if len(set(devices)) != len(devices):
        problems.append(("'--nvidia_gpu_devices' contains duplicates", "list each GPU index once"))
    elif len(devices) != gpus:
        problems.append(
            (
                "'--resources' and '--nvidia_gpu_devices' specify different numbers of GPU devices",
                f"gpus:{gpus} must match the {len(devices)} devices listed (mesos-gpu-agent config)",
            )
        )
    if gpu_count is not None and gpus > gpu_count:
        problems.append(
            (
                "The number of GPUs requested is greater than the number of GPUs available on the machine",
                f"this host has {gpu_count} GPUs",
            )
        )
    missing = [d for d in devices if gpu_count is not None and d >= gpu_count]
    if missing:
        problems.append(
            (
                f"--nvidia_gpu_devices names GPUs {missing} but NVML sees {gpu_count} GPUs",
                "list only existing indices",
            )
        )
    return problems


def unhealthy_listed(flags: ExistingFlags, host: HostGpus) -> list[str]:
    """Unhealthy GPUs that the agent's --nvidia_gpu_devices still offers."""
    text = flags.get("nvidia_gpu_devices")
    if not text:
        return []
    try:
        listed = {int(d) for d in text.split(",") if d.strip()}
    except ValueError:
        return []
    return [
        f"GPU {g.index} ({'; '.join(g.health.reasons)})"
        for g in host.ordered()
        if g.index in listed and not g.health.healthy
    ]
