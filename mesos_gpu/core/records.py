"""The job records the state machine keeps (pure): `JobRecord` and its members' `MemberRecord`s.

`JobRecord.to_dict()` is what the store keeps; `JobRecord.from_dict` reads it back (a recovered leader,
a submitted job). `new_job_record` is the record of a freshly accepted job, as the API persists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.model import JobSpec, JobState, TaskKey, TaskSpec, TaskState
from mesos_gpu.core.validation import validate_job

JsonDict = dict[str, Any]


@dataclass(slots=True)
class MemberRecord:
    """One member's current launch attempt (attempt -1 and no task before its first launch). Slotted:
    an offer cycle makes one per task launched (thousands)."""

    key: TaskKey
    attempt: int = -1
    task_id: str | None = None
    state: TaskState | None = None
    agent_id: str | None = None
    hostname: str | None = None
    ports: tuple[int, ...] = ()
    message: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    ever_started: bool = False  # reached TASK_STARTING or TASK_RUNNING in this attempt
    # A GPU share: its grant (`ShareGrant.to_dict()`, with the share host's id), the device it runs on
    # ("device": the TASK_RUNNING label `mesos-gpu/device`, None before), and what the host's
    # ExecutorInfo is built from ("executor": `taskinfo.share_host_params`). None for other members.
    share: dict[str, Any] | None = None
    # The GPUs a whole-GPU member's TASK_RUNNING named ([{"index", "uuid"}]: `core.devicelabels`); None
    # while not said (before it runs, or under an executor that does not say, as Mesos' own).
    devices: list[dict[str, Any]] | None = None

    @property
    def is_active(self) -> bool:
        return self.state is not None and not self.state.is_terminal

    def to_dict(self) -> JsonDict:
        state = self.state
        out: JsonDict = {
            "attempt": self.attempt,
            "task_id": self.task_id,
            "state": None if state is None else state._value_,   # `.value`, without its descriptor
            "agent_id": self.agent_id,
            "hostname": self.hostname,
            "ports": list(self.ports),
            "message": self.message,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "ever_started": self.ever_started,
        }
        if self.share is not None:
            out["share"] = dict(self.share)    # only for shares: other records are as they were
        if self.devices is not None:
            out["devices"] = [dict(device) for device in self.devices]
        return out

    @classmethod
    def from_dict(cls, key: TaskKey, data: Mapping[str, Any]) -> MemberRecord:
        state = data.get("state")
        return cls(
            key=key,
            attempt=int(data.get("attempt", -1)),
            task_id=data.get("task_id"),
            state=None if state is None else TaskState(state),
            agent_id=data.get("agent_id"),
            hostname=data.get("hostname"),
            ports=tuple(int(p) for p in data.get("ports", ())),
            message=data.get("message"),
            reason=data.get("reason"),
            exit_code=data.get("exit_code"),
            ever_started=bool(data.get("ever_started", False)),
            share=dict(share) if (share := data.get("share")) is not None else None,
            devices=[dict(d) for d in devices] if (devices := data.get("devices")) is not None else None,
        )


@dataclass
class JobRecord:
    """A job as the scheduler tracks it; `to_dict()` is what the store keeps."""

    id: str
    spec: JobSpec
    state: JobState
    submitted_at: float
    members: dict[TaskKey, MemberRecord]
    attempt: int = -1
    restarts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    message: str = ""
    kill_requested: bool = False
    # The claims (job ids) it was preempted for, live ones only: never again for those (`core.preempt`).
    preempted_for: tuple[str, ...] = ()
    # The GPU profile switch (its instant) whose kept GPUs stopped this whole-GPU job: never again for it
    # (`core.profilereclaim`; None: none).
    drained_for: float | None = None
    wait_reason: str = ""  # not persisted: recomputed at every offer cycle
    # Not persisted: since when placement has said the job can never fit (None: it has not, or it fits).
    never_fits_since: float | None = None
    _tasks: tuple[JobSpec, tuple[TaskSpec, ...]] | None = field(default=None, repr=False, compare=False)

    def tasks(self) -> tuple[TaskSpec, ...]:
        """`spec.tasks(id)`, expanded once per spec (every offer cycle asks for it again)."""
        cached = self._tasks
        if cached is None or cached[0] is not self.spec:
            cached = self._tasks = (self.spec, self.spec.tasks(self.id))
        return cached[1]

    @property
    def ready_since(self) -> float:
        """When the job became ready to place: its backoff's end for a restart, else its submission."""
        if self.state is JobState.RESTARTING and self.next_attempt_at is not None:
            return self.next_attempt_at
        return self.submitted_at

    def ready_to_place(self, now: float) -> bool:
        """Whether the job should be placed at the next offers: waiting, nothing of it still active."""
        if self.kill_requested:
            return False
        for member in self.members.values():
            if member.state is not None and not member.state.is_terminal:    # member.is_active
                return False
        if self.state is JobState.PENDING:
            return True
        return self.state is JobState.RESTARTING and (self.next_attempt_at or 0.0) <= now

    def active_members(self) -> list[MemberRecord]:
        return [member for member in self.members.values() if member.is_active]

    def to_dict(self) -> JsonDict:
        out: JsonDict = {
            "id": self.id,
            "spec": spec_json(self.spec),
            "state": self.state._value_,     # `.value`, without its descriptor (thousands per cycle)
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempt": self.attempt,
            "restarts": self.restarts,
            "next_attempt_at": self.next_attempt_at,
            "message": self.message,
            "kill_requested": self.kill_requested,
            "members": {str(key): member.to_dict() for key, member in self.members.items()},
        }
        if self.preempted_for:      # only if any
            out["preempted_for"] = list(self.preempted_for)
        if self.drained_for is not None:    # only if set
            out["drained_for"] = self.drained_for
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], spec: JobSpec | None = None) -> JobRecord:
        """The record `to_dict` wrote; `spec`, when given, is `data["spec"]` already parsed."""
        if spec is None:
            spec = validate_job(data["spec"])
        stored = data.get("members", {})
        members = {
            key: MemberRecord.from_dict(key, stored.get(str(key), {})) for key in spec.members()
        }
        return cls(
            id=str(data["id"]),
            spec=spec,
            state=JobState(data["state"]),
            submitted_at=float(data["submitted_at"]),
            members=members,
            attempt=int(data.get("attempt", -1)),
            restarts=int(data.get("restarts", 0)),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            next_attempt_at=data.get("next_attempt_at"),
            message=str(data.get("message", "")),
            kill_requested=bool(data.get("kill_requested", False)),
            preempted_for=tuple(str(claim) for claim in data.get("preempted_for", ())),
            drained_for=None if (drained := data.get("drained_for")) is None else float(drained),
        )


