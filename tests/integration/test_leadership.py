"""The runtime's safety nets: a silent master (heartbeat watchdog) and a lost ZooKeeper session."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient

from mesos_gpu.core.validation import validate_job
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import connect
from tests.integration.conftest import make_runtime, wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]


def test_a_silent_master_is_detected_and_the_driver_resubscribes(
    tmp_path: Path, zk_hosts: str, zk_chroot: str
) -> None:
    with LocalCluster(agents=1, gpus_per_agent=1, workdir=tmp_path / "c", heartbeat_interval=0.5,
                      allocation_interval=0.2) as cluster:
        store = connect(f"zk://{zk_hosts}{zk_chroot}", "it")
        runtime = make_runtime(cluster, store, zk_hosts, zk_chroot)
        runtime._heartbeat_timeout = 2.0
        runtime.start()
        try:
            wait_for(lambda: runtime.mesos_connected, 20, "never registered")
            framework_id = store.get_framework_id()
            assert framework_id
            first_driver = runtime._driver
            assert cluster.stop_heartbeats(framework_id)
            # pymesos alone would wait forever; the watchdog replaces the driver and re-subscribes.
            wait_for(lambda: runtime._driver is not first_driver and runtime.mesos_connected, 15,
                     "the watchdog did not restart the driver")
            assert store.get_framework_id() == framework_id  # same framework, failed over
        finally:
            runtime.stop()
            store.close()


def test_a_leader_that_loses_its_zookeeper_session_stops_and_a_standby_takes_over(
    tmp_path: Path, zk_hosts: str, zk_chroot: str
) -> None:
    with LocalCluster(agents=1, gpus_per_agent=1, workdir=tmp_path / "c", heartbeat_interval=1.0,
                      allocation_interval=0.2) as cluster:
        stores = [connect(f"zk://{zk_hosts}{zk_chroot}", "it") for _ in range(2)]
        first = make_runtime(cluster, stores[0], zk_hosts, zk_chroot, identifier="a:1")
        second = make_runtime(cluster, stores[1], zk_hosts, zk_chroot, identifier="b:2")
        first.start()
        try:
            wait_for(lambda: first.is_leader and first.mesos_connected, 20, "first never led")
            second.start()
            view, _ = first.submit(validate_job({"name": "long", "command": "sleep 30", "cpus": 0.1,
                                                 "mem": 32}))
            wait_for(lambda: first.job(view["id"])["state"] == "RUNNING", 20, "never ran")
            # Expire the leader's session the classic way: join it from another client and close it.
            session_id, password = stores[0].client.client_id
            intruder = KazooClient(zk_hosts + zk_chroot, client_id=(session_id, password))
            intruder.start(timeout=10)
            intruder.stop()
            intruder.close()
            wait_for(lambda: not first.is_leader, 10, "the old leader kept acting")
            wait_for(lambda: second.is_leader and second.mesos_connected, 20, "the standby did not lead")
            assert second.job(view["id"])["state"] == "RUNNING"
            assert second.job(view["id"])["attempt"] == 0
        finally:
            second.stop()
            first.stop()
            for store in stores:
                store.close()
