"""What a share task sees and what actually holds for it (pure).

`task_environment`: a plain-command share's environment, built from a clean base: the share host's own
environment (PATH, HOME, LANG, LC_*, TMPDIR, PYTHONPATH ... kept) without anything only the executor
should see (every MESOS_* variable: MESOS_EXECUTOR_ID, MESOS_AGENT_ENDPOINT, MESOS_SLAVE_PID,
MESOS_FRAMEWORK_ID, MESOS_DIRECTORY, MESOS_EXECUTOR_AUTHENTICATION_TOKEN, the fake NVML's
MESOS_GPU_FAKE_GPUS ...; LIBPROCESS_*; the host's device variables), then the variables of its level
and payload, then MESOS_TASK_ID and MESOS_SANDBOX (its own task directory), as Mesos gives a task.

`enforcement`: one honest sentence for the task's TASK_RUNNING (label LABEL_ENFORCEMENT): what holds
for this very task on this host, which may be less than its level's statement promises.
"""

from __future__ import annotations

from collections.abc import Mapping

from isolator.fakenvml import PROCESSES_ENV
from mesos_gpu.core.model import Isolation

_DROPPED_PREFIXES = ("MESOS_", "LIBPROCESS_", "CUDA_MPS_")
_DROPPED = frozenset({"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "PWD", "OLDPWD"})

SIMULATED = "simulated (fake NVML): nothing is enforced on a real GPU"
NO_PROCESS_MEMORY = "memory NOT enforced: NVML reports no per-process memory here"
ENVIRONMENT_ONLY = "environment only (plain command in the share host's container)"


def clean_base(host_env: Mapping[str, str]) -> dict[str, str]:
    """The share host's environment without what belongs to the executor or its GPU."""
    return {
        name: value
        for name, value in host_env.items()
        if name not in _DROPPED and not name.startswith(_DROPPED_PREFIXES)
    }


def task_environment(
    host_env: Mapping[str, str],
    level_env: Mapping[str, str],
    task_id: str,
    sandbox: str,
    fake_processes_dir: str | None = None,
) -> dict[str, str]:
    """A plain-command share's environment (see the module's doc). `fake_processes_dir`: only when the
    host runs on the fake NVML, the directory where a (test) task declares its simulated GPU memory
    (MESOS_GPU_FAKE_GPU_PROCESSES): the one fake-NVML variable a task needs; never on a real GPU."""
    env = clean_base(host_env)
    env.update(level_env)
    if fake_processes_dir:
        env[PROCESSES_ENV] = fake_processes_dir
    env.update({"MESOS_TASK_ID": task_id, "MESOS_SANDBOX": sandbox})
    return env


def enforcement(
    isolation: Isolation,
    device: str,
    cap: int,
    *,
    image: bool,
    simulated: bool,
    process_memory: bool = True,
) -> str:
    """The sentence for one task: `device` the uuid it was given (MIG-... for a MIG instance), `cap` its
    memory (MiB), `image` whether it runs in its own container with a device request for `device`,
    `simulated` whether the host runs on the fake NVML (or a simulated MPS daemon), `process_memory`
    whether NVML reports per-process memory on this host (probed once at start)."""
    if simulated:
        return SIMULATED
    request = f"device request: GPU {device}" if image else ENVIRONMENT_ONLY
    if isolation is Isolation.MIG:
        return f"device request: MIG instance {device}" if image else f"{ENVIRONMENT_ONLY}: {device}"
    if isolation is Isolation.MPS:
        return (f"{request}; MPS limits ({cap} MiB, compute percentage) are client-side environment "
                "variables the task can raise")  # fmt: skip
    if isolation is Isolation.CAPPED:
        if not process_memory:
            return f"{request}; {NO_PROCESS_MEMORY}" if image else NO_PROCESS_MEMORY
        memory = f"memory: the NVML watchdog kills the task above {cap} MiB"
        return f"{request}; {memory}" if image else memory
    return f"{request}; nothing else enforced" if image else "nothing enforced (time-sliced)"
