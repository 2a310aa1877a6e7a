"""Against the local cluster with unmodified pymesos: an ACCEPT call that fails while the subscription stays
up (here: a connection reset before anything is sent) loses nothing. Its offer is declined again, so the
agent's resources are offered anew (Mesos has no offer timeout by default: the master would hold them for
ever as outstanding), and the launch Mesos never heard of is asked of the master after
`launch_check_seconds` (`core.launchcheck`): the master does not know the task (TASK_LOST,
REASON_RECONCILIATION), and the job is placed again and runs.

Before: the job stayed STAGING for ever (no update could come for a task Mesos never saw), and its only
agent's resources stayed outstanding in the offer whose answer failed, so nothing could run there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.framework import FrameworkCallbacks
from mesos_gpu.driver.mesosdriver import GuardedSchedulerDriver
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from tests.driver.fakes import Store
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


class FirstAcceptFails(GuardedSchedulerDriver):
    """pymesos's driver (as the runtime makes it), whose first ACCEPT call fails before sending anything;
    every DECLINE's offer ids are noted."""

    failed: list[list[str]] = []
    declined: list[str] = []

    def acceptOffers(self, offer_ids: Any, operations: Any, filters: Any = None) -> None:
        if not self.failed:
            self.failed.append([ref["value"] for ref in offer_ids])
            raise ConnectionResetError("connection reset by peer (the test's)")
        super().acceptOffers(offer_ids, operations, filters)

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.declined.extend(ref["value"] for ref in offer_ids)
        super().declineOffer(offer_ids, filters)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(agents=1, gpus_per_agent=0, workdir=tmp_path / "cluster", heartbeat_interval=1.0,
                      status_update_retry=1.0) as running:
        yield running


def test_a_failed_accept_call_loses_neither_the_job_nor_the_agent(cluster: LocalCluster) -> None:
    FirstAcceptFails.failed = []
    FirstAcceptFails.declined = []
    options = FrameworkOptions(master=cluster.master_address, name="failed-accept", user="root")

    def factory(callbacks: FrameworkCallbacks, info: dict[str, Any]) -> FirstAcceptFails:
        return FirstAcceptFails(callbacks, info, options.master, use_addict=True,
                                implicit_acknowledgements=False, failover=True, timeout=10)

    runtime = SchedulerRuntime(store=Store(), planner=make_planner(), options=options,
                               launch=LaunchSettings(framework_name="failed-accept"),
                               identifier="127.0.0.1:1", driver_factory=factory,  # type: ignore[arg-type]
                               tick_seconds=0.2, launch_check_seconds=2.0)
    runtime.start()
    try:
        wait_until(lambda: runtime.mesos_connected, 20, "subscribing")
        view, created = runtime.submit(validate_job({"name": "j", "command": "true", "cpus": 0.5, "mem": 64}))
        assert created
        job_id = view["id"]
        wait_until(lambda: FirstAcceptFails.failed, 20, "the first ACCEPT (which fails)")
        (failed,) = FirstAcceptFails.failed
        wait_until(lambda: set(failed) <= set(FirstAcceptFails.declined), 10,
                   "the failed ACCEPT's offers declined again")
        wait_until(lambda: runtime.job(job_id)["state"] == "SUCCEEDED", 60, "the job placed again and run")
        job = runtime.job(job_id)
        assert job["attempt"] == 1 and job["restarts"] == 0, job
    finally:
        runtime.stop()
