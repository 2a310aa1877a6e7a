"""Job list benchmark: a 10-job page of GET /v1/jobs at 10,000 stored jobs, through the real HTTP API.

The scheduler runs in its own process: a real `SchedulerRuntime` leading over an in-memory store that
holds 10,000 jobs before it starts (4 tenants; most of them ended, some pending or running, as a
long-lived scheduler keeps them), and the tornado API. No Mesos master: listing never touches Mesos or
the store while leading, and the jobs need not run. The load comes from this process over keep-alive
HTTP/1.1 connections (the client of `benchmarks/api.py`).

Prints p50 and p99 latency of one client paging (the first page, a page at a random offset, a page
filtered by tenant and by two states; target p99 <= 20 ms each, with the ratio target / measured), then
32 concurrent clients (requests per second, p50 and p99 with queueing), then a burst of 1,000
concurrent list requests (how many were answered within 30 s). The exit status is 1 only when
requests failed. About 25 s in all.
Run: `python benchmarks/jobs_list.py [--jobs 10000] [--seconds 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.api import Connection11, percentile, run_against_server, run_phase  # noqa: E402

JOBS = 10_000
PAGE = 10
TARGET_P99_MS = 20.0
CLIENTS = 32
BURST = 1000
BURST_SECONDS = 30.0
TENANTS = ("vision", "speech", "ranking", "default")
# How a long-lived scheduler's jobs are spread: mostly ended, a few waiting or running.
STATES = (("SUCCEEDED", 70), ("FAILED", 12), ("KILLED", 8), ("PENDING", 6), ("RUNNING", 3), ("RESTARTING", 1))


class _NoMaster:
    """A Mesos driver that never connects: the listed jobs stay as stored."""

    connected = False
    aborted = False

    def start(self) -> None:
        pass

    def stop(self, failover: bool = False) -> None:
        pass

    def join(self) -> None:
        pass


def stored_jobs(count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` job records, submitted 0.1 s apart, in the states and tenants above."""
    from mesos_gpu.core.records import new_job_record
    from mesos_gpu.core.validation import validate_job

    draw = random.Random(20)
    states = [state for state, weight in STATES for _ in range(weight)]
    specs = {
        tenant: validate_job({"name": "bench", "command": "python train.py", "gpus": 1, "tenant": tenant})
        for tenant in TENANTS
    }
    start = time.time() - count * 0.1
    records = []
    for index in range(count):
        job_id = f"bench-{index:08x}"
        record = new_job_record(job_id, specs[draw.choice(TENANTS)], start + index * 0.1)
        record["state"] = draw.choice(states)
        if record["state"] in ("SUCCEEDED", "FAILED", "KILLED"):
            record["finished_at"] = record["submitted_at"] + 60.0
        records.append((job_id, record))
    return records


