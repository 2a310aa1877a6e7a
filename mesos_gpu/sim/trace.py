"""Trace input (the openb trace's CSV format, `../shared/traces/README.md`): a node list and a task list.

Nodes: `sn,cpu_milli,memory_mib,gpu,model`, one agent each (its whole capacity offered, and its total).
Tasks: `job_id,submit_time_s,duration_s,num_gpus,num_tasks,gpu_type,user_or_group,status,gpu_milli,
cpu_milli,memory_mib,qos,...`; a task asking one GPU with `gpu_milli` below 1000 is a GPU share
(isolation `capped`), or, with `sharing=False`, one whole GPU (what Mesos alone gives).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import AgentSlot, JobDemand, TaskDemand
from mesos_gpu.core.placement.fgd import TaskShape
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import ShareNeed

#: The reference inputs: the trace folder beside the repository (`../shared/traces`).
DEFAULT_TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
NODES_FILE = "alibaba_openb_2023_nodes.csv"
TASKS_FILE = "alibaba_openb_2023.csv"
WHOLE = 1000


class TraceError(ValueError):
    """A trace file that cannot be read: its path, line and what is wrong."""


@dataclass(frozen=True)
class TraceTask:
    """One row of the task list. `duration` is None for a task never scheduled in production."""

    job_id: str
    submit: float
    duration: float | None
    gpus: int           # devices asked (0 for a CPU task)
    gpu_milli: int      # per device, thousandths (1000 whole)
    cpu_milli: int
    memory_mib: int
    tenant: str         # `user_or_group` ("" when the trace names none)
    qos: str

    @property
    def is_share(self) -> bool:
        return self.gpus == 1 and 0 < self.gpu_milli < WHOLE

    @property
    def gpu_demand(self) -> int:
        """GPU asked, in thousandths (a share's fraction, or 1000 per whole GPU)."""
        return self.gpu_milli if self.is_share else self.gpus * WHOLE

    def shape(self) -> TaskShape:
        """As FGD's workload counts it."""
        if self.is_share:
            return TaskShape(self.cpu_milli, self.gpu_milli, 1)
        if self.gpus:
            return TaskShape(self.cpu_milli, WHOLE, self.gpus)
        return TaskShape(self.cpu_milli, 0, 0)

    def demand(self, job_id: str | None = None, sharing: bool = True) -> JobDemand:
        """A one-task job for the planner (id `job_id`, default the trace's): a `capped` share, or with
        `sharing=False` a fraction rounded up to one whole GPU."""
        name = job_id or self.job_id
        gpus, share = self.gpus, None
        if sharing and self.is_share:
            share, gpus = ShareNeed(Isolation.CAPPED, self.gpu_milli, self.gpu_milli), 0
        resources = Resources.of(cpus=self.cpu_milli / 1000, mem=self.memory_mib, gpus=gpus)
        return JobDemand.of([TaskDemand(name, name, "task", 0, resources, share=share)])


def load_nodes(path: Path) -> list[AgentSlot]:
    """One agent per node of the node list (disk unlimited, as the trace has none)."""
    slots = []
    for line, row in _rows(path, ("sn", "cpu_milli", "memory_mib", "gpu", "model")):
        try:
            capacity = Resources.of(cpus=int(row["cpu_milli"]) / 1000, mem=int(row["memory_mib"]),
                                    disk=1_000_000, gpus=int(row["gpu"]))
        except ValueError as exc:
            raise TraceError(f"{path}:{line}: {exc}") from None
        attributes = {"gpu_model": row["model"]} if row["model"] else {}
        slots.append(AgentSlot(row["sn"], row["sn"], capacity, (f"offer-{row['sn']}",), attributes,
                               total=capacity))
    return slots


def load_tasks(path: Path) -> list[TraceTask]:
    """Every row of the task list, in file order."""
    tasks = []
    columns = ("job_id", "submit_time_s", "duration_s", "num_gpus", "gpu_milli", "cpu_milli", "memory_mib")
    for line, row in _rows(path, columns):
        try:
            duration = row["duration_s"]
            tasks.append(TraceTask(
                row["job_id"], float(row["submit_time_s"]), float(duration) if duration else None,
                int(row["num_gpus"]), int(row["gpu_milli"] or 0), int(row["cpu_milli"]),
                int(row["memory_mib"]), row.get("user_or_group") or "", row.get("qos") or ""))
        except ValueError as exc:
            raise TraceError(f"{path}:{line}: {exc}") from None
    return tasks


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in required if name not in (reader.fieldnames or ())]
            if missing:
                raise TraceError(f"{path}: missing column(s) {', '.join(missing)}")
            return [(number + 2, row) for number, row in enumerate(reader)]
    except OSError as exc:
        raise TraceError(f"{path}: {exc.strerror or exc}") from None
