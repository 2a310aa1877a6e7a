"""Issue 20 item 6: a leader that may have lost its leadership acts no more. The driver asks before
every SUBSCRIBE (and stops instead when refused), the runtime refuses writes and driver calls once the
election's flag dropped, and the ZooKeeper election answers "do I still lead?" from ZooKeeper itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient

from mesos_gpu.core.errors import NotLeaderError
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.state import OffersReceived
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks, framework_info
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.store.zk import ZooKeeperStore, connect
from tests.driver.fakes import Driver, Store
from tests.scheduler.builders import offer
from tests.waiting import wait_until

JOB = {"name": "j", "command": "true", "cpus": 0.1, "mem": 32}


def test_a_refused_driver_sends_no_subscribe_and_stops() -> None:
    from mesos_gpu.driver.mesosdriver import GuardedSchedulerDriver  # here: the others run without it

    answers = iter([True, False])
    callbacks = FrameworkCallbacks(lambda event: None, may_subscribe=lambda: next(answers))
    driver = GuardedSchedulerDriver(callbacks, framework_info("f", user="root"), "127.0.0.1:1", failover=True)
    driver._master = "127.0.0.1:1"
    driver._started = True  # as after start(): the I/O loop runs
    assert b"SUBSCRIBE" in driver.gen_request()
    assert not driver.aborted
    assert driver.gen_request() == b""
    assert driver.aborted  # stopped: its I/O loop ends before it writes anything
    assert driver._failover  # as stop(failover=True): no TEARDOWN, tasks keep running


def test_a_failing_leadership_check_refuses() -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    assert FrameworkCallbacks(lambda event: None, may_subscribe=broken).subscribing(None) is False


class FakeElection:
    """Elects at once; `flag` and `verified` play the election's flag and ZooKeeper's answer."""

    def __init__(self) -> None:
        self.flag = False
        self.verified = True

    def campaign(self, identifier: str, on_elected: Callable[[], None], on_lost: Callable[[str], Any]) -> Any:
        self.flag = True
        on_elected()

    def resign(self) -> None:
        self.flag = False

    @property
    def is_leader(self) -> bool:
        return self.flag

    def verify_leadership(self) -> bool:
        return self.flag and self.verified

    def leader_identifier(self) -> str | None:
        return "b:2"

    def contenders(self) -> list[str]:
        return ["b:2"]


class FakeElectionStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.election = FakeElection()  # type: ignore[assignment]


@pytest.fixture
def leading() -> Iterator[tuple[SchedulerRuntime, FakeElectionStore, list[FrameworkCallbacks], Any]]:
    store = FakeElectionStore()
    callbacks: list[FrameworkCallbacks] = []
    driver = Driver()

    def factory(made: FrameworkCallbacks, info: dict[str, Any]) -> Any:
        callbacks.append(made)
        return driver

    runtime = SchedulerRuntime(
        store=store, planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
        launch=LaunchSettings(), identifier="a:1", driver_factory=factory, tick_seconds=0.05,
    )
    runtime.start()
    wait_until(lambda: callbacks, 5, "the driver")
    yield runtime, store, callbacks, driver
    runtime.stop()


def test_the_runtime_subscribes_only_with_zookeepers_word(leading: Any) -> None:
    _, store, callbacks, _ = leading
    assert callbacks[0].subscribing(None)
    store.election.verified = False  # e.g. our session expired while this process was paused
    assert not callbacks[0].subscribing(None)
    store.election.verified = True
    store.election.flag = False  # the connection dropped; on_lost not delivered yet
    assert not callbacks[0].subscribing(None)


def test_once_the_elections_flag_drops_no_write_and_no_driver_call(leading: Any) -> None:
    runtime, store, _, driver = leading
    runtime.submit(validate_job(JOB))
    stored = len(store.list())
    store.election.flag = False  # ZooKeeper's connection dropped; `on_lost` is not delivered yet
    assert not runtime.is_leader
    with pytest.raises(NotLeaderError):
        runtime.submit(validate_job(JOB))
    with pytest.raises(NotLeaderError) as refused:
        runtime.submit(validate_job(JOB), idempotency_key="k")
    assert refused.value.leader_url == "b:2"  # the API redirects there
    assert len(store.list()) == stored
    # An offer is launched on or declined while leading (the test below): now it is refused before the
    # state machine sees it (its LeadershipLost may still be queued), and no driver call is made.
    calls = len(driver.calls)
    with pytest.raises(NotLeaderError):
        runtime.post_event(OffersReceived((offer("S1", gpus=0),), time.time())).result(5)
    assert driver.calls[calls:] == []


def test_a_leader_answers_offers_while_its_flag_is_up(leading: Any) -> None:
    runtime, _, _, driver = leading
    runtime.submit(validate_job(JOB))
    calls = len(driver.calls)
    runtime.post_event(OffersReceived((offer("S1", gpus=0),), time.time())).result(5)
    assert {"acceptOffers", "declineOffer"} & set(driver.calls[calls:])


@pytest.fixture
def zk_stores(zk_url: str) -> Iterator[list[ZooKeeperStore]]:
    stores = [connect(zk_url, "guard", timeout=10.0) for _ in range(2)]
    yield stores
    for store in stores:
        store.close()


@pytest.mark.zookeeper
def test_zookeeper_confirms_only_the_leader_that_still_owns_the_first_node(zk_stores: list[Any]) -> None:
    first, second = (store.leader_election() for store in zk_stores)
    first.campaign("a:1", lambda: None, lambda reason: None)
    wait_until(lambda: first.is_leader, 10, "a leader")
    second.campaign("b:2", lambda: None, lambda reason: None)
    wait_until(lambda: len(first.contenders()) == 2, 10, "a standby")
    try:
        assert first.verify_leadership()
        assert not second.verify_leadership()
        # Our node goes (as when ZooKeeper expired the session) before the election notices.
        node = first._node
        zk_stores[1].client.delete(f"{first._path}/{node}")
        assert not first.verify_leadership()
    finally:
        second.resign()
        first.resign()


def expire(store: ZooKeeperStore, zk_url: str) -> None:
    """Expire the store's session for real: a second client joins it with its id and password, and
    closes it (the server deletes its ephemeral nodes at once)."""
    session_id, password = store.client.client_id
    intruder = KazooClient(zk_url.removeprefix("zk://").split("/", 1)[0], client_id=(session_id, password))
    intruder.start(timeout=10)
    intruder.stop()
    intruder.close()


@pytest.mark.zookeeper
@pytest.mark.timeout(60)
def test_a_submit_carried_out_after_the_leaders_session_expired_is_refused_not_stored(
    zk_stores: list[ZooKeeperStore], zk_url: str
) -> None:
    """Issue 17 "Fencing": the submit starts while leading, the process is paused (here: its store
    write is held), the session expires and the standby takes over; the write must fail as "not the
    leader" (the API redirects to the new leader) and store nothing, never be stored and answered 503."""
    store, standby = zk_stores
    runtime = SchedulerRuntime(
        store=store, planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
        launch=LaunchSettings(), identifier="a:1", driver_factory=lambda made, info: Driver(),
        tick_seconds=0.05,
    )
    runtime.start()
    other = standby.leader_election()
    try:
        wait_until(lambda: runtime.is_leader, 10, "the runtime to lead")
        other.campaign("b:2", lambda: None, lambda reason: None)
        wait_until(lambda: len(other.contenders()) == 2, 10, "a standby")
        real_commit, gate, entered = store._zk.commit, threading.Event(), threading.Event()

        def paused_commit(operations: Any) -> Any:
            entered.set()
            assert gate.wait(30)
            return real_commit(operations)

        store._zk.commit = paused_commit  # type: ignore[method-assign]
        pending = runtime.submit_nowait(validate_job(JOB))
        assert entered.wait(10)
        expire(store, zk_url)
        wait_until(lambda: other.is_leader, 15, "the standby to take over")
        gate.set()
        with pytest.raises(NotLeaderError) as refused:
            pending.result(30)
        assert refused.value.leader_url == "b:2"
        store._zk.commit = real_commit  # type: ignore[method-assign]
        assert standby.ids() == []
    finally:
        gate.set()
        other.resign()
        runtime.stop()
