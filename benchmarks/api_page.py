"""The API benchmark (benchmarks/api.py: POST /v1/jobs and GET /v1/jobs/{id}, 32 clients) with open web
pages polling as the page does: each page asks `GET /v1/cluster/map` every second with If-None-Match
(304 while nothing changed) and, with `--jobs-view`, `GET /v1/jobs?limit=50` every 2 s as the Jobs view
does. Prints the benchmark's figures and the pages' own: requests, 200s (a changed map), 304s, p50/p99.

Run: `python benchmarks/api_page.py [--pages 5] [--seconds 8]`; `--pages 0` is benchmarks/api.py itself.
Compare runs with and without pages, alternating, on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api  # benchmarks/api.py, beside this file

POLL_SECONDS = 1.0
JOBS_SECONDS = 2.0


async def _get(conn: api.Connection11, path: str, etag: str | None) -> tuple[int, str | None, float]:
    """One GET with If-None-Match; (status, ETag, seconds)."""
    if conn.writer is None:
        conn.reader, conn.writer = await asyncio.open_connection(conn.host, conn.port)
    assert conn.reader is not None
    head = f"GET {path} HTTP/1.1\r\nHost: {conn.host}\r\n" + (f"If-None-Match: {etag}\r\n" if etag else "")
    started = time.perf_counter()
    conn.writer.write(head.encode() + b"\r\n")
    status = int((await conn.reader.readline()).split()[1])
    length, new_etag = 0, etag
    while (line := await conn.reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "etag":
            new_etag = value.strip()
    await conn.reader.readexactly(length)
    return status, new_etag, time.perf_counter() - started


async def page(url: str, stop: asyncio.Event, stats: dict[str, list[float]], jobs_view: bool) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = api.Connection11(host, int(port))
    etag: str | None = None
    next_jobs = time.perf_counter()
    try:
        while not stop.is_set():
            status, etag, took = await _get(conn, "/v1/cluster/map", etag)
            stats[str(status)].append(took)
            if jobs_view and time.perf_counter() >= next_jobs:
                status, _, took = await _get(conn, "/v1/jobs?limit=50", None)
                stats[f"jobs {status}"].append(took)
                next_jobs += JOBS_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
    finally:
        conn.close()


async def run(url: str, seconds: float, clients: int, pages: int, jobs_view: bool) -> bool:
    stop = asyncio.Event()
    stats: dict[str, list[float]] = defaultdict(list)
    pollers = [asyncio.create_task(page(url, stop, stats, jobs_view)) for _ in range(pages)]
    try:
        ok = await api.bench(url, seconds, clients)
    finally:
        stop.set()
        await asyncio.gather(*pollers)
    if pages:
        every = sorted(t for v in stats.values() for t in v)
        p50, p99 = api.percentile(every, 0.5) * 1000, api.percentile(every, 0.99) * 1000
        counts = ", ".join(f"{k}: {len(v)}" for k, v in sorted(stats.items()))
        print(f"{pages} page(s) polling{' (Jobs view)' if jobs_view else ''}: {counts}; "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase (default 8)")
    parser.add_argument("--clients", type=int, default=api.CLIENTS)
    parser.add_argument("--pages", type=int, default=5, help="open pages polling the map (default 5)")
    parser.add_argument("--jobs-view", action="store_true", help="the pages show the Jobs view")
    args = parser.parse_args()

    def body(url: str) -> bool:
        print(f"API {url}: {args.clients} clients, {args.seconds:.0f} s per phase, {args.pages} page(s), "
              f"on {os.cpu_count()} CPU(s)")
        return asyncio.run(run(url, args.seconds, args.clients, args.pages, args.jobs_view))

    return api.run_against_server(api.serve, (api.zk_hosts_from_env(),), body)


if __name__ == "__main__":
    sys.exit(main())
