"""Against the local cluster with unmodified pymesos: a leader whose stored framework id the master has
removed gets ERROR "Framework has been removed" and registers anew. Master errors now carry the driver
that received them (a stale one is ignored): this checks that pymesos's `error(driver, message)` names
the very driver the runtime holds, so the current driver's error is still acted on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from tests.driver.fakes import Store
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(agents=1, gpus_per_agent=0, workdir=tmp_path / "cluster", heartbeat_interval=1.0,
                      status_update_retry=1.0) as running:
        yield running


def runtime_on(cluster: LocalCluster, store: Store) -> SchedulerRuntime:
    options = FrameworkOptions(master=cluster.master_address, name="removed", user="root")
    return SchedulerRuntime(store=store, planner=make_planner(), options=options,
                            launch=LaunchSettings(framework_name="removed"), identifier="127.0.0.1:1",
                            tick_seconds=3600)


def test_a_removed_framework_registers_anew(cluster: LocalCluster) -> None:
    first = runtime_on(cluster, Store())
    first.start()
    try:
        wait_until(lambda: first.mesos_connected and first.store.get_framework_id(), 20, "registering")
        removed = first.store.get_framework_id()
        first.teardown()   # TEARDOWN: the master removes the framework
    finally:
        first.stop()

    store = Store()
    store.set_framework_id(removed)   # a leader that still holds the removed framework's id
    second = runtime_on(cluster, store)
    second.start()
    try:
        wait_until(lambda: second.mesos_connected and store.get_framework_id() not in (None, removed), 20,
                   "registering anew after 'Framework has been removed'")
    finally:
        second.stop()
