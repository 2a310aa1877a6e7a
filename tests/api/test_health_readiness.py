"""Liveness and readiness: the readiness decision as a table, and the endpoints on a runtime whose store
and Mesos connection the test controls (MemoryStore outages; the real ZooKeeper is in
test_health_zookeeper.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

import mesos_gpu
from mesos_gpu.api.app import close_app
from mesos_gpu.api.health import Observed, readiness
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.base import ConnectionState
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import app_client, json_of, make_runtime, started
from tests.api.spec import check, documented_statuses
from tests.waiting import wait_until

if TYPE_CHECKING:  # imported at run time, pytest would collect the TestCase here
    from tests.api.conftest import AppClient

ME, OTHER = "10.0.0.1:8080", "10.0.0.2:8080"


def seen(**changes: object) -> Observed:
    base = {"zookeeper_state": "CONNECTED", "leader": True, "mesos_subscribed": True, "identifier": ME,
            "leader_identifier": ME, "leader_error": None}
    return Observed(**(base | changes))  # type: ignore[arg-type]


# (case, observed, ready, {check: state})
TABLE = [
    ("leader, connected and subscribed", seen(), True,
     {"zookeeper": "pass", "mesos": "pass", "leader": "pass"}),
    ("leader, not subscribed", seen(mesos_subscribed=False), False,
     {"zookeeper": "pass", "mesos": "fail", "leader": "pass"}),
    ("leader, ZooKeeper suspended", seen(zookeeper_state="SUSPENDED"), False,
     {"zookeeper": "fail", "mesos": "pass", "leader": "pass"}),
    ("leader, session lost", seen(zookeeper_state="LOST", mesos_subscribed=False), False,
     {"zookeeper": "fail", "mesos": "fail", "leader": "pass"}),
    ("standby that knows the leader", seen(leader=False, mesos_subscribed=False, leader_identifier=OTHER),
     True, {"zookeeper": "pass", "mesos": "skip", "leader": "pass"}),
    ("standby, no leader elected", seen(leader=False, mesos_subscribed=False, leader_identifier=None),
     False, {"zookeeper": "pass", "mesos": "skip", "leader": "fail"}),
    ("standby, ZooKeeper not asked", seen(leader=False, leader_identifier=None, leader_error="Timeout"),
     False, {"zookeeper": "pass", "mesos": "skip", "leader": "fail"}),
    ("standby elected, not yet leading", seen(leader=False, mesos_subscribed=False), False,
     {"zookeeper": "pass", "mesos": "skip", "leader": "fail"}),
    ("standby, ZooKeeper suspended", seen(zookeeper_state="SUSPENDED", leader=False,
                                          leader_identifier=OTHER), False,
     {"zookeeper": "fail", "mesos": "skip", "leader": "pass"}),
]


@pytest.mark.parametrize(("observed", "ready", "states"), [r[1:] for r in TABLE], ids=[r[0] for r in TABLE])
def test_the_readiness_decision(observed: Observed, ready: bool, states: dict[str, str]) -> None:
    verdict, checks = readiness(observed)
    assert verdict is ready
    assert {name: c["state"] for name, c in checks.items()} == states
    for c in checks.values():
        assert c["reason"]
    check("Readiness", {"status": "ready" if ready else "unready", "ready": ready, "version": "0",
                        "role": "leader", "identifier": ME, "leader_identifier": None, "checks": checks})


def test_each_failure_names_its_cause() -> None:
    _, checks = readiness(seen(zookeeper_state="SUSPENDED", mesos_subscribed=False))
    assert checks["zookeeper"]["reason"] == "the ZooKeeper session is SUSPENDED"
    assert checks["mesos"]["reason"] == "the leader is not subscribed to the Mesos master"
    _, checks = readiness(seen(leader=False, leader_identifier=None, leader_error="StoreUnavailable: down"))
    assert checks["leader"]["reason"] == "could not ask ZooKeeper who leads: StoreUnavailable: down"


# ------------------------------------------------------------------------------------- the endpoints
@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(MemoryBackend())


@pytest.fixture
def leader(store: MemoryStore) -> Iterator[SchedulerRuntime]:
    runtime = started(make_runtime(store))
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture
def client(leader: SchedulerRuntime) -> Iterator[AppClient]:
    c = app_client(leader)
    try:
        yield c
    finally:
        c.tearDown()
        close_app(c.application)


def subscribe(runtime: SchedulerRuntime, subscribed: bool) -> None:
    """The handler tests' driver never subscribes; say it did (the real one is in the ZooKeeper test)."""
    driver = runtime._driver
    assert driver is not None
    driver.connected = subscribed  # type: ignore[misc]


