"""End-to-end launch benchmark of the embedded local cluster with the unmodified pymesos driver.

Measures task launches per second (ACCEPT sent -> TASK_RUNNING received, trivial `true` commands) and
the p50/p99 ACCEPT-to-RUNNING latency. Targets: >= 100 launches/s on 2 cores, p50 <= 20 ms.
The cluster runs as `mesos-gpu local up` in a child process (as in real use); the pymesos scheduler
runs here. Phase 1 measures throughput with `--per-offer` tasks per ACCEPT; phase 2 launches
`--sequential` tasks one at a time for the latency figures (latency under load is printed too).
Run: `.venv/bin/python benchmarks/local_cluster.py [--tasks 600] [--per-offer 10]`; bounded (< 60 s).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymesos  # in the main thread: it installs a SIGINT handler at import

TARGET_RATE = 100.0
TARGET_P50_MS = 20.0
TIME_LIMIT = 45.0


def _scalar(offer: Any, name: str) -> float:
    return float(sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name))


class LaunchingScheduler(pymesos.Scheduler):
    """Launches `total` trivial command tasks, `per_offer` at a time, and times each to RUNNING."""

    def __init__(self, total: int, per_offer: int, one_at_a_time: bool = False) -> None:
        self.total = total
        self.per_offer = per_offer
        # Latency phase: launch the next task only once the previous one is RUNNING (an idle cluster).
        self.one_at_a_time = one_at_a_time
        self.next_index = 0
        self.accepted_at: dict[str, float] = {}
        self.running_at: dict[str, float] = {}
        self.done = threading.Event()
        self.errors: list[str] = []

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:  # noqa: N802 - pymesos' name
        try:
            for offer in offers:
                fits = min(round(_scalar(offer, "cpus") / 0.01), int(_scalar(offer, "mem")))
                count = min(self.per_offer, self.total - self.next_index, fits)
                if self.one_at_a_time and len(self.accepted_at) > len(self.running_at):
                    count = 0
                if count <= 0:
                    driver.declineOffer(offer["id"], {"refuse_seconds": 0.5})
                    continue
                tasks = []
                for _ in range(count):
                    task_id = f"bench-{self.next_index}"
                    self.next_index += 1
                    tasks.append(
                        {
                            "name": task_id,
                            "task_id": {"value": task_id},
                            "agent_id": offer["agent_id"],
                            "resources": [
                                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
                                {"name": "mem", "type": "SCALAR", "scalar": {"value": 1}},
                            ],
                            "command": {"value": "true"},
                        }
                    )
                now = time.perf_counter()
                for task in tasks:
                    self.accepted_at[task["task_id"]["value"]] = now
                driver.launchTasks(offer["id"], tasks, {"refuse_seconds": 0})
        except Exception as exc:  # never raise into pymesos
            self.errors.append(repr(exc))
            self.done.set()

    def statusUpdate(self, driver: Any, status: Any) -> None:  # noqa: N802 - pymesos' name
        task_id = status["task_id"]["value"]
        state = status["state"]
        if state == "TASK_RUNNING" and task_id not in self.running_at:
            self.running_at[task_id] = time.perf_counter()
            if len(self.running_at) >= self.total:
                self.done.set()
            elif self.one_at_a_time:
                driver.reviveOffers()  # the declined offers come back at once for the next launch
        elif state in ("TASK_FAILED", "TASK_ERROR", "TASK_LOST"):
            self.errors.append(f"{task_id}: {state} {status.get('message', '')}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@contextlib.contextmanager
def cluster_process(agents: int) -> Iterator[str]:
    """`mesos-gpu local up` in a child process (its own GIL, as in real use); yields the address."""
    with tempfile.TemporaryDirectory(prefix="mesos-gpu-bench-") as workdir:
        command = [
            sys.executable,
            "-m",
            "mesos_gpu.local.cli",
            "local",
            "up",
            "--port",
            "0",
            "--agents",
            str(agents),
            "--gpus-per-agent",
            "0",
            "--workdir",
            workdir,
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if "at " not in line:
                raise SystemExit(f"the local cluster did not start: {line!r}")
            yield line.rsplit(" ", 1)[1].strip()
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def run_phase(address: str, total: int, per_offer: int, one_at_a_time: bool = False) -> LaunchingScheduler:
    scheduler = LaunchingScheduler(total, per_offer, one_at_a_time)
    framework = {"user": "bench", "name": f"launch-benchmark-{per_offer}", "failover_timeout": 0.0}
    driver = pymesos.MesosSchedulerDriver(scheduler, framework, address)
    driver.start()
    try:
        finished = scheduler.done.wait(TIME_LIMIT / 2)
    finally:
        driver.stop()
        driver.join()
    if scheduler.errors:
        raise SystemExit(f"benchmark failed: {scheduler.errors[:5]}")
    if not finished:
        print(f"warning: only {len(scheduler.running_at)} of {total} tasks reached RUNNING in time")
    return scheduler


def latencies_ms(scheduler: LaunchingScheduler) -> list[float]:
    return [(scheduler.running_at[t] - scheduler.accepted_at[t]) * 1000 for t in scheduler.running_at]


def run(total: int, per_offer: int, agents: int, sequential: int) -> dict[str, float]:
    """Phase 1: throughput with `per_offer` tasks per ACCEPT. Phase 2: one task at a time (the
    latency of a launch on an otherwise idle cluster)."""
    with cluster_process(agents) as address:
        loaded = run_phase(address, total, per_offer)
        single = run_phase(address, sequential, 1, one_at_a_time=True) if sequential else None
    start = min(loaded.accepted_at.values())
    end = max(loaded.running_at.values())
    under_load = latencies_ms(loaded)
    idle = latencies_ms(single) if single else under_load
    return {
        "tasks": float(len(under_load)),
        "seconds": end - start,
        "rate": len(under_load) / (end - start),
        "p50_ms": statistics.median(idle),
        "p99_ms": percentile(idle, 0.99),
        "load_p50_ms": statistics.median(under_load),
        "load_p99_ms": percentile(under_load, 0.99),
        "sequential": float(len(idle)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--per-offer", type=int, default=10)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument(
        "--sequential", type=int, default=100, help="tasks launched one at a time for latency"
    )
    args = parser.parse_args()
    result = run(args.tasks, args.per_offer, args.agents, args.sequential)
    print(f"tasks launched:            {int(result['tasks'])} in {result['seconds']:.2f} s")
    print(
        f"launches per second:       {result['rate']:.1f}/s  "
        f"(target >= {TARGET_RATE:.0f}/s; ratio {result['rate'] / TARGET_RATE:.2f})"
    )
    print(
        f"ACCEPT->RUNNING p50:       {result['p50_ms']:.1f} ms  "
        f"(target <= {TARGET_P50_MS:.0f} ms; ratio {TARGET_P50_MS / result['p50_ms']:.2f})"
    )
    print(
        f"ACCEPT->RUNNING p99:       {result['p99_ms']:.1f} ms  "
        f"({int(result['sequential'])} tasks one at a time)"
    )
    print(
        f"under load (throughput phase): p50 {result['load_p50_ms']:.1f} ms, "
        f"p99 {result['load_p99_ms']:.1f} ms "
        "(includes queueing behind the other tasks in flight)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
