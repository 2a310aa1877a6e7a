"""The runtime findings of the wave 8 review (issue 17), each with a test that failed on the code before:

- jobs a batch stored are answered without reading the store back (ZooKeeper away: each read waited its
  deadline, one job after another, past the API's timeout); a keyed submit that times out is a 503;
- readers stop seeing a leader's snapshot as leadership ends, before the driver stops, and after `stop()`;
- a SUBSCRIBED is compared with the framework id the worker holds (no ZooKeeper read per SUBSCRIBED);
- a driver is published only once started (the ticker took an unstarted one for aborted);
- jobs stored that the state machine failed on make the leader resign, so that a leader lists them;
- the `/v1/tenants` routes use the book the service was given whatever its class, and keep it there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from mesos_gpu.api.tenants import routes
from mesos_gpu.core.errors import UnavailableError
from mesos_gpu.core.events import JobsSubmitted, Subscribed, Tick
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.store.base import StoreUnavailable, Submitted
from tests.driver.fakes import Driver, Election, Store
from tests.waiting import wait_until

NOW = 1_000_000.0
SPEC = validate_job({"name": "j", "command": "true", "cpus": 1, "mem": 64})


def runtime_of(store: Store, factory: Callable[..., Any] | None = None, tick: float = 3600.0
               ) -> SchedulerRuntime:
    return SchedulerRuntime(store=store, planner=make_planner(),
                            options=FrameworkOptions(master="127.0.0.1:1"), launch=LaunchSettings(),
                            identifier="a:1", tick_seconds=tick, clock=lambda: NOW,
                            driver_factory=factory or (lambda callbacks, info: Driver()))


@pytest.fixture
def started() -> Iterator[list[SchedulerRuntime]]:
    """The runtimes a test started; each is stopped after it."""
    made: list[SchedulerRuntime] = []
    yield made
    for runtime in made:
        runtime.stop()


def start(made: list[SchedulerRuntime], runtime: SchedulerRuntime) -> SchedulerRuntime:
    made.append(runtime)
    runtime.start()
    wait_until(lambda: runtime.is_leader and runtime._driver is not None, 5, "leadership")
    return runtime


class LosingStore(Store):
    """The first batch holds the writer until `go` is set; the second batch commits, then ZooKeeper goes
    away (the runtime loses leadership): each read now fails after a while, as one past its deadline."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.entered = threading.Event()
        self.batches = 0
        self.lost = False
        self.reads_after_loss: list[str] = []
        self.runtime: SchedulerRuntime | None = None

    def create_many(self, items: Any) -> Any:
        self.batches += 1
        if self.batches == 1:
            self.entered.set()
            self.go.wait(5)
            return super().create_many(items)
        out = super().create_many(items)
        self.lost = True
        self.election.is_leader = False
        assert self.runtime is not None
        self.runtime._lost("suspended")
        return out

    def get(self, job_id: str) -> Any:
        if self.lost:
            self.reads_after_loss.append(job_id)
            threading.Event().wait(0.2)
            raise StoreUnavailable("ZooKeeper did not answer")
        return super().get(job_id)


def test_jobs_stored_as_leadership_ends_are_answered_without_reading_the_store(
    started: list[SchedulerRuntime],
) -> None:
    store = LosingStore()
    runtime = store.runtime = start(started, runtime_of(store))
    first = runtime.submit_nowait(SPEC)
    assert store.entered.wait(5), "the first batch never reached the store"
    queued = [runtime.submit_nowait(SPEC) for _ in range(6)]   # one batch, written after the first
    store.go.set()
    first.result(10)
    answers = [future.result(10) for future in queued]
    assert all(created and view["state"] == "PENDING" for view, created in answers)
    assert store.reads_after_loss == [], "stored jobs were read back from an unreachable store"


