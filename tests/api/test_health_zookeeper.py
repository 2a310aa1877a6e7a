"""Readiness against the real ZooKeeper and a real (local) Mesos master: a leader subscribed through
pymesos is ready; when the ZooKeeper server stops it turns unready (503, the zookeeper check failing)
while liveness stays 200; when the server comes back (same data, same port: the session survives) the
instance leads again, subscribes again and is ready again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mesos_gpu.api.app import close_app
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.zookeeper import ZooKeeperServer, free_port
from mesos_gpu.store.zk import connect
from tests.api.conftest import app_client
from tests.api.spec import check
from tests.waiting import wait_until

if TYPE_CHECKING:  # imported at run time, pytest would collect the TestCase here
    from tests.api.conftest import AppClient


def readiness(client: AppClient) -> tuple[int, dict[str, Any]]:
    response = client.request("GET", "/v1/health/ready")
    return response.code, check("Readiness", response.body)


@pytest.mark.zookeeper
@pytest.mark.slow
def test_readiness_follows_a_zookeeper_outage_and_liveness_does_not(tmp_path: Path) -> None:
    port = free_port()
    server = ZooKeeperServer(port=port, workdir=tmp_path / "zk").start()
    store = client = runtime = None
    try:
        with LocalCluster(agents=1, gpus_per_agent=1, workdir=tmp_path / "cluster") as cluster:
            store = connect(f"zk://{server.hosts}/health", command_deadline=1.0, session_timeout=20.0)
            runtime = SchedulerRuntime(
                store=store, planner=make_planner(), launch=LaunchSettings(), identifier="127.0.0.1:8080",
                options=FrameworkOptions(master=cluster.master_address, name="health", user="root"),
                tick_seconds=0.2,
            )
            runtime.start()
            client = app_client(runtime)
            wait_until(lambda: readiness(client)[0] == 200, timeout=30, what="the leader to be ready")
            code, body = readiness(client)
            assert code == 200 and body["role"] == "leader" and body["checks"]["mesos"]["state"] == "pass"

            server.stop()
            wait_until(lambda: readiness(client)[0] == 503, timeout=30, what="unready without ZooKeeper")
            code, body = readiness(client)
            assert code == 503 and body["status"] == "unready"
            assert body["checks"]["zookeeper"]["state"] == "fail", body
            assert body["checks"]["zookeeper"]["reason"] in (
                "the ZooKeeper session is SUSPENDED", "the ZooKeeper session is LOST"), body
            live = client.request("GET", "/v1/health/live")
            assert live.code == 200 and check("Liveness", live.body)["live"] is True
            assert client.request("GET", "/v1/health").code == 200

            server = ZooKeeperServer(port=port, workdir=tmp_path / "zk").start()  # same data, same port
            wait_until(lambda: readiness(client)[0] == 200, timeout=40, what="ready after ZooKeeper is back")
            code, body = readiness(client)
            assert code == 200 and body["role"] == "leader"
            assert {name: c["state"] for name, c in body["checks"].items()} == {
                "zookeeper": "pass", "mesos": "pass", "leader": "pass"}
            assert client.request("GET", "/v1/health/live").code == 200
    finally:
        if client is not None:
            client.tearDown()
            close_app(client.application)
        if runtime is not None:
            runtime.stop()
        if store is not None:
            store.close()
        server.stop()
