"""REST API benchmark: 32 concurrent clients against the scheduler's API.

The scheduler runs in its own process as in production: a real `SchedulerRuntime` on the ZooKeeper
store (a ZooKeeper server from the local install, or ZOOKEEPER_URL=host:port), subscribed through
pymesos to an embedded Mesos master with no agents (so jobs stay PENDING and nothing is launched), and
the tornado API. The load comes from this process: 32 keep-alive HTTP/1.1 connections on asyncio.

Prints requests per second and p50/p99 latency for POST /v1/jobs (persisted in ZooKeeper; target
>= 300/s, p99 <= 50 ms) and GET /v1/jobs/{id} (target >= 2,000/s, p99 <= 50 ms), with the ratio to
each target (the exit status is 1 only when requests failed). Bounded: about 25 s in all.
Run: `python benchmarks/api.py [--seconds 8] [--clients 32]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CLIENTS = 32
TARGET_POST_RATE = 300.0
TARGET_GET_RATE = 2000.0
TARGET_P99_MS = 50.0
JOB = {"name": "bench", "command": "python train.py", "gpus": 1, "tenant": "bench"}


# ------------------------------------------------------------------------------------- the scheduler
def serve(conn: Connection, zk_hosts: str | None) -> None:
    """The scheduler process: ZooKeeper store + runtime (pymesos to a local master) + API."""
    import logging
    import uuid

    logging.basicConfig(level=logging.ERROR)
    from mesos_gpu import gcpolicy
    from mesos_gpu.api.app import make_app
    from mesos_gpu.api.server import ApiServer
    from mesos_gpu.core.config import SchedulerSettings
    from mesos_gpu.core.scheduling import make_planner
    from mesos_gpu.core.taskinfo import LaunchSettings
    from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
    from mesos_gpu.local.cluster import LocalCluster
    from mesos_gpu.local.zookeeper import ZooKeeperServer
    from mesos_gpu.store.zk import connect

    zookeeper = None
    if zk_hosts is None:
        zookeeper = ZooKeeperServer().start()
        zk_hosts = zookeeper.hosts
    cluster = LocalCluster(agents=0).start()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    store = connect(f"zk://{zk_hosts}/mesos-gpu-bench", name)
    server = ApiServer("127.0.0.1", 0)
    port = server.bind()
    runtime = SchedulerRuntime(
        store=store,
        planner=make_planner(),
        options=FrameworkOptions(master=cluster.master_address, name=name),
        launch=LaunchSettings(framework_name=name),
        identifier=f"127.0.0.1:{port}",
    )
    app = make_app(
        runtime, settings=SchedulerSettings(), launcher_bundle=b"", master_url=cluster.master_address
    )
    server.start(app)
    runtime.start()
    gcpolicy.configure()  # as `mesos-gpu scheduler` does once started
    deadline = time.monotonic() + 60
    while not (runtime.is_leader and runtime.mesos_connected) and time.monotonic() < deadline:
        time.sleep(0.05)
    conn.send(server.url if runtime.is_leader else "")
    conn.recv()  # wait for "stop"
    server.stop()
    runtime.stop()
    cluster.stop()
    store.close()
    if zookeeper is not None:
        zookeeper.stop()
    conn.send("stopped")


# -------------------------------------------------------------------------------------------- load
class Connection11:
    """One keep-alive HTTP/1.1 connection: send a request, read the whole answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_phase(
    url: str, seconds: float, clients: int, make_request: Any, on_body: Any = None
) -> tuple[int, list[float], int]:
    """`clients` loops sending `make_request()` for `seconds`; returns (requests, latencies, errors)."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        conn = Connection11(host, int(port))
        try:
            while time.perf_counter() < stop_at:
                method, path, body, expected = make_request()
                start = time.perf_counter()
                status, payload = await conn.request(method, path, body)
                latencies.append(time.perf_counter() - start)
                if status not in expected:
                    errors += 1
                elif on_body is not None:
                    on_body(payload)
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies), latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def report(name: str, latencies: list[float], errors: int, seconds: float, target: float) -> bool:
    """Print one phase; return False when any request failed (missing a target is only reported)."""
    rate = len(latencies) / seconds
    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    meets = rate >= target and p99 <= TARGET_P99_MS
    print(
        f"{name:<22} {rate:8.0f} req/s (target {target:.0f}/s, ratio {rate / target:.2f})   "
        f"p50 {p50:6.2f} ms   p99 {p99:6.2f} ms "
        f"(target {TARGET_P99_MS:.0f} ms, ratio {TARGET_P99_MS / p99:.2f})   "
        f"errors {errors}   {'meets the targets' if meets else 'BELOW TARGET'}"
    )
    return errors == 0


async def bench(url: str, seconds: float, clients: int) -> bool:
    body = json.dumps(JOB).encode()
    ids: list[str] = []

    def post() -> tuple[str, str, bytes, tuple[int, ...]]:
        return "POST", "/v1/jobs", body, (201,)

    await run_phase(url, 1.0, clients, post)  # warm-up (connections, thread pool, ZooKeeper)
    start = time.perf_counter()
    _, latencies, errors = await run_phase(
        url, seconds, clients, post, lambda b: ids.append(json.loads(b)["id"])
    )
    elapsed = time.perf_counter() - start
    post_ok = report("POST /v1/jobs (ZK)", latencies, errors, elapsed, TARGET_POST_RATE)

    def get() -> tuple[str, str, bytes, tuple[int, ...]]:
        return "GET", f"/v1/jobs/{random.choice(ids)}", b"", (200,)

    await run_phase(url, 1.0, clients, get)
    start = time.perf_counter()
    _, latencies, errors = await run_phase(url, seconds, clients, get)
    get_ok = report("GET /v1/jobs/{id}", latencies, errors, time.perf_counter() - start, TARGET_GET_RATE)
    print(f"jobs persisted in ZooKeeper during the run: {len(ids)}")
    print("ratio = measured / target for rates, target / measured for latencies: >= 1 meets the target.")
    return post_ok and get_ok


def zk_hosts_from_env() -> str | None:
    """`host:port,...` of ZOOKEEPER_URL (zk://hosts/path), or None: the benchmark starts its own."""
    zk_env = os.environ.get("ZOOKEEPER_URL")
    return zk_env.removeprefix("zk://").split("/", 1)[0] if zk_env else None


def run_against_server(target: Callable[..., None], target_args: tuple[Any, ...],
                       body: Callable[[str], bool]) -> int:
    """Start `target(conn, *target_args)` (a `serve`) in a spawned process, run `body(url)` against the
    URL it sends, stop it; the exit status: 0 when `body` answered True."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child, *target_args), daemon=True)
    process.start()
    try:
        if not parent.poll(90):
            print("the scheduler did not start within 90 s", file=sys.stderr)
            return 1
        url = parent.recv()
        if not url:
            print("the scheduler did not become leader", file=sys.stderr)
            return 1
        ok = body(url)
    finally:
        parent.send("stop")
        parent.poll(30)
        process.join(30)
        if process.is_alive():
            process.kill()
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase (default 8)")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args()

    def body(url: str) -> bool:
        print(
            f"API {url}: {args.clients} concurrent clients, {args.seconds:.0f} s per phase, "
            f"on {os.cpu_count()} CPU(s)"
        )
        return asyncio.run(bench(url, args.seconds, args.clients))

    return run_against_server(serve, (zk_hosts_from_env(),), body)


if __name__ == "__main__":
    sys.exit(main())
