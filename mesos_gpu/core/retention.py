"""Retention of finished jobs (pure): which finished job records to delete, oldest first.

Without it every job record stays in ZooKeeper (and in the leader's memory and `mesos_gpu_jobs{state}`)
for ever. `RetentionPolicy` keeps finished jobs (SUCCEEDED, FAILED, KILLED) for at most `max_age_seconds`
after they finished and at most `max_finished` of them (the most recently finished); `expired(jobs,
policy, now)` names those past either limit, oldest first. It never names:

* a job that is not finished (PENDING, STAGING, RUNNING, RESTARTING);
* a finished job with an active member (a kill still on its way: its status updates must find it);
* a job submitted less than `keep_after_submit_seconds` ago (default an hour), whatever the limits:
  the store deletes a job's idempotency key with it (`JobStore.delete` frees the key), and a client
  retrying that submit with the same `Idempotency-Key` must find the job, not create a second one.

So the count limit can be exceeded for a while by jobs these rules keep. The runtime applies the result
on the leader (`mesos_gpu.driver.retention`). Settings: `policy_from_env` reads
`MESOS_GPU_RETENTION_SECONDS` (default 7 days, 0: no age limit) and `MESOS_GPU_RETENTION_MAX_FINISHED`
(default 10,000, 0: no count limit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mesos_gpu.core.envreader import EnvReader
from mesos_gpu.core.model import JobState

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS", "DEFAULT_MAX_FINISHED", "ENV_MAX_AGE", "ENV_MAX_FINISHED", "Finished",
    "RetentionPolicy", "expired", "parse_max_age", "parse_max_finished", "policy_from_env",
]

DEFAULT_MAX_AGE_SECONDS = 7 * 24 * 3600.0
DEFAULT_MAX_FINISHED = 10_000
#: A job is never deleted within this long of its submission (its idempotency key may still be retried).
DEFAULT_KEEP_AFTER_SUBMIT_SECONDS = 3600.0
#: At most this many deletes per sweep step (~2.3 ms each on a local ZooKeeper: the worker pauses ~0.1 s;
#: it takes other events in between steps).
DEFAULT_BATCH = 50

ENV_MAX_AGE = "MESOS_GPU_RETENTION_SECONDS"
ENV_MAX_FINISHED = "MESOS_GPU_RETENTION_MAX_FINISHED"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long and how many finished jobs are kept. None: no such limit."""

    max_age_seconds: float | None = DEFAULT_MAX_AGE_SECONDS
    max_finished: int | None = DEFAULT_MAX_FINISHED
    keep_after_submit_seconds: float = DEFAULT_KEEP_AFTER_SUBMIT_SECONDS
    batch: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        age, count = self.max_age_seconds, self.max_finished
        if age is not None and not (math.isfinite(age) and age >= 0):
            raise ValueError(f"max_age_seconds must be a finite number >= 0 or None, not {age!r}")
        if count is not None and count < 0:
            raise ValueError(f"max_finished must be >= 0 or None, not {count!r}")
        keep = self.keep_after_submit_seconds
        if not (math.isfinite(keep) and keep >= 0):
            raise ValueError(f"keep_after_submit_seconds must be a finite number >= 0, not {keep!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, not {self.batch!r}")

    @property
    def limited(self) -> bool:
        """Whether any job can ever be deleted."""
        return self.max_age_seconds is not None or self.max_finished is not None

    def describe(self) -> str:
        """The policy in words (logs, messages)."""
        parts = []
        if self.max_age_seconds is not None:
            parts.append(f"{self.max_age_seconds:g} s after they finished")
        if self.max_finished is not None:
            parts.append(f"beyond the {self.max_finished} most recently finished")
        return "finished jobs are deleted " + " or ".join(parts) if parts else "finished jobs are kept"


@dataclass(frozen=True, slots=True)
class Finished:
    """What retention needs to know of one job."""

    job_id: str
    state: JobState
    submitted_at: float
    finished_at: float | None  # None for a finished job of an old record: its submission time counts
    active_members: bool = False

    @property
    def finished(self) -> float:
        """When the job finished (its submission time when no finish time was recorded)."""
        return self.submitted_at if self.finished_at is None else self.finished_at

    def order(self) -> tuple[float, str]:
        """Older first: by finish time, then id."""
        return (self.finished, self.job_id)


def expired(jobs: Iterable[Finished], policy: RetentionPolicy, now: float) -> list[str]:
    """The ids of the finished jobs to delete now, oldest first (by finish time, then id), at most
    `policy.batch`: those finished more than `max_age_seconds` ago, and the oldest deletable ones beyond
    `max_finished` finished jobs (counting every finished job, deletable or not)."""
    if not policy.limited:
        return []
    finished = [job for job in jobs if job.state.is_terminal]
    keep_from = now - policy.keep_after_submit_seconds
    deletable = sorted(
        (job for job in finished if not job.active_members and job.submitted_at <= keep_from),
        key=Finished.order,
    )
    surplus = 0 if policy.max_finished is None else max(0, len(finished) - policy.max_finished)
    age = policy.max_age_seconds
    chosen = deletable[:surplus]          # the oldest deletable ones, as many as over the count
    if age is not None:                   # then the later ones too old (sorted: the list stays sorted)
        chosen.extend(job for job in deletable[surplus:] if now - job.finished > age)
    return [job.job_id for job in chosen[: policy.batch]]


def policy_from_env(env: Mapping[str, str]) -> RetentionPolicy:
    """The policy from `MESOS_GPU_RETENTION_SECONDS` and `MESOS_GPU_RETENTION_MAX_FINISHED` (unset:
    the defaults; 0: no such limit); ValidationError naming each bad one."""
    reader = EnvReader(env)
    age = reader.get(ENV_MAX_AGE, DEFAULT_MAX_AGE_SECONDS, parse_max_age)
    count = reader.get(ENV_MAX_FINISHED, DEFAULT_MAX_FINISHED, parse_max_finished)
    reader.raise_problems()
    return RetentionPolicy(max_age_seconds=age or None, max_finished=count or None)


def parse_max_age(raw: str) -> float:
    """`MESOS_GPU_RETENTION_SECONDS`: seconds >= 0 (0: no age limit)."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be 0 (no age limit) or a finite number of seconds")
    return value


def parse_max_finished(raw: str) -> int:
    """`MESOS_GPU_RETENTION_MAX_FINISHED`: a whole number >= 0 (0: no count limit)."""
    value = raw.strip()
    if not value.isdigit():
        raise ValueError("must be 0 (no count limit) or a whole number of jobs")
    return int(value)
