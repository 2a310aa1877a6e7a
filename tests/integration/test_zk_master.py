"""The scheduler finds the master through ZooKeeper (zk://), as on a real cluster."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import connect
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]


def test_a_zk_master_url_is_detected_and_the_detector_is_closed_on_stop(
    tmp_path: Path, zk_hosts: str, zk_chroot: str
) -> None:
    mesos_url = f"zk://{zk_hosts}{zk_chroot}/mesos"
    with LocalCluster(agents=1, gpus_per_agent=1, workdir=tmp_path / "c", zk_url=mesos_url,
                      heartbeat_interval=1.0, allocation_interval=0.2):
        store = connect(f"zk://{zk_hosts}{zk_chroot}", "zkm")
        runtime = SchedulerRuntime(
            store=store,
            planner=make_planner(PlacementPolicy()),
            options=FrameworkOptions(master=mesos_url, name="zkm", user="root", failover_timeout=600),
            launch=LaunchSettings(framework_name="zkm", zk_url=f"zk://{zk_hosts}{zk_chroot}/zkm"),
            identifier="zk:1",
            tick_seconds=0.2,
        )
        runtime.start()
        try:
            wait_for(lambda: runtime.is_leader and runtime.mesos_connected, 30, "never registered via zk://")
            view, _ = runtime.submit(validate_job({"name": "z", "command": "true", "cpus": 0.1, "mem": 32,
                                                   "gpus": 1}))
            wait_for(lambda: runtime.job(view["id"])["state"] == "SUCCEEDED", 30, "the job did not succeed")
        finally:
            runtime.stop()
            store.close()
    # pymesos never closes its detector's kazoo client; the runtime does. An unclosed client's
    # sockets would surface here as a ResourceWarning (an error under the suite's filterwarnings).
    gc.collect()
