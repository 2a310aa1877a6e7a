"""End-to-end launch benchmark of the embedded local cluster with the unmodified pymesos driver.

Measures task launches per second (ACCEPT sent -> TASK_RUNNING received, trivial `true` commands) and
the p50/p99 ACCEPT-to-RUNNING latency. Targets: >= 100 launches/s on 2 cores, p50 <= 20 ms.
Run: `.venv/bin/python benchmarks/local_cluster.py [--tasks 600] [--per-offer 10]`; bounded (< 60 s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pymesos  # in the main thread: it installs a SIGINT handler at import

from mesos_gpu.local.cluster import LocalCluster

TARGET_RATE = 100.0
TARGET_P50_MS = 20.0
TIME_LIMIT = 45.0


def _scalar(offer: Any, name: str) -> float:
    return float(sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name))


class LaunchingScheduler(pymesos.Scheduler):
    """Launches `total` trivial command tasks, `per_offer` at a time, and times each to RUNNING."""

    def __init__(self, total: int, per_offer: int) -> None:
        self.total = total
        self.per_offer = per_offer
        self.next_index = 0
        self.accepted_at: dict[str, float] = {}
        self.running_at: dict[str, float] = {}
        self.done = threading.Event()
        self.errors: list[str] = []

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:  # noqa: N802 - pymesos' name
        try:
            for offer in offers:
                fits = min(int(round(_scalar(offer, "cpus") / 0.01)), int(_scalar(offer, "mem")))
                count = min(self.per_offer, self.total - self.next_index, fits)
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
        elif state in ("TASK_FAILED", "TASK_ERROR", "TASK_LOST"):
            self.errors.append(f"{task_id}: {state} {status.get('message', '')}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run(total: int, per_offer: int, agents: int) -> dict[str, float]:
    scheduler = LaunchingScheduler(total, per_offer)
    with (
        tempfile.TemporaryDirectory(prefix="mesos-gpu-bench-") as workdir,
        LocalCluster(
            agents=agents,
            gpus_per_agent=0,
            workdir=Path(workdir),
            status_update_retry=30.0,
            allocation_interval=0.5,
            agent_resources={"cpus": 64, "mem": 65536},
        ) as cluster,
    ):
        framework = {"user": "bench", "name": "launch-benchmark", "failover_timeout": 0.0}
        driver = pymesos.MesosSchedulerDriver(scheduler, framework, cluster.master_address)
        driver.start()
        try:
            finished = scheduler.done.wait(TIME_LIMIT)
        finally:
            driver.stop()
            driver.join()
    if scheduler.errors:
        raise SystemExit(f"benchmark failed: {scheduler.errors[:5]}")
    if not finished:
        print(f"warning: only {len(scheduler.running_at)} of {total} tasks reached RUNNING in {TIME_LIMIT} s")
    latencies = [(scheduler.running_at[t] - scheduler.accepted_at[t]) * 1000 for t in scheduler.running_at]
    start = min(scheduler.accepted_at.values())
    end = max(scheduler.running_at.values())
    return {
        "tasks": float(len(latencies)),
        "seconds": end - start,
        "rate": len(latencies) / (end - start),
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--per-offer", type=int, default=10)
    parser.add_argument("--agents", type=int, default=2)
    args = parser.parse_args()
    result = run(args.tasks, args.per_offer, args.agents)
    print(f"tasks launched:            {int(result['tasks'])} in {result['seconds']:.2f} s")
    print(
        f"launches per second:       {result['rate']:.1f}/s  "
        f"(target >= {TARGET_RATE:.0f}/s; ratio {result['rate'] / TARGET_RATE:.2f})"
    )
    print(
        f"ACCEPT->RUNNING p50:       {result['p50_ms']:.1f} ms  "
        f"(target <= {TARGET_P50_MS:.0f} ms; ratio {TARGET_P50_MS / result['p50_ms']:.2f})"
    )
    print(f"ACCEPT->RUNNING p99:       {result['p99_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
