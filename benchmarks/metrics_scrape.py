"""`GET /metrics` cost at 10,000 jobs: one scrape's latency through the real HTTP API, in one process.

A real `SchedulerRuntime` leads over an in-memory store holding `--jobs` job records (the mix of
`benchmarks/jobs_list.py`: mostly ended, some pending or running, 4 tenants) with the tornado API on a
local port; no Mesos master (the cluster capacity read fails fast and is left out). Scrapes `/metrics`
`--scrapes` times one after the other and prints the median and the worst, in milliseconds, and the
size of the answer. Run: `python benchmarks/metrics_scrape.py [--jobs 10000] [--scrapes 30]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.jobs_list import _NoMaster, stored_jobs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=30)
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.ERROR)
    from mesos_gpu.api.app import close_app, make_app
    from mesos_gpu.api.server import ApiServer
    from mesos_gpu.core.config import SchedulerSettings
    from mesos_gpu.core.scheduling import make_planner
    from mesos_gpu.core.taskinfo import LaunchSettings
    from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerDriverLike, SchedulerRuntime
    from mesos_gpu.store.memory import MemoryBackend, MemoryStore

    store = MemoryStore(MemoryBackend())
    store.create_many(stored_jobs(args.jobs))
    server = ApiServer("127.0.0.1", 0)
    port = server.bind()
    runtime = SchedulerRuntime(
        store=store, planner=make_planner(), options=FrameworkOptions(master="127.0.0.1:1"),
        launch=LaunchSettings(), identifier=f"127.0.0.1:{port}",
        driver_factory=lambda callbacks, info: cast("SchedulerDriverLike", _NoMaster()),
    )
    app = make_app(runtime, settings=SchedulerSettings(), launcher_bundle=b"", master_url="127.0.0.1:1")
    server.start(app)
    runtime.start()
    try:
        deadline = time.monotonic() + 60
        while not runtime.is_leader and time.monotonic() < deadline:
            time.sleep(0.05)
        times, size = [], 0
        for _ in range(args.scrapes):
            started = time.perf_counter()
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as response:
                size = len(response.read())
            times.append(time.perf_counter() - started)
        print(f"GET /metrics at {args.jobs} jobs: median {statistics.median(times) * 1000:.1f} ms, "
              f"worst {max(times) * 1000:.1f} ms over {args.scrapes} scrapes; {size} bytes")
    finally:
        server.stop()
        runtime.stop()
        close_app(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
