"""A kill queued behind a slow offer cycle while leadership is lost is answered "not the leader", never
KILLED without being stored (found by the wave 7 review: the worker applied the kill in memory, its
Persist was skipped, and the job came back PENDING at re-election and ran)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mesos_gpu.core.errors import NotLeaderError
from mesos_gpu.core.events import OffersReceived, Subscribed
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Driver, Store
from tests.driver.test_runtime_thread import NOW, SPEC, BlockingPlanner


def wait_for(what: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_kill_applied_after_leadership_was_lost_is_not_answered_as_done() -> None:
    drivers: list[Driver] = []

    def factory(callbacks: Any, info: dict[str, Any]) -> Driver:
        drivers.append(Driver())
        return drivers[-1]

    planner, store = BlockingPlanner(), Store()
    runtime = SchedulerRuntime(store=store, planner=planner, options=FrameworkOptions(master="127.0.0.1:1"),
                               launch=LaunchSettings(), identifier="a:1", tick_seconds=3600,
                               clock=lambda: NOW, driver_factory=factory)
    runtime.start()
    pool = ThreadPoolExecutor(1)
    try:
        wait_for(lambda: drivers and runtime.is_leader)
        runtime.post_event(Subscribed("fw-1", NOW)).result(5)
        view, _ = runtime.submit(validate_job(SPEC))
        job_id = view["id"]
        planner.hold = True
        cycle = runtime.post_event(OffersReceived((), NOW))
        assert planner.entered.wait(5)
        kill = pool.submit(runtime.kill, job_id)        # queued behind the offer cycle
        wait_for(lambda: runtime._queue.qsize() >= 1)
        store.election.is_leader = False                # ZooKeeper suspended: the election's flag drops
        runtime._lost("ZooKeeper connection suspended")  # and LeadershipLost is queued after the kill
        planner.release.set()
        with pytest.raises(NotLeaderError):
            kill.result(5)
        cycle.exception(5)
        assert store.get(job_id).data["state"] == "PENDING"   # nothing was claimed that was not stored
    finally:
        planner.release.set()
        pool.shutdown()
        runtime.stop()
