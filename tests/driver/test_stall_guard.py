"""A leader that stalled (SIGSTOP past its ZooKeeper session, as the fault soak does) asks ZooKeeper before
its next call to the master: the soak saw a woken leader's ACKNOWLEDGE reach the master a few ms before
kazoo told it that it had lost (issue 20 item 6). `StallGuard` by itself, then through the runtime."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import Tick
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.driver.stall import StallGuard
from tests.driver.fakes import Driver, Election, Store
from tests.scheduler.builders import offer, status
from tests.waiting import wait_until

NOW = 1_000.0  # the runtime's own clock (the stall guard has its own)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_gap_between_beats_is_in_doubt_whichever_thread_runs_first_after_the_wake() -> None:
    clock = Clock()
    guard = StallGuard(threshold=1.0, clock=clock)
    clock.now += 0.1
    guard.beat()
    assert not guard.in_doubt()
    clock.now += 30  # paused: the worker may run before the guard's thread...
    assert guard.in_doubt()
    guard.beat()  # ...or after it: the stall is counted either way
    assert guard.in_doubt() and guard.stalls == 1
    seen = guard.stalls
    guard.verified(seen)
    assert not guard.in_doubt()
    clock.now += 5
    guard.beat()
    assert guard.in_doubt()
    guard.verified(seen)  # a verification begun before this stall does not clear it
    assert guard.in_doubt()


@pytest.fixture
def leading() -> Iterator[tuple[SchedulerRuntime, FrameworkCallbacks, Driver, Clock, Election]]:
    made: list[tuple[FrameworkCallbacks, Driver]] = []

    def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> Driver:
        made.append((callbacks, Driver()))
        return made[-1][1]

    store, clock = Store(), Clock()
    runtime = SchedulerRuntime(store=store, planner=make_planner(),
                               options=FrameworkOptions(master="127.0.0.1:1"),
                               launch=LaunchSettings(), identifier="a:1", tick_seconds=3600,
                               clock=lambda: NOW,
                               driver_factory=factory)  # type: ignore[arg-type]
    runtime._stall = StallGuard(threshold=1.0, interval=3600, clock=clock)  # beats by hand
    runtime.start()
    wait_until(lambda: made, 5, "the driver")
    callbacks, driver = made[0]
    callbacks.registered(None, {"value": "F"}, {})
    yield runtime, callbacks, driver, clock, store.election
    runtime.stop()


def test_after_a_stall_a_leader_zookeeper_no_longer_confirms_makes_no_call(
    leading: tuple[SchedulerRuntime, FrameworkCallbacks, Driver, Clock, Election],
) -> None:
    runtime, callbacks, driver, clock, election = leading
    job = runtime.submit(validate_job({"name": "j", "command": "sleep 9", "cpus": 1, "mem": 64}))[0]["id"]
    callbacks.resourceOffers(None, [offer("S1", gpus=0)])
    runtime.post_event(Tick(NOW)).result(5)
    assert "acceptOffers" in driver.calls
    election.confirms = False  # the session expired while paused; kazoo has not noticed yet
    callbacks.statusUpdate(None, status(f"{job}.task-0.0", "TASK_RUNNING"))
    runtime.post_event(Tick(NOW)).result(5)
    assert "acknowledgeStatusUpdate" in driver.calls  # no stall: no question asked, the call is made
    driver.calls.clear()
    clock.now += 30  # SIGSTOP ... SIGCONT
    callbacks.statusUpdate(None, status(f"{job}.task-0.0", "TASK_FINISHED"))
    runtime.post_event(Tick(NOW)).result(5)
    assert driver.calls == []


def test_after_a_stall_a_leader_zookeeper_confirms_goes_on_and_asks_once(
    leading: tuple[SchedulerRuntime, FrameworkCallbacks, Driver, Clock, Election],
) -> None:
    runtime, callbacks, driver, clock, election = leading
    job = runtime.submit(validate_job({"name": "j", "command": "sleep 9", "cpus": 1, "mem": 64}))[0]["id"]
    asked: list[bool] = []
    verify = election.verify_leadership
    election.verify_leadership = lambda: asked.append(True) or verify()  # type: ignore[method-assign]
    clock.now += 30
    runtime._stall.beat()
    callbacks.resourceOffers(None, [offer("S1", gpus=0)])
    runtime.post_event(Tick(NOW)).result(5)
    callbacks.statusUpdate(None, status(f"{job}.task-0.0", "TASK_RUNNING"))
    runtime.post_event(Tick(NOW)).result(5)
    assert "acceptOffers" in driver.calls and "acknowledgeStatusUpdate" in driver.calls
    assert asked == [True]
