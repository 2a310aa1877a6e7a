"""`mesos_gpu.client.ApiClient` against live API servers: redirects from a standby (POST included),
idempotent retries, and errors as sentences."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesos_gpu.api.app import make_app
from mesos_gpu.api.server import ApiServer
from mesos_gpu.client import ApiClient, ApiError, ApiUnreachable
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import LAUNCHER, make_runtime, started
from tests.waiting import wait_until


def serve(runtime: SchedulerRuntime, server: ApiServer) -> None:
    app = make_app(runtime, settings=SchedulerSettings(), launcher_bundle=LAUNCHER, master_url="127.0.0.1:1")
    server.start(app)


@pytest.fixture
def pair() -> Iterator[tuple[ApiClient, ApiClient]]:
    """(a client of the leader, a client of a standby), two live servers on one store."""
    backend = MemoryBackend()
    leader_server, standby_server = ApiServer(), ApiServer()
    leader = started(make_runtime(MemoryStore(backend), identifier=f"127.0.0.1:{leader_server.bind()}"))
    standby = make_runtime(MemoryStore(backend), identifier=f"127.0.0.1:{standby_server.bind()}")
    standby.start()
    serve(leader, leader_server)
    serve(standby, standby_server)
    try:
        wait_until(lambda: standby.health()["leader_identifier"] == leader.identifier, what="a standby")
        yield ApiClient(leader_server.url), ApiClient(standby_server.url)
    finally:
        for server in (standby_server, leader_server):
            server.stop()
        standby.stop()
        leader.stop()


def test_a_submit_through_a_standby_lands_on_the_leader(pair: tuple[ApiClient, ApiClient]) -> None:
    leader, standby = pair
    job, created = standby.submit({"name": "via-standby", "command": "true"}, idempotency_key="k-1")
    assert created
    assert leader.job(job["id"])["id"] == job["id"]
    again, created_again = standby.submit({"name": "via-standby", "command": "true"}, idempotency_key="k-1")
    assert (again["id"], created_again) == (job["id"], False)
    assert [j["id"] for j in standby.jobs()] == [job["id"]]
    assert standby.health()["role"] == "standby"


def test_api_errors_are_sentences_with_their_details(pair: tuple[ApiClient, ApiClient]) -> None:
    leader, _ = pair
    with pytest.raises(ApiError) as caught:
        leader.submit({"name": "Bad", "command": "true", "gpus": -1})
    error = caught.value
    assert (error.status, error.code) == (400, "invalid")
    lines = str(error).splitlines()
    assert lines[0].startswith("Invalid job: /name: must be 1 to 63 lowercase letters")
    assert [line.split(":")[0] for line in lines[1:]] == ["  /name", "  /gpus"]
    with pytest.raises(ApiError, match=r"^No job 'x-1'\.$"):
        leader.job("x-1")


def test_an_unreachable_api_is_explained() -> None:
    server = ApiServer()
    port = server.bind()
    server.stop()  # the port is closed now
    with pytest.raises(ApiUnreachable, match="connection was refused"):
        ApiClient(f"http://127.0.0.1:{port}", timeout=2).health()
    with pytest.raises(ApiUnreachable):
        ApiClient(f"http://127.0.0.1:{port}", timeout=2).submit({"name": "a", "command": "x"}, retries=1)