def serve(conn: Connection, count: int) -> None:
    """The scheduler process: a store holding `count` jobs, the runtime leading over it, the API."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    from mesos_gpu import gcpolicy
    from mesos_gpu.api.app import make_app
    from mesos_gpu.api.server import ApiServer
    from mesos_gpu.core.config import SchedulerSettings
    from mesos_gpu.core.scheduling import make_planner
    from mesos_gpu.core.taskinfo import LaunchSettings
    from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerDriverLike, SchedulerRuntime
    from mesos_gpu.store.memory import MemoryBackend, MemoryStore

    _raise_file_limit()
    store = MemoryStore(MemoryBackend())
    store.create_many(stored_jobs(count))
    server = ApiServer("127.0.0.1", 0)
    port = server.bind()
    runtime = SchedulerRuntime(
        store=store,
        planner=make_planner(),
        options=FrameworkOptions(master="127.0.0.1:1"),
        launch=LaunchSettings(),
        identifier=f"127.0.0.1:{port}",
        driver_factory=lambda callbacks, info: cast("SchedulerDriverLike", _NoMaster()),
    )
    app = make_app(runtime, settings=SchedulerSettings(), launcher_bundle=b"", master_url="127.0.0.1:1")
    server.start(app)
    runtime.start()
    gcpolicy.configure()  # as `mesos-gpu scheduler` does once started
    deadline = time.monotonic() + 60
    while not runtime.is_leader and time.monotonic() < deadline:
        time.sleep(0.05)
    conn.send(server.url if runtime.is_leader else "")
    conn.recv()  # wait for "stop"
    server.stop()
    runtime.stop()
    conn.send("stopped")


def _raise_file_limit() -> None:
    """The burst opens 1,000 connections at once: allow them (up to the hard limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * BURST if hard == resource.RLIM_INFINITY else min(hard, 4 * BURST)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# -------------------------------------------------------------------------------------------- load
def report(name: str, latencies: list[float], errors: int) -> bool:
    """Print one client's phase against the target; False when any request failed."""
    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    print(
        f"{name:<52} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms (target {TARGET_P99_MS:.0f} ms, "
        f"ratio {TARGET_P99_MS / p99:.2f})   requests {len(latencies)}   errors {errors}   "
        f"{'meets the target' if p99 <= TARGET_P99_MS else 'BELOW TARGET'}"
    )
    return errors == 0


async def burst(url: str, requests: int, seconds: float) -> tuple[int, float]:
    """`requests` list requests at once, each on its own connection: (answered within `seconds`,
    seconds until the last answer)."""
    host, port = url.removeprefix("http://").split(":")
    start = time.perf_counter()
    answered = 0
    last = 0.0

    async def one() -> None:
        nonlocal answered, last
        conn = Connection11(host, int(port))
        try:
            status, _ = await conn.request("GET", f"/v1/jobs?limit={PAGE}&offset={random.randrange(JOBS)}")
            if status == 200:
                answered += 1
                last = time.perf_counter() - start
        finally:
            conn.close()

    tasks = [asyncio.ensure_future(one()) for _ in range(requests)]
    await asyncio.wait(tasks, timeout=seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return answered, last


async def bench(url: str, count: int, seconds: float) -> bool:
    kinds: list[tuple[str, Any]] = [
        ("first page", lambda: f"/v1/jobs?limit={PAGE}"),
        ("page at a random offset", lambda: f"/v1/jobs?limit={PAGE}&offset={random.randrange(count)}"),
        ("tenant's page at a random offset",
         lambda: f"/v1/jobs?tenant=vision&limit={PAGE}&offset={random.randrange(count // 4)}"),
        ("PENDING,FAILED page at a random offset",
         lambda: f"/v1/jobs?state=PENDING,FAILED&limit={PAGE}&offset={random.randrange(count // 6)}"),
    ]
    ok = True
    await run_phase(url, 1.0, 1, lambda: ("GET", f"/v1/jobs?limit={PAGE}", b"", (200,)))  # warm-up
    for name, path in kinds:
        def request(path: Any = path) -> tuple[str, str, bytes, tuple[int, ...]]:
            return "GET", path(), b"", (200,)

        _, latencies, errors = await run_phase(url, seconds, 1, request)
        ok = report(f"10-job page, {name}", latencies, errors) and ok

    def any_page() -> tuple[str, str, bytes, tuple[int, ...]]:
        return "GET", f"/v1/jobs?limit={PAGE}&offset={random.randrange(count)}", b"", (200,)

    start = time.perf_counter()
    _, latencies, errors = await run_phase(url, seconds, CLIENTS, any_page)
    elapsed = time.perf_counter() - start
    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    print(  # throughput with queueing (load and scheduler share the CPUs): no latency target
        f"{f'10-job pages, {CLIENTS} concurrent clients':<52} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
        f"{len(latencies) / elapsed:.0f} req/s   errors {errors}"
    )
    ok = errors == 0 and ok
    answered, last = await burst(url, BURST, BURST_SECONDS)
    print(
        f"burst of {BURST} concurrent list requests: {answered} answered within {BURST_SECONDS:.0f} s "
        f"({BURST - answered} unanswered), the last after {last:.1f} s"
    )
    print("ratio = target / measured: >= 1 meets the target.")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"stored jobs (default {JOBS})")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per phase (default 3)")
    args = parser.parse_args()
    _raise_file_limit()

    def body(url: str) -> bool:
        print(f"API {url}: {args.jobs} stored jobs, {args.seconds:.0f} s per phase, "
              f"on {os.cpu_count()} CPU(s)")
        return asyncio.run(bench(url, args.jobs, args.seconds))

    return run_against_server(serve, (args.jobs,), body)


if __name__ == "__main__":
    sys.exit(main())
