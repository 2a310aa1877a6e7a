"""The records an event changes are stored in one write (`compare_and_set_many`), not one each: an offer
cycle that launches thousands of jobs took one ZooKeeper round trip per job (about 1.5 ms each, seconds
per cycle) before any of them was launched. Persist before launch still holds: the write comes first.
And API reads (the snapshot) show an event's states only once they are stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import Tick
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Driver, Store
from tests.scheduler.builders import offer
from tests.waiting import wait_until

NOW = 1_000.0
SPEC = validate_job({"name": "j", "command": "true", "cpus": 0.1, "mem": 32})


class CountingStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, int]] = []    # (method, items)
        self.driver: Driver | None = None
        self.launched_before_stored: list[str] = []

    def compare_and_set(self, job_id: str, data: Any, expected_version: int) -> Any:
        self.writes.append(("compare_and_set", 1))
        return super().compare_and_set(job_id, data, expected_version)

    def compare_and_set_many(self, items: Sequence[tuple[str, Any, int]]) -> list[int]:
        self.writes.append(("compare_and_set_many", len(items)))
        if self.driver is not None and self.driver.calls:
            self.launched_before_stored += self.driver.calls
        return super().compare_and_set_many(items)


def started(store: Store) -> tuple[SchedulerRuntime, FrameworkCallbacks, Driver]:
    """A runtime leading over `store` with a fake driver, subscribed."""
    made: list[tuple[FrameworkCallbacks, Driver]] = []

    def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> Driver:
        made.append((callbacks, Driver()))
        return made[-1][1]

    runtime = SchedulerRuntime(
        store=store, planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
        launch=LaunchSettings(), identifier="a:1", clock=lambda: NOW, tick_seconds=3600,
        driver_factory=factory,  # type: ignore[arg-type]
    )
    runtime.start()
    wait_until(lambda: made, 5, "the driver")
    callbacks, driver = made[0]
    callbacks.registered(None, {"value": "F"}, {})
    runtime.post_event(Tick(NOW)).result(5)
    return runtime, callbacks, driver


@pytest.fixture
def leading() -> Iterator[tuple[SchedulerRuntime, CountingStore, FrameworkCallbacks, Driver]]:
    store = CountingStore()
    runtime, callbacks, driver = started(store)
    yield runtime, store, callbacks, driver
    runtime.stop()


def test_an_offer_cycle_stores_every_job_it_launches_in_one_write_before_launching(
        leading: tuple[SchedulerRuntime, CountingStore, FrameworkCallbacks, Driver]) -> None:
    runtime, store, callbacks, driver = leading
    ids = [runtime.submit(SPEC)[0]["id"] for _ in range(40)]
    store.writes.clear()
    driver.calls.clear()
    store.driver = driver
    callbacks.resourceOffers(None, [offer("S1", gpus=0, cpus=64, mem=65536)])
    runtime.post_event(Tick(NOW)).result(5)
    assert all(store.get(job_id).data["state"] == "STAGING" for job_id in ids)
    assert store.writes == [("compare_and_set_many", 40)]
    assert store.launched_before_stored == []
    assert any(call in driver.calls for call in ("launchTasks", "acceptOffers")), driver.calls


class HeldStore(Store):
    """Each job write waits for `go` once `hold` is set (ZooKeeper slow to answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = threading.Event()
        self.go = threading.Event()
        self.waiting = threading.Event()

    def _wait(self) -> None:
        if self.hold.is_set():
            self.waiting.set()
            assert self.go.wait(10)

    def compare_and_set(self, job_id: str, data: Any, expected_version: int) -> Any:
        self._wait()
        return super().compare_and_set(job_id, data, expected_version)

    def compare_and_set_many(self, items: Sequence[tuple[str, Any, int]]) -> list[int]:
        self._wait()
        return super().compare_and_set_many(items)


def test_api_reads_see_a_launch_only_once_its_record_is_stored() -> None:
    store = HeldStore()
    runtime, callbacks, _ = started(store)
    try:
        job_id = runtime.submit(SPEC)[0]["id"]
        store.hold.set()
        callbacks.resourceOffers(None, [offer("S1", gpus=0)])
        assert store.waiting.wait(5)
        time.sleep(0.2)     # (before: the STAGING snapshot was published before the write began)
        assert runtime.job(job_id)["state"] == "PENDING"     # not stored yet: not shown
        assert store.get(job_id).data["state"] == "PENDING"
        store.go.set()
        wait_until(lambda: runtime.job(job_id)["state"] == "STAGING", 5, "the launch shown once stored")
    finally:
        store.go.set()
        runtime.stop()
