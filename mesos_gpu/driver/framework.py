"""pymesos scheduler callbacks turned into state-machine events; no callback ever raises.

pymesos TEARDOWNs the framework (killing every task) when an exception escapes a callback, so each
callback logs and swallows errors. Messages arrive as addict dicts and leave as plain dicts. Each task
status is logged as it arrives, and the job state changes the state machine decides on it (restarts,
failures, ends: `eventlog.JobStateLog`) once the sink's future (the runtime's `post_event`) completes
with the event's commands.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from pymesos import Scheduler

from mesos_gpu.core.state import (
    Disconnected,
    Event,
    ExecutorEnded,
    OfferRescinded,
    OffersReceived,
    StatusReceived,
    Subscribed,
)

from .eventlog import JobStateLog, log_status

log = logging.getLogger(__name__)

GPU_RESOURCES = "GPU_RESOURCES"
CAPABILITIES = ("GPU_RESOURCES", "PARTITION_AWARE", "TASK_KILLING_STATE")
ONE_WEEK = 7 * 24 * 3600.0


def plain(value: Any) -> Any:
    """An addict Dict (or any mapping/list nest) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def framework_info(
    name: str,
    *,
    user: str,
    role: str = "*",
    principal: str | None = None,
    failover_timeout: float = ONE_WEEK,
    hostname: str | None = None,
    webui_url: str | None = None,
    framework_id: str | None = None,
) -> dict[str, Any]:
    """FrameworkInfo JSON: GPU_RESOURCES, PARTITION_AWARE and TASK_KILLING_STATE, checkpointing,
    and a long failover timeout (pymesos would default it to 100 s)."""
    info: dict[str, Any] = {
        "user": user,
        "name": name,
        "role": role,
        "checkpoint": True,
        "failover_timeout": failover_timeout,
        "capabilities": [{"type": capability} for capability in CAPABILITIES],
    }
    if principal:
        info["principal"] = principal
    if hostname:
        info["hostname"] = hostname
    if webui_url:
        info["webui_url"] = webui_url
    if framework_id:
        info["id"] = {"value": framework_id}
    return info


class FrameworkCallbacks(Scheduler):  # pymesos is untyped (ignore_missing_imports)
    """Feeds `sink` with events; reports liveness (`on_activity`) and master errors (`on_error(message,
    driver)`: the driver that received it, so an error of a replaced driver is told apart); answers
    whether the driver may (re-)subscribe (`may_subscribe`, see `subscribing`)."""

    def __init__(
        self,
        sink: Callable[[Event], object],
        *,
        on_activity: Callable[[], None] = lambda: None,
        on_error: Callable[[str, Any], None] = lambda message, driver: None,
        may_subscribe: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        job_states: JobStateLog | None = None,
    ) -> None:
        self._sink = sink
        self._on_activity = on_activity
        self._on_error = on_error
        self._may_subscribe = may_subscribe
        self._clock = clock
        self._jitter = jitter
        self._job_states = job_states if job_states is not None else JobStateLog()

    def _emit(self, make: Callable[[], Event | None]) -> None:
        try:
            self._on_activity()
            event = make()
            if event is not None:
                self._watch(self._sink(event))
        except Exception:  # never let an exception reach pymesos: it would TEARDOWN the framework
            log.exception("scheduler callback failed; the event was dropped")

    def _watch(self, outcome: object) -> None:
        """Log the job state changes among an event's commands, once the sink's future has them."""
        if isinstance(outcome, Future):
            outcome.add_done_callback(self._decided)

    def _decided(self, future: Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        commands = future.result()
        if isinstance(commands, list):
            self._job_states.observe(commands)

    def subscribing(self, driver: Any) -> bool:
        """Asked by `GuardedSchedulerDriver` before every (re-)SUBSCRIBE: False, and it stops instead
        (this process no longer leads, or cannot tell). An error counts as False."""
        try:
            return bool(self._may_subscribe())
        except Exception:
            log.exception("the leadership check failed; not subscribing")
            return False

    def registered(self, driver: Any, framework_id: Mapping[str, Any], master_info: Any) -> None:
        log.info("registered as framework %s with master %s", framework_id.get("value"), plain(master_info))
        self._emit(lambda: Subscribed(str(framework_id["value"]), self._clock()))

    def reregistered(self, driver: Any, master_info: Any) -> None:
        log.info("re-registered with master %s", plain(master_info))
        self._emit(lambda: Subscribed(str(driver.framework_id), self._clock()))

    def disconnected(self, driver: Any) -> None:
        log.warning("disconnected from the master")
        self._emit(lambda: Disconnected(self._clock()))

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:  # noqa: N802 - pymesos API
        self._emit(lambda: OffersReceived(tuple(plain(offer) for offer in offers), self._clock()))

    def offerRescinded(self, driver: Any, offer_id: Mapping[str, Any]) -> None:  # noqa: N802
        self._emit(lambda: OfferRescinded(str(offer_id["value"]), self._clock()))

    def statusUpdate(self, driver: Any, status: Any) -> None:  # noqa: N802 - pymesos API
        try:
            log_status(status)
        except Exception:  # a status we cannot describe is still handed on
            log.exception("could not log a status update")
        self._emit(lambda: StatusReceived(plain(status), self._clock(), self._jitter()))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:  # noqa: N802
        self._emit(lambda: None)

    def slaveLost(self, driver: Any, agent_id: Any) -> None:  # noqa: N802 - pymesos API
        log.warning("agent %s lost; its tasks' updates follow", plain(agent_id))
        self._emit(lambda: None)

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:  # noqa: N802
        """A FAILURE event with an executor id: the executor ended (a share host that lingered out,
        crashed or was shut down); its tasks' updates follow."""
        log.info("executor %s on agent %s exited with %s", plain(executor_id), plain(agent_id), plain(status))
        self._emit(lambda: ExecutorEnded(str(agent_id["value"]), str(executor_id["value"]), self._clock()))

    def error(self, driver: Any, message: str) -> None:
        log.error("master error: %s", message)
        try:
            self._on_error(str(message), driver)
        except Exception:
            log.exception("error handler failed")

    def processHeartBeat(self, driver: Any) -> None:  # noqa: N802 - pymesos API
        self._emit(lambda: None)
