"""Calls to the master that failed are made again after the next events' calls (`driver.callagain`): the
offers of a failed ACCEPT or DECLINE declined (with that answer's filter), failed kills sent again, the
last failed REVIVE or SUPPRESS made again unless a later one succeeded; never given up, but tried at most
every `RETRY_SECONDS` while failing (0 here unless said), and forgotten at a (re)subscription (the master
takes every outstanding offer back then).
Before: a failed call was only logged: its offers stayed outstanding at the master, a killed job's task
kept running, and a failed REVIVE left the framework suppressed while a job waited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import Command, Decline, KillTask, Revive, Tick
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver import callagain
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Store
from tests.scheduler.builders import offer
from tests.waiting import wait_until

NOW = 1_000.0


class Flaky:
    """A driver whose ACCEPT, DECLINE, KILL, REVIVE and SUPPRESS calls fail while `failing` is set; the
    calls are noted."""

    connected = True
    aborted = False

    def __init__(self) -> None:
        self.failing = False
        self.declines: list[tuple[list[str], Any]] = []
        self.accepts: list[list[str]] = []
        self.calls: list[str] = []     # kills (their task ids), "revive" and "suppress", in order

    def killTask(self, task_id: Any) -> None:
        self._note(task_id["value"])

    def reviveOffers(self) -> None:
        self._note("revive")

    def suppressOffers(self) -> None:
        self._note("suppress")

    def _note(self, call: str) -> None:
        self.calls.append(call)
        if self.failing:
            raise ConnectionResetError("reset")

    def acceptOffers(self, offer_ids: Any, operations: Any, filters: Any = None) -> None:
        self.accepts.append([ref["value"] for ref in offer_ids])
        if self.failing:
            raise ConnectionResetError("reset")

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.declines.append(([ref["value"] for ref in offer_ids], filters))
        if self.failing:
            raise ConnectionResetError("reset")

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

    def killTaskWithGrace(self, task_id: Any, grace: float) -> None:
        self.killTask(task_id)


class Running:
    def __init__(self) -> None:
        self.drivers: list[tuple[FrameworkCallbacks, Flaky]] = []

        def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> Flaky:
            self.drivers.append((callbacks, Flaky()))
            return self.drivers[-1][1]

        self.runtime = SchedulerRuntime(
            store=Store(), planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
            launch=LaunchSettings(), identifier="a:1", clock=lambda: NOW, tick_seconds=3600,
            driver_factory=factory,  # type: ignore[arg-type]
        )
        self.runtime.start()
        wait_until(lambda: self.drivers, 5, "the driver")
        self.callbacks, self.driver = self.drivers[0]
        self.subscribe()

    def subscribe(self) -> None:
        self.callbacks.registered(None, {"value": "F"}, {})
        self.settle()

    def settle(self) -> None:
        self.runtime.post_event(Tick(NOW)).result(5)

    def offer(self, offer_id: str) -> None:
        self.callbacks.resourceOffers(None, [offer("S1", gpus=0, offer_id=offer_id)])
        self.settle()


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.setattr(callagain, "RETRY_SECONDS", 0.0)
    made = Running()
    yield made
    made.runtime.stop()


def test_the_offer_of_a_failed_accept_is_declined_again_with_its_filter(running: Running) -> None:
    running.runtime.submit(validate_job({"name": "j", "command": "true", "cpus": 1, "mem": 64}))
    running.settle()
    driver = running.driver
    driver.failing = True
    running.offer("O-1")
    assert driver.accepts == [["O-1"]]
    # tried again at once after the event's calls, then after the next event's (`offer` settles with a
    # Tick), both failing still
    assert [ids for ids, _ in driver.declines] == [["O-1"], ["O-1"]]
    driver.failing = False
    running.settle()
    assert [ids for ids, _ in driver.declines] == [["O-1"]] * 3
    refuse = driver.declines[-1][1]["refuse_seconds"]
    assert refuse > 0
    running.settle()
    assert len(driver.declines) == 3     # declined: not again


def test_failed_calls_are_never_given_up_and_tried_at_most_once_a_period_while_failing(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = running.driver
    driver.failing = True
    running.offer("O-2")        # nothing waits: the offer is declined, and that call fails
    for _ in range(20):
        running.settle()
    again = [ids for ids, _ in driver.declines if ids == ["O-2"]]
    assert len(again) == 2 + 1 + 20     # the answer and a try after it, then one per event (`offer` settles)
    clock = [time.monotonic() + 100]     # after every try so far
    running.runtime._failed._clock = lambda: clock[0]
    monkeypatch.setattr(callagain, "RETRY_SECONDS", 10.0)
    running.settle()                                 # a try, failing: the next one 10 s later
    for _ in range(5):
        running.settle()
    assert len([ids for ids, _ in driver.declines if ids == ["O-2"]]) == len(again) + 1
    driver.failing = False
    clock[0] += 10
    running.settle()
    running.settle()
    assert len([ids for ids, _ in driver.declines if ids == ["O-2"]]) == len(again) + 2   # made, once


def test_a_decline_that_keeps_failing_does_not_hold_back_a_kill() -> None:
    calls: list[str] = []

    def call(command: Command) -> None:
        calls.append(type(command).__name__)
        if isinstance(command, Decline):
            raise ConnectionResetError("reset")

    failed = callagain.FailedCalls(clock=lambda: 0.0)
    failed.failed(Decline(("O",), 5.0))
    failed.failed(KillTask("t", "S1"))
    failed.failed(Revive())
    failed.again(call)
    assert calls == ["Decline", "KillTask", "Revive"]
    calls.clear()
    failed.again(call)          # within the period after a failed try: nothing
    assert calls == []


def test_a_subscription_forgets_the_offers_of_failed_answers(running: Running) -> None:
    driver = running.driver
    driver.failing = True
    running.offer("O-3")
    assert len(driver.declines) == 3     # the answer and two tries, all failed
    driver.failing = False
    running.subscribe()                  # the master took every outstanding offer back
    running.settle()
    assert all(ids != ["O-3"] for ids, _ in driver.declines[3:]), driver.declines


def test_a_failed_kill_is_sent_again(running: Running) -> None:
    spec = validate_job({"name": "k", "command": "sleep 100", "cpus": 1, "mem": 64})
    view, _ = running.runtime.submit(spec)
    running.settle()
    running.offer("O-4")
    task_id = f"{view['id']}.task-0.0"
    driver = running.driver
    driver.failing = True
    running.runtime.kill(view["id"])
    running.settle()
    assert driver.calls.count(task_id) >= 2          # the kill, then a try after its event: both failed
    driver.failing = False
    running.settle()
    sent = driver.calls.count(task_id)
    running.settle()
    running.settle()
    assert driver.calls.count(task_id) == sent       # sent once more, then no more


def test_a_failed_revive_is_made_again(running: Running) -> None:
    driver = running.driver
    driver.failing = True
    running.runtime.submit(validate_job({"name": "r", "command": "true", "cpus": 1, "mem": 64}))
    running.settle()
    revives = driver.calls.count("revive")
    assert revives >= 2                              # the REVIVE, then a try: both failed
    driver.failing = False
    running.settle()
    assert driver.calls.count("revive") == revives + 1
    running.settle()
    assert driver.calls.count("revive") == revives + 1


def test_a_later_suppress_supersedes_a_failed_revive(running: Running) -> None:
    driver = running.driver
    driver.failing = True
    view, _ = running.runtime.submit(validate_job({"name": "s", "command": "true", "cpus": 1, "mem": 64}))
    running.settle()
    revives = driver.calls.count("revive")
    driver.failing = False
    running.runtime.kill(view["id"])     # nothing waits now: SUPPRESS (which succeeds), no REVIVE again
    running.settle()
    running.settle()
    assert driver.calls.count("revive") == revives
    assert driver.calls[-1] == "suppress"
