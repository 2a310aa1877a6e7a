"""The retention sweep against the real ZooKeeper (issue 18 "Retention"): old finished job records are
deleted from ZooKeeper and from the leader's memory, `mesos_gpu_jobs{state}` falls, `GET /v1/jobs/{id}`
of a deleted job is 404, a new leader sees the same set, and a deposed leader deletes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from mesos_gpu.api.app import close_app
from mesos_gpu.core.errors import NotLeaderError
from mesos_gpu.core.model import JobState
from mesos_gpu.core.retention import RetentionPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.retention import RetentionSweeper
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.store.zk import ZooKeeperStore
from tests.api import conftest as api
from tests.api.conftest import InertDriver, app_client, json_of
from tests.store.conftest import ZooKeeperStoreBackend
from tests.waiting import wait_until

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(120)]

HOUR = 3600.0
SPEC = {"name": "old", "command": "true", "cpus": 0.1, "mem": 32}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def runtime_on(store: ZooKeeperStore, clock: Clock, identifier: str) -> SchedulerRuntime:
    return SchedulerRuntime(
        store=store, planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
        launch=LaunchSettings(), identifier=identifier, driver_factory=lambda callbacks, info: InertDriver(),
        tick_seconds=0.2, clock=clock,
    )


@pytest.fixture
def backend(zk_url: str) -> Iterator[ZooKeeperStoreBackend]:
    chosen = ZooKeeperStoreBackend(zk_url)
    try:
        yield chosen
    finally:
        chosen.close_all()


def leading(backend: ZooKeeperStoreBackend, clock: Clock, identifier: str = "a:1") -> SchedulerRuntime:
    runtime = runtime_on(backend.open(), clock, identifier)
    runtime.start()
    wait_until(lambda: runtime.is_leader, 20, f"{identifier} to lead")
    return runtime


def finished_jobs(runtime: SchedulerRuntime, clock: Clock, count: int, step: float) -> list[str]:
    """`count` jobs submitted and killed (KILLED at once: nothing runs), `step` seconds apart."""
    ids = []
    for _ in range(count):
        view, _ = runtime.submit(validate_job(SPEC), idempotency_key=f"key-{clock.now}")
        runtime.kill(view["id"])
        ids.append(view["id"])
        clock.now += step
    return ids


def gauge(text: str, state: str) -> int:
    prefix = f'mesos_gpu_jobs{{state="{state}"}} '
    return int(float(next(line for line in text.splitlines() if line.startswith(prefix))[len(prefix):]))


def close(client: api.AppClient) -> None:
    client.tearDown()
    close_app(client.application)


def test_retention_deletes_old_records_and_a_new_leader_sees_the_same_set(
    backend: ZooKeeperStoreBackend,
) -> None:
    clock = Clock()
    first = leading(backend, clock)
    standby = runtime_on(backend.open(), clock, "b:2")
    standby.start()
    client = app_client(first)
    try:
        old = finished_jobs(first, clock, 5, 60.0)               # finished 2 days ago and more
        clock.now += 2 * 24 * HOUR
        recent = finished_jobs(first, clock, 4, 60.0)            # finished in the last hours
        waiting = first.submit(validate_job(SPEC), "key-waiting")[0]["id"]   # not finished: stays
        clock.now += 2 * HOUR
        assert gauge(client.request("GET", "/metrics").body.decode(), "KILLED") == 9
        policy = RetentionPolicy(max_age_seconds=24 * HOUR, max_finished=3, batch=2)
        sweeper = RetentionSweeper(first, policy)

        assert sweeper.sweep() == 6        # the 5 old ones by age, the oldest recent one by count
        kept = [*recent[1:], waiting]
        store = backend.open()
        assert sorted(store.ids()) == sorted(kept)
        assert {job["id"] for job in first.jobs()} == set(kept)
        text = client.request("GET", "/metrics").body.decode()
        assert gauge(text, "KILLED") == 3 and gauge(text, "PENDING") == 1
        response = client.request("GET", f"/v1/jobs/{old[0]}")
        assert response.code == 404
        assert old[0] in json_of(response)["error"]["message"]
        assert client.request("GET", f"/v1/jobs/{recent[1]}").code == 200
        listed = json_of(client.request("GET", "/v1/jobs?state=KILLED"))
        assert [job["id"] for job in listed["jobs"]] == recent[1:]
        # the deleted job's idempotency key is free again: the same key makes a new job
        again, created = first.submit(validate_job(SPEC), idempotency_key=f"key-{1_000_000.0}")
        assert created and again["id"] != old[0]
        kept.append(again["id"])
        assert sweeper.sweep() == 0        # nothing more to delete
        assert sweeper.deleted == 6

        first.stop()                       # the standby takes over and reads the store
        wait_until(lambda: standby.is_leader, 30, "the standby to lead")
        assert sorted(job["id"] for job in standby.jobs()) == sorted(kept)
        assert JobState.KILLED.value in {job["state"] for job in standby.jobs()}
    finally:
        close(client)
        first.stop()
        standby.stop()


def test_a_deposed_leader_deletes_nothing(backend: ZooKeeperStoreBackend) -> None:
    clock = Clock()
    first = leading(backend, clock)
    standby = runtime_on(backend.open(), clock, "b:2")
    standby.start()
    try:
        ids = finished_jobs(first, clock, 3, 60.0)
        clock.now += 30 * 24 * HOUR
        sweeper = RetentionSweeper(first, RetentionPolicy(max_age_seconds=HOUR, max_finished=None))
        backend.expire_session(cast(ZooKeeperStore, first.store))   # the standby leads now
        wait_until(lambda: standby.is_leader, 30, "the standby to lead")
        # A paused leader that has not noticed yet: the store's fence refuses its delete.
        with pytest.raises(NotLeaderError):
            sweeper._step(lambda: True)
        assert sorted(backend.open().ids()) == sorted(ids)
        assert set(first._state.jobs) == set(ids)  # and it forgot nothing
        assert sweeper.deleted == 0
        with pytest.raises(NotLeaderError):       # through the worker: refused before any write
            sweeper.sweep()
    finally:
        first.stop()
        standby.stop()


def test_the_sweeper_thread_runs_on_the_leader_only(backend: ZooKeeperStoreBackend) -> None:
    clock = Clock()
    first = leading(backend, clock)
    standby = runtime_on(backend.open(), clock, "b:2")
    standby.start()
    policy = RetentionPolicy(max_age_seconds=HOUR, max_finished=None)
    sweepers: list[Any] = [RetentionSweeper(rt, policy, interval=0.05).start() for rt in (first, standby)]
    store = backend.open()
    try:
        ids = finished_jobs(first, clock, 3, 1.0)
        # Each submit returned once its job was stored, and none is due (an hour's age): exactly these three.
        assert sorted(store.ids()) == sorted(ids)
        assert sweepers[0].deleted == sweepers[1].deleted == 0
        clock.now += 2 * HOUR
        wait_until(lambda: not store.ids(), 20, "the leader's sweeper to delete the jobs")
        # The sweeper counts its deletes after the store's deletes and the state's forgetting (its step's
        # `finally`): the store can be empty a moment before `deleted` says 3, so wait for the count too.
        wait_until(lambda: sweepers[0].deleted >= 3, 10, "the leader's sweeper to count its deletes")
        assert sweepers[0].deleted == 3 and sweepers[1].deleted == 0
        assert not set(ids) & {job["id"] for job in first.jobs()}
    finally:
        for sweeper in sweepers:
            sweeper.stop()
        first.stop()
        standby.stop()


def test_a_policy_without_limits_starts_no_thread(backend: ZooKeeperStoreBackend) -> None:
    runtime = runtime_on(backend.open(), Clock(), "a:1")
    sweeper = RetentionSweeper(runtime, RetentionPolicy(max_age_seconds=None, max_finished=None)).start()
    assert sweeper._thread is None
    sweeper.stop()
