"""Liveness and readiness: what `/v1/health/live`, `/v1/health/ready` and `/v1/health` answer.

Liveness (`/v1/health/live`): the process and its API loop answer. Always 200 while they do: a ZooKeeper
or Mesos outage never fails it, since restarting the scheduler would not bring either back (Marathon's
health check, which kills the task after repeated failures, uses this one).

Readiness (`/v1/health/ready`): this instance can serve its role now; 200 when ready, 503 when not.

- leader: its ZooKeeper session is connected and it is subscribed to the Mesos master;
- standby: its ZooKeeper session is connected and it knows the leader's address (another instance), so
  it can redirect API calls there (307).

`readiness` is the pure decision; the handlers gather its inputs (the store's connection state, the
runtime's leadership and subscription, and the election's leader read with a deadline).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mesos_gpu import __version__
from mesos_gpu.api.handlers import ApiHandler

HEALTH_TIMEOUT = 2.0  # how long the readiness check waits for the election's answer (a ZooKeeper read)

PASS = "pass"
FAIL = "fail"
SKIP = "skip"


@dataclass(frozen=True)
class Observed:
    """What readiness is decided from."""

    zookeeper_state: str  # the store's connection: "CONNECTED", "SUSPENDED", "LOST"
    leader: bool  # this instance leads (as far as it knows without asking)
    mesos_subscribed: bool  # the driver holds a SUBSCRIBED stream to the master
    identifier: str  # this instance's API address
    leader_identifier: str | None  # the election's leader (None: none elected)
    leader_error: str | None = None  # why the election could not be asked (then leader_identifier is None)


Check = dict[str, str]


def readiness(seen: Observed) -> tuple[bool, dict[str, Check]]:
    """(ready, {check name: {"state": pass|fail|skip, "reason": ...}}) for the checks
    "zookeeper", "mesos" and "leader"; ready when no check fails."""
    checks = {
        "zookeeper": _zookeeper_check(seen.zookeeper_state),
        "mesos": _mesos_check(seen),
        "leader": _leader_check(seen),
    }
    return all(check["state"] != FAIL for check in checks.values()), checks


def _zookeeper_check(state: str) -> Check:
    if state == "CONNECTED":
        return {"state": PASS, "reason": "the ZooKeeper session is connected"}
    return {"state": FAIL, "reason": f"the ZooKeeper session is {state}"}


def _mesos_check(seen: Observed) -> Check:
    if not seen.leader:
        return {"state": SKIP, "reason": "a standby does not subscribe to the Mesos master"}
    if seen.mesos_subscribed:
        return {"state": PASS, "reason": "subscribed to the Mesos master"}
    return {"state": FAIL, "reason": "the leader is not subscribed to the Mesos master"}


def _leader_check(seen: Observed) -> Check:
    if seen.leader:
        return {"state": PASS, "reason": "this instance leads"}
    if seen.leader_error is not None:
        return {"state": FAIL, "reason": f"could not ask ZooKeeper who leads: {seen.leader_error}"}
    if seen.leader_identifier is None:
        return {"state": FAIL, "reason": "no leader is elected"}
    if seen.leader_identifier == seen.identifier:
        return {"state": FAIL, "reason": "elected, not yet leading"}
    return {"state": PASS, "reason": f"the leader is {seen.leader_identifier}"}


# ------------------------------------------------------------------------------------------ handlers
class _HealthBase(ApiHandler):
    leader_only = False
    authenticated = False

    def role(self) -> str:
        return "leader" if self.service.is_leader else "standby"

    async def scheduler_health(self) -> dict[str, Any]:
        """The runtime's `health()` (it reads the election from ZooKeeper), or {"error": why} when it
        fails or takes longer than HEALTH_TIMEOUT."""
        try:
            return dict(await asyncio.wait_for(self.call(self.service.health), HEALTH_TIMEOUT))
        except Exception as exc:  # health must answer whatever the service does
            reason = f"no answer within {HEALTH_TIMEOUT:g} s" if isinstance(exc, TimeoutError) else str(exc)
            return {"error": f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__}

    async def observe(self) -> tuple[Observed, dict[str, Any]]:
        leader = bool(self.service.is_leader)
        subscribed = bool(self.service.mesos_connected)
        health = await self.scheduler_health()
        error = health.get("error")
        seen = Observed(
            zookeeper_state=self.context.zookeeper.state,
            leader=leader,
            mesos_subscribed=subscribed,
            identifier=self.service.identifier,
            leader_identifier=None if error else _text(health.get("leader_identifier")),
            leader_error=None if error is None else str(error),
        )
        return seen, health


class LivenessHandler(_HealthBase):
    """GET: 200 while the process and its API loop answer (nothing here waits on ZooKeeper or Mesos)."""

    async def get(self) -> None:
        self.send_json(
            {
                "status": "live",
                "live": True,
                "version": __version__,
                "role": self.role(),
                "identifier": self.service.identifier,
                "checks": {"api": {"state": PASS, "reason": "the API loop answered"}},
            }
        )


class ReadinessHandler(_HealthBase):
    """GET: 200 when this instance can serve its role, else 503; the body names each check's state."""

    async def get(self) -> None:
        seen, _ = await self.observe()
        ready, checks = readiness(seen)
        self.send_json(
            {
                "status": "ready" if ready else "unready",
                "ready": ready,
                "version": __version__,
                "role": "leader" if seen.leader else "standby",
                "identifier": seen.identifier,
                "leader_identifier": seen.identifier if seen.leader else seen.leader_identifier,
                "checks": checks,
            },
            200 if ready else 503,
        )


class HealthHandler(_HealthBase):
    """GET `/v1/health`, kept for compatibility: 200 whenever the process is up (like liveness), with
    the body it always had plus "version" and "ready" (readiness's verdict, for reading, not probing)."""

    async def get(self) -> None:
        seen, health = await self.observe()
        ready, _ = readiness(seen)
        zookeeper = self.context.zookeeper
        self.send_json(
            {
                "status": "ok",
                "version": __version__,
                "ready": ready,
                "role": "leader" if seen.leader else "standby",
                "leader": seen.leader,
                "identifier": seen.identifier,
                "leader_identifier": health.get("leader_identifier"),
                "framework_id": health.get("framework_id"),
                "mesos": {"connected": seen.mesos_subscribed},
                "zookeeper": {"connected": zookeeper.connected, "state": zookeeper.state},
                **({"error": f"the scheduler did not report its health: {health['error']}"}
                   if "error" in health else {}),
            }
        )


def _text(value: Any) -> str | None:
    return str(value) if value else None