def test_the_endpoints_are_documented_and_open_without_a_token() -> None:
    assert documented_statuses("/v1/health/live", "get") == {200}
    assert documented_statuses("/v1/health/ready", "get") == {200, 503}
    assert documented_statuses("/v1/health", "get") == {200}


def test_a_leader_is_ready_once_subscribed(client: AppClient, leader: SchedulerRuntime) -> None:
    response = client.request("GET", "/v1/health/ready")
    assert response.code == 503
    body = check("Readiness", response.body)
    assert body["checks"]["mesos"]["state"] == "fail" and body["role"] == "leader"
    assert check("Health", client.request("GET", "/v1/health").body)["ready"] is False

    subscribe(leader, True)
    response = client.request("GET", "/v1/health/ready")
    assert response.code == 200, response.body
    body = check("Readiness", response.body)
    assert (body["status"], body["version"]) == ("ready", mesos_gpu.__version__)
    assert body["leader_identifier"] == body["identifier"] == leader.identifier
    assert check("Health", client.request("GET", "/v1/health").body)["ready"] is True


def test_a_store_outage_makes_the_instance_unready_but_it_stays_live(
    client: AppClient, leader: SchedulerRuntime, store: MemoryStore
) -> None:
    subscribe(leader, True)
    assert client.request("GET", "/v1/health/ready").code == 200
    listeners = list(store._listeners)  # what make_app registered: the store reports its connection there
    assert listeners
    for listener in listeners:
        listener(ConnectionState.SUSPENDED)
    store.start_outage("ZooKeeper did not answer within 1 s")
    response = client.request("GET", "/v1/health/ready")
    assert response.code == 503, response.body
    body = check("Readiness", response.body)
    assert body["checks"]["zookeeper"] == {"state": "fail", "reason": "the ZooKeeper session is SUSPENDED"}
    live = client.request("GET", "/v1/health/live")
    assert live.code == 200
    assert check("Liveness", live.body)["checks"]["api"]["state"] == "pass"
    old = client.request("GET", "/v1/health")
    assert old.code == 200 and check("Health", old.body)["ready"] is False

    store.end_outage()
    for listener in listeners:
        listener(ConnectionState.CONNECTED)
    assert client.request("GET", "/v1/health/ready").code == 200


def test_a_standby_is_ready_when_it_knows_the_leader(leader: SchedulerRuntime, store: MemoryStore) -> None:
    standby = make_runtime(MemoryStore(store.backend), identifier=OTHER)
    standby.start()
    c = app_client(standby)
    try:
        wait_until(lambda: c.request("GET", "/v1/health/ready").code == 200, what="the standby ready")
        body = check("Readiness", c.request("GET", "/v1/health/ready").body)
        assert body["role"] == "standby" and body["leader_identifier"] == leader.identifier
        assert body["checks"]["mesos"]["state"] == "skip"
        leader.stop()  # the standby takes over, and is unready until it subscribes
        wait_until(lambda: standby.is_leader, what="the standby to take over")
        body = json_of(c.request("GET", "/v1/health/ready"))
        assert body["role"] == "leader" and body["checks"]["mesos"]["state"] == "fail"
        assert c.request("GET", "/v1/health/live").code == 200
    finally:
        c.tearDown()
        close_app(c.application)
        standby.stop()

