"""The Mesos side of the runtime: how this scheduler registers (`FrameworkOptions`), the part of
pymesos's `MesosSchedulerDriver` it uses (`SchedulerDriverLike`, made by a `DriverFactory`), and
`carry_out`, which turns one state-machine command into its driver call.

Example::

    driver = pymesos_driver_factory(FrameworkOptions("zk://zk:2181/mesos"))(callbacks, info)
    carry_out(driver, Decline(("O1",), refuse_seconds=5.0))   # driver.declineOffer([...], {...})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mesos_gpu.core.state import (
    Accept,
    Acknowledge,
    Command,
    Decline,
    KillTask,
    Reconcile,
    Revive,
    Suppress,
)

from .framework import ONE_WEEK, FrameworkCallbacks


class SchedulerDriverLike(Protocol):
    """The part of pymesos.MesosSchedulerDriver the runtime uses."""

    @property
    def connected(self) -> bool: ...
    @property
    def aborted(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self, failover: bool = False) -> None: ...
    def join(self) -> None: ...
    def acceptOffers(self, offer_ids: Any, operations: Any, filters: Any = None) -> None: ...  # noqa: N802
    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None: ...  # noqa: N802
    def killTask(self, task_id: Any) -> None: ...  # noqa: N802
    def suppressOffers(self) -> None: ...  # noqa: N802
    def reviveOffers(self) -> None: ...  # noqa: N802
    def reconcileTasks(self, tasks: Any) -> None: ...  # noqa: N802
    def acknowledgeStatusUpdate(self, status: Any) -> None: ...  # noqa: N802


DriverFactory = Callable[[FrameworkCallbacks, dict[str, Any]], SchedulerDriverLike]


@dataclass(frozen=True)
class FrameworkOptions:
    """How this scheduler registers with Mesos."""

    master: str  # "host:port" or "zk://host:port/mesos"
    name: str = "mesos-gpu"
    user: str = "root"
    role: str = "*"
    principal: str | None = None
    secret: str | None = None
    failover_timeout: float = ONE_WEEK
    hostname: str | None = None
    webui_url: str | None = None


def pymesos_driver_factory(options: FrameworkOptions, http_timeout: float = 60.0) -> DriverFactory:
    """Make real pymesos drivers: explicit acknowledgements, addict messages, and `failover=True` so a
    crash of the driver thread never TEARDOWNs the framework (only an explicit `stop()` would)."""

    def make(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> SchedulerDriverLike:
        from pymesos import MesosSchedulerDriver

        driver: SchedulerDriverLike = MesosSchedulerDriver(
            callbacks,
            info,
            options.master,
            use_addict=True,
            implicit_acknowledgements=False,
            principal=options.principal,
            secret=options.secret,
            failover=True,
            timeout=http_timeout,
        )
        return driver

    return make


def carry_out(driver: SchedulerDriverLike, command: Command) -> None:
    """Make the driver call of one command (Persist and ClearRendezvous are the runtime's own)."""
    match command:
        case Accept(offer_ids=offer_ids, task_infos=infos, refuse_seconds=refuse):
            operations = [{"type": "LAUNCH", "launch": {"task_infos": list(infos)}}]
            driver.acceptOffers(
                [{"value": o} for o in offer_ids], operations, {"refuse_seconds": refuse}
            )
        case Decline(offer_ids=offer_ids, refuse_seconds=refuse):
            driver.declineOffer([{"value": o} for o in offer_ids], {"refuse_seconds": refuse})
        case KillTask(task_id=task_id):
            driver.killTask({"value": task_id})
        case Suppress():
            driver.suppressOffers()
        case Revive():
            driver.reviveOffers()
        case Reconcile(tasks=tasks):
            driver.reconcileTasks(
                [
                    {"task_id": {"value": t}, **({"agent_id": {"value": a}} if a else {})}
                    for t, a in tasks
                ]
            )
        case Acknowledge(status=status):
            driver.acknowledgeStatusUpdate(status)
