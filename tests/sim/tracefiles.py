"""Tiny hand-made traces for the simulator's tests: CSV files in the openb format, or nodes and tasks
built directly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mesos_gpu.core.placement import AgentSlot
from mesos_gpu.core.resources import Resources
from mesos_gpu.sim.trace import TraceTask

NODE_COLUMNS = "sn,cpu_milli,memory_mib,gpu,model"
TASK_COLUMNS = ("job_id,submit_time_s,duration_s,num_gpus,num_tasks,gpu_type,user_or_group,status,gpu_milli,"
                "cpu_milli,memory_mib,qos")

Node = tuple[str, int, int, int]  # sn, cpu_milli, memory_mib, gpu
Task = tuple[str, float, float | None, int, int, int, int]  # id, submit, duration, gpus, gpu_milli, cpu, mem


def write_nodes(path: Path, nodes: Sequence[Node]) -> Path:
    lines = [NODE_COLUMNS] + [f"{sn},{cpu},{mem},{gpu},{'T4' if gpu else ''}" for sn, cpu, mem, gpu in nodes]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tasks(path: Path, tasks: Sequence[Task]) -> Path:
    lines = [TASK_COLUMNS]
    for job_id, submit, duration, gpus, gpu_milli, cpu, mem in tasks:
        lasted = "" if duration is None else f"{duration:g}"
        lines.append(f"{job_id},{submit:g},{lasted},{gpus},1,,,Running,{gpu_milli},{cpu},{mem},LS")
    path.write_text("\n".join(lines) + "\n")
    return path


def node(name: str, gpus: int, cpus: int = 32_000) -> AgentSlot:
    """An agent as `trace.load_nodes` makes one (64 GB, `gpu_model` T4 when it has GPUs)."""
    capacity = Resources.of(cpus=cpus / 1000, mem=65_536, disk=1_000_000, gpus=gpus)
    attributes = {"gpu_model": "T4"} if gpus else {}
    return AgentSlot(name, name, capacity, (f"offer-{name}",), attributes, total=capacity)


def task(name: str, gpus: int, gpu_milli: int = 1000, cpus: int = 1000) -> TraceTask:
    """A trace row: `gpus` devices of `gpu_milli` each (a share when one device below 1000)."""
    return TraceTask(name, 0.0, 60.0, gpus, gpu_milli if gpus else 0, cpus, 1024, "", "LS")
