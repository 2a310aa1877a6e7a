"""Trace input (the openb trace's CSV format, `../shared/traces/README.md`): a node list and a task list.

Nodes: `sn,cpu_milli,memory_mib,gpu,model`, one agent each (its whole capacity offered, and its total).
Tasks: `job_id,submit_time_s,duration_s,num_gpus,num_tasks,gpu_type,user_or_group,status,gpu_milli,
cpu_milli,memory_mib,qos,...`; a task asking one GPU with `gpu_milli` below 1000 is a GPU share
(isolation `capped`), or, with `sharing=False`, one whole GPU (what Mesos alone gives).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

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
#: Why the fill and the replay refuse a node list (ValueError).
NO_GPU = "the node list has no GPU: nothing to compare the policies on"


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


def default_file(name: str) -> Path:
    """`name` under `DEFAULT_TRACES`; TraceError (one line) when it is not there, as from an installed
    wheel, where the source tree's `../shared/traces` does not exist."""
    path = DEFAULT_TRACES / name
    if not path.is_file():
        raise TraceError(f"the openb trace is not found at {path}: give --nodes and --tasks")
    return path


def load_nodes(path: Path) -> list[AgentSlot]:
    """One agent per node of the node list (disk unlimited, as the trace has none). Node names must be
    unique; cpus, memory and GPUs whole numbers, not negative."""
    slots = []
    seen: dict[str, int] = {}
    for line, row in _rows(path, ("sn", "cpu_milli", "memory_mib", "gpu", "model")):
        field = _Fields(path, line, row)
        name = field.name("sn", seen)
        capacity = Resources.of(cpus=field.whole("cpu_milli") / 1000, mem=field.whole("memory_mib"),
                                disk=1_000_000, gpus=field.whole("gpu"))
        model = field.text("model")
        attributes = {"gpu_model": model} if model else {}
        slots.append(AgentSlot(name, name, capacity, (f"offer-{name}",), attributes, total=capacity))
    return slots


def load_tasks(path: Path) -> list[TraceTask]:
    """Every row of the task list, in file order. Job ids must be unique; times finite and not negative
    (an empty duration: never scheduled); GPUs, cpus and memory whole numbers, not negative; `gpu_milli`
    (empty: 0) at most 1000, a whole GPU."""
    tasks = []
    seen: dict[str, int] = {}
    columns = ("job_id", "submit_time_s", "duration_s", "num_gpus", "gpu_milli", "cpu_milli", "memory_mib")
    for line, row in _rows(path, columns):
        field = _Fields(path, line, row)
        job_id = field.name("job_id", seen)
        submit = field.seconds("submit_time_s")
        duration = field.seconds("duration_s") if field.text("duration_s") else None
        gpus = field.whole("num_gpus")
        gpu_milli = field.whole("gpu_milli") if field.text("gpu_milli") else 0
        if gpu_milli > WHOLE:
            field.fail("gpu_milli", f"above {WHOLE} (a whole GPU; more GPUs: num_gpus)")
        tasks.append(TraceTask(job_id, submit, duration, gpus, gpu_milli, field.whole("cpu_milli"),
                               field.whole("memory_mib"), row.get("user_or_group") or "",
                               row.get("qos") or ""))
    return tasks


class _Fields:
    """The checked values of one row; a bad one raises TraceError `file:line: column: what is wrong`."""

    def __init__(self, path: Path, line: int, row: dict[str, str]) -> None:
        self.path, self.line, self.row = path, line, row

    def text(self, column: str) -> str:
        return (self.row.get(column) or "").strip()   # a short row: None

    def fail(self, column: str, problem: str) -> NoReturn:
        raise TraceError(f"{self.path}:{self.line}: {column}: {problem}: {self.text(column)!r}")

    def name(self, column: str, seen: dict[str, int]) -> str:
        """A name that no earlier row has (`seen`: name -> its line, updated)."""
        text = self.text(column)
        if not text:
            self.fail(column, "empty")
        first = seen.setdefault(text, self.line)
        if first != self.line:
            self.fail(column, f"repeats the one of line {first}")
        return text

    def whole(self, column: str) -> int:
        text = self.text(column)
        if not (text.isascii() and text.isdigit()):
            problem = "negative" if text.startswith("-") and text[1:].isdigit() else "not a whole number"
            self.fail(column, problem)
        return int(text)

    def seconds(self, column: str) -> float:
        try:
            value = float(self.text(column))
        except ValueError:
            value = None
        if value is None:
            self.fail(column, "not a number")
        if not math.isfinite(value):
            self.fail(column, "not a finite number")
        if value < 0:
            self.fail(column, "negative")
        return value


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
