"""One runtime thread owns leadership and state: the API reads a snapshot published after each event, so a
GET answers while the worker is blocked in a long offer cycle; leadership changes posted by other threads
take effect only when the worker applies them, in order; every submit, with or without an idempotency
key, goes through one group commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from mesos_gpu.core.events import OffersReceived, Subscribed
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Driver, Store
from tests.waiting import wait_until

SPEC = {"name": "j", "command": "true", "cpus": 1, "mem": 64}
NOW = 1_000_000.0


class BlockingPlanner:
    """The real planner, held up inside the offer cycle until released (a slow cycle at a deep queue)."""

    def __init__(self) -> None:
        self.inner = make_planner()
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any) -> Any:
        if self.hold:
            self.entered.set()
            assert self.release.wait(20), "the test never released the planner"
        return self.inner(*args)


@pytest.fixture
def runtime() -> Iterator[tuple[SchedulerRuntime, BlockingPlanner, list[Driver]]]:
    drivers: list[Driver] = []

    def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> Driver:
        drivers.append(Driver())
        return drivers[-1]

    planner = BlockingPlanner()
    made = SchedulerRuntime(store=Store(), planner=planner, options=FrameworkOptions(master="127.0.0.1:1"),
                            launch=LaunchSettings(), identifier="a:1", tick_seconds=3600, clock=lambda: NOW,
                            driver_factory=factory)  # type: ignore[arg-type]
    made.start()
    wait_until(lambda: drivers and made.is_leader, 5, "the driver")
    made.post_event(Subscribed("fw-1", NOW)).result(5)
    yield made, planner, drivers
    planner.release.set()
    made.stop()


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """What `call()` returns, failing the test when it takes longer than `seconds`."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(seconds)


def blocked_cycle(runtime: SchedulerRuntime, planner: BlockingPlanner) -> Future[Any]:
    """An offer cycle the worker is stuck in (until `planner.release` is set)."""
    planner.hold = True
    cycle = runtime.post_event(OffersReceived((), NOW))
    assert planner.entered.wait(5), "the offer cycle never reached the planner"
    return cycle


def test_reads_answer_while_the_worker_is_blocked_in_an_offer_cycle(
    runtime: tuple[SchedulerRuntime, BlockingPlanner, list[Driver]],
) -> None:
    scheduler, planner, _ = runtime
    view, _ = scheduler.submit(validate_job(SPEC))
    cycle = blocked_cycle(scheduler, planner)

    assert within(2, lambda: scheduler.job(view["id"]))["state"] == "PENDING"
    page, total = within(2, scheduler.jobs_page)
    assert total == 1 and page[0]["id"] == view["id"]
    assert [job["id"] for job in within(2, scheduler.jobs)] == [view["id"]]
    health = within(2, scheduler.health)
    assert health["leader"] is True and health["framework_id"] == "fw-1"
    assert not cycle.done()          # all of that while the cycle was still running

    planner.release.set()
    cycle.result(5)
    # The snapshot published after the cycle has what the cycle decided (no offers: why it waits).
    assert scheduler.job(view["id"])["wait_reason"] != ""


def test_a_view_is_a_copy_the_reader_may_change(
    runtime: tuple[SchedulerRuntime, BlockingPlanner, list[Driver]],
) -> None:
    scheduler, _, _ = runtime
    view, _ = scheduler.submit(validate_job(SPEC))
    view["state"] = "FINISHED"
    scheduler.jobs_page()[0][0]["state"] = "FINISHED"
    assert scheduler.job(view["id"])["state"] == "PENDING"


def test_a_leadership_loss_is_applied_by_the_worker_in_order(
    runtime: tuple[SchedulerRuntime, BlockingPlanner, list[Driver]],
) -> None:
    scheduler, planner, drivers = runtime
    scheduler.submit(validate_job(SPEC))
    cycle = blocked_cycle(scheduler, planner)

    scheduler.store.election.is_leader = False   # as ZooKeeper's SUSPENDED drops it
    scheduler._lost("ZooKeeper connection suspended")   # the election's thread: posts only
    assert not scheduler.is_leader                        # nothing acts meanwhile: the election says so
    assert scheduler._leading and scheduler._driver is drivers[0]   # the flags are the worker's

    planner.release.set()
    cycle.result(5)
    wait_until(lambda: not scheduler._leading and scheduler._driver is None, 5, "the worker to step down")
    assert "stop" in drivers[0].calls                     # handed over: failover, tasks keep running
    assert not scheduler.health()["leader"]


def test_keyed_and_unkeyed_submits_share_the_group_commit(
    runtime: tuple[SchedulerRuntime, BlockingPlanner, list[Driver]],
) -> None:
    scheduler, planner, _ = runtime
    scheduler.submit(validate_job(SPEC))
    cycle = blocked_cycle(scheduler, planner)   # the worker is busy: the submits queue up meanwhile
    before = scheduler.submit_batches
    pending = [scheduler.submit_nowait(validate_job(SPEC), key) for key in (None, "k-1", None, "k-1")]
    planner.release.set()
    cycle.result(5)
    answers = [future.result(10) for future in pending]
    created = [created for _, created in answers]
    assert created.count(True) == 3 and created[3] is False
    assert answers[3][0]["id"] == answers[1][0]["id"]      # the same key: the same job
    assert len({view["id"] for view, _ in answers}) == 3
    assert scheduler.submit_batches - before <= 2   # one batch for the first, one for the rest
    assert len(scheduler.jobs()) == 4
