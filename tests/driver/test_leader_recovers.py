"""A leader that cannot take charge gives the leadership up, and a leader whose driver failed to restart
tries again (found by the wave 7 review: both held the election while scheduling nothing, for good)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.control import WatchdogFired
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Driver, Election, Store
from tests.driver.test_runtime_thread import NOW, BlockingPlanner


class ReElection(Election):
    """Campaigning wins again at once (ZooKeeper with no other candidate)."""

    campaigns = 0

    def campaign(self, identifier: str, on_elected: Callable[[], None], on_lost: Any) -> None:
        self.campaigns += 1
        self.is_leader = True
        on_elected()


def wait_for(what: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def make(store: Store, factory: Callable[..., Driver]) -> SchedulerRuntime:
    store.election = ReElection()
    options = FrameworkOptions(master="127.0.0.1:1")
    return SchedulerRuntime(store=store, planner=BlockingPlanner(), options=options, launch=LaunchSettings(),
                            identifier="a:1", tick_seconds=0.05, clock=lambda: NOW, driver_factory=factory)


class FlakyListStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def list(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("ZooKeeper too slow")
        return super().list(*args, **kwargs)


def test_a_leader_that_cannot_list_the_store_resigns_and_campaigns_again() -> None:
    store = FlakyListStore()
    runtime = make(store, lambda callbacks, info: Driver())
    runtime.start()
    try:
        wait_for(lambda: runtime.is_leader and runtime._driver is not None)
        assert store.failures == 0 and store.election.campaigns >= 2
    finally:
        runtime.stop()


def test_a_driver_whose_restart_failed_is_started_again_on_a_later_tick() -> None:
    made: list[Driver] = []
    fail = [False]

    def factory(callbacks: Any, info: dict[str, Any]) -> Driver:
        if fail[0]:
            fail[0] = False
            raise ConnectionError("the master's address could not be read")
        made.append(Driver())
        return made[-1]

    runtime = make(Store(), factory)
    runtime.start()
    try:
        wait_for(lambda: runtime.is_leader and len(made) == 1)
        fail[0] = True
        runtime._post(WatchdogFired("no event from the master for 75 s", made[0]))
        wait_for(lambda: not fail[0])             # the restart's start failed: no driver now
        wait_for(lambda: len(made) == 2 and runtime._driver is made[1])
    finally:
        runtime.stop()