class SlowKeyed(Store):
    """A keyed write that takes longer than the caller waits (ZooKeeper slow to answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def submit(self, job_id: str, data: Any, idempotency_key: str | None) -> Submitted:
        if idempotency_key is not None:
            self.release.wait(5)
        return super().submit(job_id, data, idempotency_key)


def test_a_keyed_submit_that_times_out_is_unavailable(started: list[SchedulerRuntime]) -> None:
    store = SlowKeyed()
    runtime = start(started, runtime_of(store))
    try:
        with pytest.raises(UnavailableError):   # the API answers 503, not 500 "internal"
            runtime.submit(SPEC, "key-1", timeout=0.1)
    finally:
        store.release.set()


class SlowStop(Driver):
    """A driver whose stop waits (pymesos joins its I/O thread: a slow master connection)."""

    release = threading.Event()

    def join(self) -> None:
        self.release.wait(5)


def test_readers_see_no_leader_as_leadership_ends_while_the_driver_stops(
    started: list[SchedulerRuntime],
) -> None:
    store = Store()
    driver = SlowStop()
    driver.release = threading.Event()
    runtime = start(started, runtime_of(store, lambda callbacks, info: driver))
    try:
        runtime.submit(SPEC)
        store.election.is_leader = False
        runtime._lost("suspended")
        wait_until(lambda: not runtime.health()["leader"], 3, "no leader shown while the driver stops")
        assert "stop" in driver.calls and not runtime._snapshot.leading
    finally:
        driver.release.set()


def test_a_stopped_runtime_is_not_shown_as_the_leader(started: list[SchedulerRuntime]) -> None:
    runtime = start(started, runtime_of(Store()))
    runtime.submit(SPEC)
    started.remove(runtime)
    runtime.stop()
    assert runtime.health()["leader"] is False and not runtime._snapshot.leading


class CountingStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.framework_id_reads = 0

    def get_framework_id(self) -> str | None:
        self.framework_id_reads += 1
        return super().get_framework_id()


def test_a_subscribed_is_compared_with_the_framework_id_the_worker_holds(
    started: list[SchedulerRuntime],
) -> None:
    store = CountingStore()
    runtime = start(started, runtime_of(store))
    runtime.post_event(Subscribed("fw-1", NOW)).result(5)
    reads = store.framework_id_reads
    for _ in range(3):   # re-subscriptions (e.g. the master failed over)
        runtime.post_event(Subscribed("fw-1", NOW)).result(5)
    runtime.post_event(Subscribed("fw-2", NOW)).result(5)
    assert store.framework_id_reads == reads, "the worker read ZooKeeper on a SUBSCRIBED"
    assert store.get_framework_id() == "fw-2"


class Unstarted(Driver):
    """pymesos reports a driver aborted until it is started; this start waits for `go`."""

    def __init__(self, go: threading.Event) -> None:
        super().__init__()
        self.go = go
        self.aborted = True

    def start(self) -> None:
        self.go.wait(5)
        self.aborted = False


def test_a_driver_still_starting_is_never_restarted_by_the_watchdog(started: list[SchedulerRuntime]) -> None:
    go = threading.Event()
    drivers: list[Unstarted] = []

    def factory(callbacks: Any, info: Any) -> Unstarted:
        drivers.append(Unstarted(go))
        return drivers[-1]

    runtime = runtime_of(Store(), factory, tick=0.01)
    started.append(runtime)
    runtime.start()
    try:
        wait_until(lambda: drivers and runtime._queue.qsize() >= 6, 5, "ticks while the driver starts")
    finally:
        go.set()
    runtime.post_event(Tick(NOW)).result(5)   # every watchdog queued meanwhile has been applied
    assert len(drivers) == 1, "a driver still starting was taken for aborted and restarted"


class Campaigning(Election):
    def campaign(self, identifier: str, on_elected: Callable[[], None], on_lost: Any) -> None:
        self.is_leader = True
        on_elected()


def test_stored_jobs_the_state_machine_failed_on_are_listed_by_a_leader(
    started: list[SchedulerRuntime],
) -> None:
    store = Store()
    store.election = Campaigning()
    runtime = start(started, runtime_of(store))
    state = runtime._state
    handle = state.handle

    def failing(event: Any) -> Any:
        if isinstance(event, JobsSubmitted):
            raise RuntimeError("the state machine failed")
        return handle(event)

    state.handle = failing  # type: ignore[method-assign]
    view, created = runtime.submit(SPEC)
    assert created   # stored: answered created all the same
    wait_until(lambda: runtime.is_leader and runtime._state is not state, 5, "a new term")
    wait_until(lambda: view["id"] in [job["id"] for job in runtime.jobs()], 5, "the stored job listed")


class OwnBook:
    """A tenants book that is not a `TenantsBook` (e.g. a wrapper): the routes must use it as given."""

    def __init__(self) -> None:
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1


def test_the_tenants_routes_use_and_keep_the_book_the_service_was_given() -> None:
    book = OwnBook()
    service = SimpleNamespace(tenancy=book, store=Store())
    [(_, _, arguments)] = routes(SimpleNamespace(service=service), SimpleNamespace(tenants_file=None))  # type: ignore[arg-type]
    assert arguments["book"] is book and service.tenancy is book and book.reloads == 1
