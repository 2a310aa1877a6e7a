"""A preemption's `GracefulKill` reaches Mesos as a KILL carrying `kill_policy.grace_period` (Call.Kill in
the v1 scheduler API), so the agent waits that long between SIGTERM and SIGKILL; a plain `KillTask` stays
a plain KILL, and a driver without the graceful call falls back to one."""

from __future__ import annotations

import threading
from typing import Any

from mesos_gpu.core.commands import GracefulKill, KillTask
from mesos_gpu.driver.mesosdriver import GuardedSchedulerDriver, carry_out


class Recorder:
    def __init__(self, graceful: bool) -> None:
        self.calls: list[tuple[str, Any]] = []
        if graceful:
            self.killTaskWithGrace = lambda task_id, grace: self.calls.append(("grace", (task_id, grace)))

    def killTask(self, task_id: Any) -> None:
        self.calls.append(("kill", task_id))


def test_a_graceful_kill_uses_the_drivers_graceful_call() -> None:
    driver = Recorder(graceful=True)
    carry_out(driver, GracefulKill("t1", "agent-1", 7.5))  # type: ignore[arg-type]
    carry_out(driver, KillTask("t2", "agent-1"))  # type: ignore[arg-type]
    assert driver.calls == [("grace", ({"value": "t1"}, 7.5)), ("kill", {"value": "t2"})]


def test_a_driver_without_it_sends_a_plain_kill() -> None:
    driver = Recorder(graceful=False)
    carry_out(driver, GracefulKill("t1", "agent-1", 7.5))  # type: ignore[arg-type]
    assert driver.calls == [("kill", {"value": "t1"})]


def test_the_kill_call_carries_the_grace_in_nanoseconds() -> None:
    sent: list[dict[str, Any]] = []
    driver = GuardedSchedulerDriver.__new__(GuardedSchedulerDriver)
    driver._framework = {"id": {"value": "fw-1"}}  # what pymesos's framework_id property reads
    driver._lock = threading.RLock()
    driver._stream_id = "stream-1"  # connected (pymesos: a stream id)
    driver._send = lambda body, *args, **kwargs: sent.append(body)  # type: ignore[method-assign]
    driver.killTaskWithGrace({"value": "t1"}, 2.5)
    assert sent == [{"type": "KILL", "framework_id": {"value": "fw-1"},
                     "kill": {"task_id": {"value": "t1"},
                              "kill_policy": {"grace_period": {"nanoseconds": 2_500_000_000}}}}]
