"""The Mesos side of the runtime: how this scheduler registers (`FrameworkOptions`), the part of
pymesos's `MesosSchedulerDriver` it uses (`SchedulerDriverLike`, made by a `DriverFactory`), and
`carry_out`, which turns one state-machine command into its driver call.

Example::

    driver = pymesos_driver_factory(FrameworkOptions("zk://zk:2181/mesos"))(callbacks, info)
    carry_out(driver, Decline(("O1",), refuse_seconds=5.0))   # driver.declineOffer([...], {...})
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pymesos import MesosSchedulerDriver

from mesos_gpu.core.commands import GracefulKill
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

from .eventlog import log_kill, log_launch
from .framework import ONE_WEEK, FrameworkCallbacks, framework_info

log = logging.getLogger(__name__)


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


def framework_info_of(options: FrameworkOptions, framework_id: str | None) -> dict[str, Any]:
    """The FrameworkInfo this scheduler subscribes with (`framework_id`: the stored one, if any)."""
    return framework_info(
        options.name,
        user=options.user,
        role=options.role,
        principal=options.principal,
        failover_timeout=options.failover_timeout,
        hostname=options.hostname,
        webui_url=options.webui_url,
        framework_id=framework_id,
    )


def stop_for_failover(driver: SchedulerDriverLike) -> None:
    """Stop `driver` leaving the framework to a successor (tasks keep running), and wait for it."""
    # pymesos's zk:// master detector stops its kazoo client but never closes it: close it here, or
    # every driver restart (watchdog, failover) would leak a client and its sockets.
    detector = getattr(driver, "detector", None)
    driver.stop(failover=True)
    driver.join()
    _close_detector(detector)


def _close_detector(detector: Any) -> None:
    client = getattr(detector, "zk", None)
    if client is not None:
        client.close()


class GuardedSchedulerDriver(MesosSchedulerDriver):  # pymesos is untyped (ignore_missing_imports)
    """pymesos's driver, asking its scheduler's `subscribing(driver)` before every SUBSCRIBE.

    pymesos re-subscribes at once whenever its stream ends (`gen_request` makes the SUBSCRIBE of each
    new connection). A leader paused past its ZooKeeper session would wake to a stream the master
    closed ("Framework failed over") and take the framework back from the new leader, which takes it
    back in turn. Refused, this driver sends nothing and stops (as `stop(failover=True)`: tasks keep
    running); the runtime's watchdog makes a new one while the process still believes it leads.
    """

    def gen_request(self) -> bytes:
        subscribing = getattr(self.sched, "subscribing", None)
        if subscribing is None or subscribing(self):
            request: bytes = super().gen_request()
            return request
        log.warning("not subscribing to %s: this scheduler does not lead; the driver stops", self.master)
        detector = self.detector
        self.stop(failover=True)
        _close_detector(detector)
        return b""  # the connection writes nothing; the I/O loop sees the stop before anything else

    def killTaskWithGrace(self, task_id: Any, grace_seconds: float) -> None:  # noqa: N802
        """pymesos's `killTask` with the KILL call's `kill_policy.grace_period` (Call.Kill in the v1
        scheduler API): the agent sends SIGTERM, then SIGKILL after this grace instead of the TaskInfo's."""
        if not self.connected:
            return
        grace = {"grace_period": {"nanoseconds": int(grace_seconds * 1e9)}}
        kill = {"task_id": task_id, "kill_policy": grace}
        self._send({"type": "KILL", "framework_id": {"value": self.framework_id}, "kill": kill})


def pymesos_driver_factory(options: FrameworkOptions, http_timeout: float = 60.0) -> DriverFactory:
    """Make real pymesos drivers (`GuardedSchedulerDriver`): explicit acknowledgements, addict messages,
    and `failover=True` so a crash of the driver thread never TEARDOWNs the framework (only an explicit
    `stop()` would)."""

    def make(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> SchedulerDriverLike:
        driver: SchedulerDriverLike = GuardedSchedulerDriver(
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
    """Make the driver call of one command (Persist and ClearRendezvous are the runtime's own); each
    launch and kill is logged (`eventlog`) before its call."""
    match command:
        case Accept(offer_ids=offer_ids, task_infos=infos, refuse_seconds=refuse):
            log_launch(command)
            operations = [{"type": "LAUNCH", "launch": {"task_infos": list(infos)}}]
            driver.acceptOffers(
                [{"value": o} for o in offer_ids], operations, {"refuse_seconds": refuse}
            )
        case Decline(offer_ids=offer_ids, refuse_seconds=refuse):
            driver.declineOffer([{"value": o} for o in offer_ids], {"refuse_seconds": refuse})
        case GracefulKill(task_id=task_id, grace_seconds=grace):
            log_kill(command)
            graceful = getattr(driver, "killTaskWithGrace", None)   # a driver without it: plain KILL
            if graceful is None:
                driver.killTask({"value": task_id})
            else:
                graceful({"value": task_id}, grace)
        case KillTask(task_id=task_id):
            log_kill(command)
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
