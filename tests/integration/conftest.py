"""Fixtures for scheduler integration tests: the real local cluster, a real ZooKeeper store, a runtime."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.scheduler_main import rendezvous_cleaner
from mesos_gpu.store.zk import ZooKeeperStore, connect
from mesos_gpu.tf.bundle import build_launcher_bundle


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(
        agents=2, gpus_per_agent=2, workdir=tmp_path / "cluster", heartbeat_interval=1.0,
        status_update_retry=1.0, allocation_interval=0.2,
    ) as running:
        yield running


@pytest.fixture
def store(zk_hosts: str, zk_chroot: str) -> Iterator[ZooKeeperStore]:
    opened = connect(f"zk://{zk_hosts}{zk_chroot}", "it")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def launcher_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The TF launcher bundle as a file:// URI (the scheduler's HTTP server serves it in production)."""
    path = build_launcher_bundle(tmp_path_factory.mktemp("bundle") / "launcher.pyz")
    return path.as_uri()


def make_runtime(
    cluster: LocalCluster,
    store: Any,
    zk_hosts: str,
    zk_chroot: str,
    *,
    identifier: str = "127.0.0.1:1",
    launcher_uri: str = "",
    catalog: Any = None,
    never_fits_after_seconds: float | None = 300.0,
) -> SchedulerRuntime:
    return SchedulerRuntime(
        store=store,
        planner=make_planner(PlacementPolicy(cpu_tasks_on_gpu_agents=True), catalog=catalog),
        options=FrameworkOptions(master=cluster.master_address, name="it", user="root", failover_timeout=600),
        launch=LaunchSettings(
            framework_name="it", zk_url=f"zk://{zk_hosts}{zk_chroot}/it", launcher_uri=launcher_uri
        ),
        identifier=identifier,
        heartbeat_timeout=10.0,
        tick_seconds=0.2,
        clear_rendezvous=rendezvous_cleaner(store),
        never_fits_after_seconds=never_fits_after_seconds,
    )


@pytest.fixture
def runtime(
    cluster: LocalCluster, store: ZooKeeperStore, zk_hosts: str, zk_chroot: str, launcher_uri: str
) -> Iterator[SchedulerRuntime]:
    running = make_runtime(cluster, store, zk_hosts, zk_chroot, launcher_uri=launcher_uri)
    running.start()
    wait_for(lambda: running.is_leader and running.mesos_connected, 20, "the scheduler never registered")
    yield running
    running.stop()


def wait_for(predicate: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)


class LogRecords(logging.Handler):
    """Every log record of the process, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def records() -> Iterator[LogRecords]:
    """The root logger's records (at DEBUG) for the module's tests: what a secret must never be in."""
    handler, root = LogRecords(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
