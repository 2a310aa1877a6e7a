"""A submit whose fenced store write committed before this process stopped leading is answered as created,
never as 503 (the fault soak: a write held up by a ZooKeeper outage committed when the session came back,
the leader had dropped leadership meanwhile, and the client got 503 for a stored job; retried without an
Idempotency-Key, it made a second job). The job is durable; whoever leads next lists it from the store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from tests.driver.fakes import Driver, Store
from tests.waiting import wait_until

SPEC = {"name": "j", "command": "true", "cpus": 1, "mem": 64}


@pytest.fixture
def leading() -> Iterator[tuple[SchedulerRuntime, Store]]:
    made: list[FrameworkCallbacks] = []

    def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> Driver:
        made.append(callbacks)
        return Driver()

    store = Store()
    runtime = SchedulerRuntime(store=store, planner=make_planner(),
                               options=FrameworkOptions(master="127.0.0.1:1"), launch=LaunchSettings(),
                               identifier="a:1", tick_seconds=3600,
                               driver_factory=factory)  # type: ignore[arg-type]
    runtime.start()
    wait_until(lambda: made and runtime.is_leader, 5, "the driver")
    yield runtime, store
    runtime.stop()


def depose_after(runtime: SchedulerRuntime, store: Store, method: str) -> None:
    """`store.<method>` writes, then this process stops leading (as kazoo's SUSPENDED does)."""
    write = getattr(store, method)

    def writing(*args: Any, **kwargs: Any) -> Any:
        result = write(*args, **kwargs)
        runtime._lost("ZooKeeper connection suspended")
        return result

    setattr(store, method, writing)


def test_a_group_committed_job_stored_before_the_leadership_ended_is_answered_created(
    leading: tuple[SchedulerRuntime, Store],
) -> None:
    runtime, store = leading
    depose_after(runtime, store, "create_many")
    view, created = runtime.submit(validate_job(SPEC))
    assert created and view["state"] == "PENDING"
    assert store.get(view["id"]).data["id"] == view["id"]


def test_a_keyed_job_stored_before_the_leadership_ended_is_answered_created(
    leading: tuple[SchedulerRuntime, Store],
) -> None:
    runtime, store = leading
    depose_after(runtime, store, "submit")
    view, created = runtime.submit(validate_job(SPEC), idempotency_key="k-1")
    assert created and view["state"] == "PENDING"
    assert store.get(view["id"]).data["id"] == view["id"]
