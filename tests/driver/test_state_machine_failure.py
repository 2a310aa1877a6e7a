"""A state machine that raises in the middle of an event leaves the term's memory half-changed (here: a
job STAGING for an attempt never stored nor launched) and the event's offers unanswered. The term resigns;
the next one recovers the job from the store and launches it. Before, the worker logged the error and
went on with that memory: the job stayed STAGING, never launched, until some later failover."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu.core.events import OffersReceived
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import SchedulerState, Tick
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Driver, Store
from tests.driver.test_runtime_review8 import Campaigning
from tests.scheduler.builders import offer
from tests.waiting import wait_until

NOW = 1_000.0
SPEC = validate_job({"name": "j", "command": "true", "cpus": 1, "mem": 64})


class Leading:
    def __init__(self) -> None:
        self.drivers: list[tuple[FrameworkCallbacks, Driver]] = []
        self.store = Store()
        self.store.election = Campaigning()     # re-elected at once after a resignation

        def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> Driver:
            self.drivers.append((callbacks, Driver()))
            return self.drivers[-1][1]

        self.runtime = SchedulerRuntime(
            store=self.store, planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
            launch=LaunchSettings(), identifier="a:1", clock=lambda: NOW, tick_seconds=3600,
            driver_factory=factory,  # type: ignore[arg-type]
        )
        self.runtime.start()
        self.subscribe(1)

    def subscribe(self, term: int) -> None:
        """The driver of the `term`-th term (from 1) subscribed."""
        wait_until(lambda: len(self.drivers) >= term, 5, "the term's driver")
        self.drivers[term - 1][0].registered(None, {"value": "F"}, {})
        self.settle()

    def settle(self) -> None:
        self.runtime.post_event(Tick(NOW)).result(5)

    def offer(self) -> None:
        self.drivers[-1][0].resourceOffers(None, [offer("S1", gpus=0)])


@pytest.fixture
def leading() -> Iterator[Leading]:
    made = Leading()
    yield made
    made.runtime.stop()


def test_a_term_whose_state_machine_raised_mid_event_resigns_and_the_next_recovers_the_job(
        leading: Leading) -> None:
    runtime = leading.runtime
    view, created = runtime.submit(SPEC)
    assert created
    job_id = view["id"]
    state = runtime._state
    handle = state.handle

    def failing(event: Any) -> Any:
        commands = handle(event)     # memory changed (the job STAGING, attempt 0)...
        if isinstance(event, OffersReceived) and event.offers:
            raise RuntimeError("the state machine failed")    # ...and nothing of it carried out
        return commands

    state.handle = failing  # type: ignore[method-assign]
    first = leading.drivers[-1][1]
    leading.offer()
    wait_until(lambda: runtime.is_leader and runtime._state is not state, 5, "a new term")
    assert isinstance(runtime._state, SchedulerState)
    assert "stop" in first.calls               # the old term's driver stopped: its offers go back
    assert "launchTasks" not in first.calls and "acceptOffers" not in first.calls
    stored = leading.store.get(job_id).data
    assert stored["state"] == "PENDING"         # nothing of the failed event was stored
    leading.subscribe(2)
    assert runtime.job(job_id)["state"] == "PENDING"
    leading.offer()
    leading.settle()
    wait_until(lambda: leading.store.get(job_id).data["state"] == "STAGING", 5, "the job launched")
    second = leading.drivers[-1][1]
    assert any(call in second.calls for call in ("launchTasks", "acceptOffers")), second.calls
    assert leading.store.get(job_id).data["attempt"] == 0