def spec_json(spec: JobSpec) -> JsonDict:
    """`spec.to_dict()`, made once per spec (specs are immutable) and shared by every record of it: a job
    is persisted at each change of state, and its spec was most of the record's cost. Never mutate it."""
    kept: dict[str, Any] | None = getattr(spec, "__dict__", None)
    if kept is None:        # a slotted spec: nowhere to keep it
        return spec.to_dict()
    out: JsonDict | None = kept.get("_record_json")
    if out is None:
        out = kept["_record_json"] = spec.to_dict()     # not a field: equality and repr ignore it
    return out


def new_job_record(job_id: str, spec: JobSpec, now: float) -> JsonDict:
    """The record of a freshly accepted job (PENDING), as the API persists it before `JobSubmitted`."""
    members = {key: MemberRecord(key) for key in spec.members()}
    return JobRecord(job_id, spec, JobState.PENDING, now, members, message="waiting for offers").to_dict()


def killed_between_attempts(job: JobRecord) -> str:
    """The message of a job killed with nothing running: before its first launch, or between attempts."""
    if job.attempt < 0:
        return "killed before it ran"
    count = job.attempt + 1
    if job.state is JobState.RESTARTING:
        return f"killed while waiting to restart, after {count} attempt{'s' if count > 1 else ''}"
    return f"killed while waiting to be placed again, after {count} launch attempt{'s' if count > 1 else ''}"
