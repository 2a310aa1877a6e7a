"""What a job asks of placement (pure): `TaskDemand` per member and `JobDemand` for the gang.

The scheduler adapts its job model into these; placement never imports the job model.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from mesos_gpu.core.placement.constraints import Constraint
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import ShareNeed

_CORE = ("cpus", "mem", "disk", "gpus")


@dataclass(frozen=True)
class Needs:
    """A task's demand in the fast form the filters compare: integer thousandths, counts, constraints."""

    cpus: int
    mem: int
    disk: int
    gpus: int
    ports: int
    scalars: tuple[tuple[str, int], ...]
    ranges: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]
    constraints: tuple[Constraint, ...]
    problem: str | None = None
    share: ShareNeed | None = None  # set on the demand that opens a share host (see `shares`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.cpus, self.mem, self.disk, self.gpus, self.ports,
                                                 self.scalars, self.ranges, self.constraints, self.share)))
        dynamic = any(not constraint.is_static for constraint in self.constraints)
        object.__setattr__(self, "_dynamic", dynamic)
        simple = not (self.constraints or self.scalars or self.ranges or self.share)
        object.__setattr__(self, "_simple", simple)

    def __hash__(self) -> int:
        # Cached: the cycle's memo looks needs up once per decision.
        return self._hash  # type: ignore[attr-defined]

    @property
    def gpu_slots(self) -> int:
        """Whole GPUs needed (Mesos only hands out whole GPUs)."""
        return -(-self.gpus // 1000)

    @property
    def wants_gpus(self) -> bool:
        return self.gpus > 0

    @property
    def has_dynamic_constraints(self) -> bool:
        """Whether a constraint depends on where the job's members are (UNIQUE, GROUP_BY, ...)."""
        return self._dynamic  # type: ignore[attr-defined]

    @property
    def is_simple(self) -> bool:
        """No constraints, named scalars or fixed ranges: only cpus, mem, disk, gpus and a port count."""
        return self._simple  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=4096)
def _shared(needs: Needs) -> Needs:
    """The `Needs` equal to `needs` first seen: one object per demand shape, so that the cycle's memo
    finds it at once."""
    return needs


@dataclass(frozen=True)
class TaskDemand:
    """One member of a job as placement sees it.

    `resources` excludes the ports the task needs: `ports` is how many it needs; the planner picks the
    numbers from the offer's `ports` ranges. Fixed port ranges may still be put in `resources`.
    `share`: a GPU share (a fraction of one GPU, run by a share host); its `resources` then have no gpus
    (the share host holds the whole GPU).
    """

    task_id: str
    job_id: str
    role: str
    index: int
    resources: Resources
    ports: int = 0
    constraints: tuple[Constraint, ...] = ()
    share: ShareNeed | None = None
    needs: Needs = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.ports < 0:
            raise ValueError(f"task {self.task_id}: ports must not be negative, got {self.ports}")
        milli = self.resources.scalars_milli()
        other = tuple(sorted((name, value) for name, value in milli.items() if name not in _CORE))
        ranges = tuple(sorted((name, self.resources.ranges(name)) for name in self.resources.names()
                              if self.resources.ranges(name)))
        needs = Needs(
            cpus=milli.get("cpus", 0), mem=milli.get("mem", 0), disk=milli.get("disk", 0),
            gpus=milli.get("gpus", 0), ports=self.ports, scalars=other, ranges=ranges,
            constraints=tuple(self.constraints),
            problem=_problem(self.task_id, self.resources, self.share),
        )
        object.__setattr__(self, "constraints", tuple(self.constraints))
        object.__setattr__(self, "needs", _shared(needs))


@dataclass(frozen=True)
class RunningMember:
    """A member of the job that already runs (kept for constraints, spreading and locality)."""

    task_id: str
    role: str
    agent_id: str
    hostname: str
    attributes: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class JobDemand:
    """A job's members to place together (all or nothing), with its members already running."""

    job_id: str
    members: tuple[TaskDemand, ...]
    running: tuple[RunningMember, ...] = ()

    @functools.cached_property
    def problem(self) -> str | None:
        """What is wrong with the demand itself, or None (worked out once: a waiting job's demand is kept
        from cycle to cycle, and every cycle asks)."""
        if not self.members:
            return f"job {self.job_id} has no member to place"
        seen: set[str] = set()
        for member in self.members:
            if member.job_id != self.job_id:
                return f"task {member.task_id} belongs to job {member.job_id}, not {self.job_id}"
            if member.task_id in seen:
                return f"task id {member.task_id} appears twice in job {self.job_id}"
            seen.add(member.task_id)
            if member.needs.problem is not None:
                return member.needs.problem
        return None

    @classmethod
    def of(cls, members: Sequence[TaskDemand], running: Sequence[RunningMember] = ()) -> JobDemand:
        """Build from members, taking the job id from the first one."""
        if not members:
            raise ValueError("a job needs at least one member to place")
        return cls(members[0].job_id, tuple(members), tuple(running))


def _problem(task_id: str, resources: Resources, share: ShareNeed | None = None) -> str | None:
    """What makes a demand impossible to express to Mesos (reported as InvalidDemand), or None."""
    gpus = resources.scalar_milli("gpus")
    if share is not None:
        if gpus:
            return f"task {task_id}: a GPU share takes no whole gpus, got {gpus / 1000}"
        if not share.isolation.is_share:
            return f"task {task_id}: a GPU share cannot be {share.isolation.value}"
        if not 0 < share.gpus_min <= share.gpus <= 1000:
            return f"task {task_id}: a GPU share must be in (0, 1], got {share.gpus_min}..{share.gpus} milli"
        if share.memory < 0:
            return f"task {task_id}: gpu_memory must not be negative, got {share.memory}"
    if gpus % 1000:
        return f"task {task_id}: gpus must be a whole number, got {gpus / 1000}"
    if any(resources.set_items(name) for name in resources.names()):
        return f"task {task_id}: SET resources are not supported in a task demand"
    return None
