"""A scheduler runtime in its own process, for failover tests (killed with SIGKILL by the test).

Usage: python -m tests.integration.scheduler_proc MASTER ZK_URL IDENTIFIER LAUNCHER_URI [JOB_JSON]
It campaigns for leadership, prints LEADER when elected and connected (then submits JOB_JSON, if
given, and prints `JOB <id>`), and runs until killed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.store.zk import connect


def build_runtime(master: str, zk_url: str, identifier: str, launcher_uri: str, **connect_options: Any
                  ) -> SchedulerRuntime:
    """The runtime of framework "ha" these test processes run (logging set up, not started)."""
    logging.basicConfig(level=logging.INFO, format=f"{identifier} %(levelname)s %(name)s: %(message)s")
    store = connect(zk_url, "ha", **connect_options)
    return SchedulerRuntime(
        store=store,
        planner=make_planner(PlacementPolicy(cpu_tasks_on_gpu_agents=True)),
        options=FrameworkOptions(master=master, name="ha", user="root", failover_timeout=600),
        launch=LaunchSettings(framework_name="ha", zk_url=zk_url + "/ha", launcher_uri=launcher_uri),
        identifier=identifier,
        tick_seconds=0.2,
    )


def main() -> None:
    master, zk_url, identifier, launcher_uri = sys.argv[1:5]
    job = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
    runtime = build_runtime(master, zk_url, identifier, launcher_uri)
    runtime.start()
    announced = False
    while True:
        if not announced and runtime.is_leader and runtime.mesos_connected:
            print("LEADER", flush=True)
            announced = True
            if job is not None:
                view, _ = runtime.submit(validate_job(job))
                print(f"JOB {view['id']}", flush=True)
        time.sleep(0.05)


if __name__ == "__main__":
    main()
