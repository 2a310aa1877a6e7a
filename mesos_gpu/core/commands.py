"""The state machine's commands (pure): what the runtime must carry out, in the order given.

Every command that changes the world after a state change comes after the `Persist` of that change
("persist before acknowledge", "persist before launch"; DESIGN section 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Persist:
    """Write the job's record (compare-and-set); nothing after it may run if this fails."""

    job_id: str
    record: JsonDict


@dataclass(frozen=True)
class Accept:
    """One ACCEPT for one agent: its offers and the TaskInfos launched on it."""

    agent_id: str
    offer_ids: tuple[str, ...]
    task_infos: tuple[JsonDict, ...]
    refuse_seconds: float


@dataclass(frozen=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True)
class KillTask:
    task_id: str
    agent_id: str | None


@dataclass(frozen=True)
class GracefulKill(KillTask):
    """A KILL with its own `kill_policy.grace_period` (SIGTERM, then SIGKILL after `grace_seconds`): a
    preemption's. A driver that handles only `KillTask` sends a plain KILL (the TaskInfo's grace applies)."""

    grace_seconds: float = 30.0


@dataclass(frozen=True)
class Suppress:
    pass


@dataclass(frozen=True)
class Revive:
    pass


@dataclass(frozen=True)
class Reconcile:
    """RECONCILE: `tasks` as (task id, agent id) pairs; empty means implicit reconciliation."""

    tasks: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Acknowledge:
    """ACKNOWLEDGE a status update (only ones with a uuid), after its effect was persisted."""

    status: Mapping[str, Any]


@dataclass(frozen=True)
class ClearRendezvous:
    """Delete the ZooKeeper nodes of a TF job's rendezvous (`tf/<job>`): no member of it is active any
    more, so they are garbage, and a stale member node left by a killed member (its session not yet
    expired) must not give its old address to the members of the next attempt."""

    job_id: str


Command = (
    Persist | Accept | Decline | KillTask | Suppress | Revive | Reconcile | Acknowledge | ClearRendezvous
)
