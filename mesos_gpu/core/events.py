"""The state machine's events (pure): what happened, as `SchedulerState.handle` takes it.

Each carries `now` (seconds): the machine reads no clock. The driver turns pymesos callbacks into
`Subscribed`, `Disconnected`, `OffersReceived`, `OfferRescinded`, `StatusReceived` and `ExecutorEnded`;
the API gives `JobSubmitted` / `JobsSubmitted` and `KillRequested`; leadership gives `JobsRecovered`; a
ticker `Tick`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core.model import JobSpec


@dataclass(frozen=True)
class Subscribed:
    """The driver (re)registered with the master under `framework_id`."""

    framework_id: str
    now: float


@dataclass(frozen=True)
class Disconnected:
    """The driver lost the master; calls are dropped until the next `Subscribed`."""

    now: float


@dataclass(frozen=True)
class OffersReceived:
    """One OFFERS event: Mesos v1 Offer JSON objects."""

    offers: tuple[Mapping[str, Any], ...]
    now: float


@dataclass(frozen=True)
class OfferRescinded:
    offer_id: str
    now: float


@dataclass(frozen=True)
class StatusReceived:
    """A TaskStatus (Mesos JSON). `jitter` is a uniform draw in [0, 1] for a restart's backoff."""

    status: Mapping[str, Any]
    now: float
    jitter: float = 0.5


@dataclass(frozen=True)
class ExecutorEnded:
    """Mesos says an executor of ours ended (a FAILURE event with an executor id, pymesos's
    `executorLost`): a share host with that id takes no more shares and is forgotten once its tasks
    (reported lost by Mesos) are gone."""

    agent_id: str
    executor_id: str
    now: float


@dataclass(frozen=True)
class JobSubmitted:
    """A job accepted by the API and already persisted as `record` (see `new_job_record`). `spec`,
    when given, is the record's spec already validated (it is not parsed from the record again)."""

    record: Mapping[str, Any]
    now: float
    spec: JobSpec | None = None


@dataclass(frozen=True)
class JobsSubmitted:
    """Several jobs persisted together (a group commit): the same as each `JobSubmitted` in turn."""

    submitted: tuple[JobSubmitted, ...]
    now: float


@dataclass(frozen=True)
class KillRequested:
    job_id: str
    now: float


@dataclass(frozen=True)
class JobsRecovered:
    """The persisted job records, loaded when this scheduler becomes the leader."""

    records: tuple[Mapping[str, Any], ...]
    now: float


@dataclass(frozen=True)
class Tick:
    """Time passes: deadlines, restart backoffs and reconciliation retries are checked."""

    now: float


Event = (
    Subscribed
    | Disconnected
    | OffersReceived
    | OfferRescinded
    | StatusReceived
    | ExecutorEnded
    | JobSubmitted
    | JobsSubmitted
    | KillRequested
    | JobsRecovered
    | Tick
)
