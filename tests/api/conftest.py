"""Fixtures of the API handler tests: the real app on a real `SchedulerRuntime` (MemoryStore or the real
ZooKeeper store), driven through tornado's test client.

`InertDriver` is used ONLY by these handler tests: it stands in for the pymesos driver where no Mesos
master answers, so submitted jobs stay PENDING. Every test that needs Mesos uses `LocalCluster`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from tornado.testing import AsyncHTTPTestCase
from tornado.web import Application

from mesos_gpu.api.app import close_app, make_app
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.waiting import wait_until

LAUNCHER = b"PK\x05\x06" + b"\x00" * 18  # an empty zip: what the launcher route serves in these tests


class InertDriver:
    """A driver that never connects (ONLY for handler tests without Mesos: jobs stay PENDING)."""

    connected = False
    aborted = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def start(self) -> None:
        self.calls.append(("start", None))

    def stop(self, failover: bool = False) -> None:
        self.calls.append(("stop", failover))

    def join(self) -> None:
        pass

    def acceptOffers(self, offer_ids: Any, operations: Any, filters: Any = None) -> None:
        self.calls.append(("accept", offer_ids))

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("decline", offer_ids))

    def killTask(self, task_id: Any) -> None:
        self.calls.append(("kill", task_id))

    def suppressOffers(self) -> None:
        self.calls.append(("suppress", None))

    def reviveOffers(self) -> None:
        self.calls.append(("revive", None))

    def reconcileTasks(self, tasks: Any) -> None:
        self.calls.append(("reconcile", tasks))

    def acknowledgeStatusUpdate(self, status: Any) -> None:
        self.calls.append(("ack", status))


def make_runtime(store: Any, identifier: str = "127.0.0.1:8080") -> SchedulerRuntime:
    return SchedulerRuntime(
        store=store,
        planner=make_planner(),
        options=FrameworkOptions(master="127.0.0.1:1"),
        launch=LaunchSettings(),
        identifier=identifier,
        driver_factory=lambda callbacks, info: InertDriver(),
        tick_seconds=0.2,
    )


class AppClient(AsyncHTTPTestCase):
    """tornado's test client around one application (set up and torn down by a fixture)."""

    def __init__(self, app: Application) -> None:
        self.application = app
        super().__init__("runTest")

    def runTest(self) -> None:
        pass

    def get_app(self) -> Application:
        return self.application

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> HTTPResponse:
        all_headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
            all_headers.setdefault("Content-Type", "application/json")
        if method in ("POST", "PUT", "PATCH") and body is None:
            body = b""
        return self.fetch(
            path,
            method=method,
            body=body,
            headers=all_headers,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            **kw,
        )


def json_of(response: HTTPResponse) -> Any:
    return json.loads(response.body)


@pytest.fixture(params=["memory", pytest.param("zookeeper", marks=pytest.mark.zookeeper)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The runtime's store: in memory, or the real ZooKeeper store in a fresh chroot."""
    if request.param == "memory":
        yield MemoryStore(MemoryBackend())
        return
    from mesos_gpu.store.zk import connect

    zk = connect(request.getfixturevalue("zk_url"), timeout=10.0)
    try:
        yield zk
    finally:
        zk.close()


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore(MemoryBackend())


def started(runtime: SchedulerRuntime) -> SchedulerRuntime:
    runtime.start()
    wait_until(lambda: runtime.is_leader, what="the runtime to lead")
    return runtime


@pytest.fixture
def runtime(store: Any) -> Iterator[SchedulerRuntime]:
    rt = started(make_runtime(store))
    try:
        yield rt
    finally:
        rt.stop()


def app_client(
    service: Any, settings: SchedulerSettings | None = None, master_url: Any = "127.0.0.1:1"
) -> AppClient:
    app = make_app(
        service, settings=settings or SchedulerSettings(), launcher_bundle=LAUNCHER, master_url=master_url
    )
    client = AppClient(app)
    client.setUp()
    return client


@pytest.fixture
def mem_client(memory_store: Any) -> Iterator[AppClient]:
    """An API client of a leading runtime on the in-memory store."""
    runtime = started(make_runtime(memory_store))
    client = app_client(runtime)
    try:
        yield client
    finally:
        client.tearDown()
        close_app(client.application)
        runtime.stop()


@pytest.fixture
def client(runtime: SchedulerRuntime) -> Iterator[AppClient]:
    c = app_client(runtime)
    try:
        yield c
    finally:
        c.tearDown()
        close_app(c.application)
