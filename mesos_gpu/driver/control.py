"""The runtime's own messages (typed): what the election, the ticker, pymesos's error callback, the submit
path and the retention sweep post on the runtime's queue besides the state machine's events.

Every one of them is applied by the runtime's single worker thread (`mesos_gpu.driver.runtime`), which
alone writes the leadership flags (leading, generation, driver) and the state machine: the threads that
post them only describe what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core.state import Event, JobsSubmitted


@dataclass(frozen=True)
class Elected:
    """The election made this process the leader: list the store, then subscribe."""


@dataclass(frozen=True)
class LeadershipLost:
    """The election says this process leads no more (its ZooKeeper session is suspended or lost, or it
    resigned): stop the driver at once (failover: tasks keep running for the next leader)."""

    reason: str


@dataclass(frozen=True)
class WatchdogFired:
    """The ticker found the driver dead or the master silent past the heartbeat timeout: restart it.

    `driver`: the driver it found so (None: there was none). Applied only while that is still the
    runtime's driver: a message queued about an old driver never restarts the one started since."""

    why: str
    driver: object | None


@dataclass(frozen=True)
class DriverError:
    """The master sent ERROR (pymesos's `error` callback); "Framework has been removed": register anew.

    `driver`: the driver that received it; ignored once another driver replaced it (as `WatchdogFired`)."""

    message: str
    driver: object | None


@dataclass(frozen=True)
class JobsStored:
    """Jobs the submit path stored (fenced, durable): their store versions, and the event that hands them
    to the state machine."""

    versions: tuple[tuple[str, int], ...]
    event: JobsSubmitted


@dataclass(frozen=True)
class WorkerCall:
    """`action(still_leading)` to run between two events while leading (`SchedulerRuntime.call_on_worker`)."""

    action: Callable[[Callable[[], bool]], Any]


@dataclass(frozen=True)
class Stop:
    """The process leaves: stop the driver (failover) and end the worker."""


Control = Elected | LeadershipLost | WatchdogFired | DriverError | JobsStored | WorkerCall | Stop
Item = Event | Control
"""What the runtime's queue carries."""

_NAMED = ("job_id", "task_id", "agent_id")


def describe(item: Any) -> str:
    """An event, control message or command for a log line: its kind and the ids it names, never its
    contents (records and TaskInfos carry env values, which may be secrets)."""
    ids = ", ".join(f"{name}={getattr(item, name)}" for name in _NAMED if getattr(item, name, None))
    return f"{type(item).__name__}({ids})"
