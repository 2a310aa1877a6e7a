"""Prometheus text exposition (format 0.0.4) for `GET /metrics`, and a small thread-safe `Histogram`.

`render(families)` writes metric families; `scheduler_families(...)` builds the scheduler's: jobs by
state, tasks launched, GPUs allocated (whole-GPU tasks' and share hosts'), share hosts and GPU shares,
leadership and connections, the API's own request counts and latencies, and, when the service keeps
them, offers received/declined and placement latency.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.api.service import HistogramLike

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Latency buckets in seconds, from 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]

GPUS_ALLOCATED_HELP = (
    "GPUs held by this framework's active tasks: whole-GPU tasks' GPUs plus the one GPU of each share host "
    "with an active share task (an empty share host lingering before it exits is not counted)."
)
SHARE_HOSTS_HELP = "Share hosts with an active share task (each holds one whole GPU)."
SHARES_HELP = "Sum of the GPU fractions granted to active share tasks (at most mesos_gpu_share_hosts)."


class Histogram:
    """A cumulative histogram (Prometheus semantics): `observe(seconds)`, `snapshot()`."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("bucket bounds must be distinct and increasing")
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[tuple[float, int]], float, int]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip(self.bounds, counts, strict=False):
            running += count
            cumulative.append((bound, running))
        return cumulative, total, sum(counts)


@dataclass
class Family:
    """One metric family: its samples as (suffix, labels, value)."""

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, labels: Mapping[str, str] | None = None, suffix: str = "") -> Family:
        self.samples.append((suffix, tuple(sorted((labels or {}).items())), float(value)))
        return self

    def add_histogram(self, histogram: HistogramLike, labels: Mapping[str, str] | None = None) -> Family:
        buckets, total, count = histogram.snapshot()
        base = dict(labels or {})
        for bound, cumulative in buckets:
            self.add(cumulative, {**base, "le": _number(bound)}, "_bucket")
        self.add(count, {**base, "le": "+Inf"}, "_bucket")
        self.add(total, base, "_sum")
        self.add(count, base, "_count")
        return self


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            name = family.name + suffix
            lines.append(f"{name}{{{label_text}}} {_number(value)}" if labels else f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


@dataclass
class RequestStats:
    """The API's own traffic: requests by method and status code, and handling latency."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)

    def record(self, method: str, status: int, seconds: float) -> None:
        key = (method, str(status))
        self.counts[key] = self.counts.get(key, 0) + 1  # IOLoop thread only
        self.latency.observe(seconds)


def scheduler_families(
    *,
    jobs_by_state: Mapping[str, int],
    gpus_allocated: int,
    launches: int,
    leader: bool,
    mesos_connected: bool,
    zookeeper_connected: bool,
    requests: RequestStats,
    offers_received: int | None = None,
    offers_declined: int | None = None,
    placement_latency: HistogramLike | None = None,
    submit_batches: int | None = None,
    share_hosts: Sequence[Mapping[str, Any]] = (),
) -> list[Family]:
    """Every family `/metrics` shows; the optional ones only when the service provides them.

    `gpus_allocated` is the whole-GPU tasks' GPUs; each of `share_hosts` (`views.share_hosts`: the hosts
    with an active share task) adds the one GPU it holds, and its tasks' fractions to the shares gauge."""
    jobs = Family("mesos_gpu_jobs", "gauge", "Jobs known to the scheduler, by state.")
    for state, count in sorted(jobs_by_state.items()):
        jobs.add(count, {"state": state})
    families = [
        jobs,
        Family("mesos_gpu_tasks_launched_total", "counter", "Tasks handed to Mesos by this process.").add(
            launches
        ),
        Family("mesos_gpu_gpus_allocated", "gauge", GPUS_ALLOCATED_HELP).add(
            gpus_allocated + len(share_hosts)
        ),
        Family("mesos_gpu_share_hosts", "gauge", SHARE_HOSTS_HELP).add(len(share_hosts)),
        Family("mesos_gpu_gpu_shares_allocated", "gauge", SHARES_HELP).add(
            round(sum(float(host.get("gpus") or 0) for host in share_hosts), 3)
        ),
        Family("mesos_gpu_leader", "gauge", "1 when this scheduler is the leader.").add(int(leader)),
        Family("mesos_gpu_mesos_connected", "gauge", "1 when subscribed to the Mesos master.").add(
            int(mesos_connected)
        ),
        Family(
            "mesos_gpu_zookeeper_connected", "gauge", "1 when the job store's ZooKeeper is connected."
        ).add(int(zookeeper_connected)),
    ]
    optional_counters = (
        ("mesos_gpu_offers_received_total", "Resource offers received.", offers_received),
        ("mesos_gpu_offers_declined_total", "Resource offers declined.", offers_declined),
        (
            "mesos_gpu_submit_batches_total",
            "Store writes that carried submitted jobs (concurrent submits share one).",
            submit_batches,
        ),
    )
    for name, text, value in optional_counters:
        if value is not None:
            families.append(Family(name, "counter", text).add(value))
    if placement_latency is not None:
        families.append(
            Family(
                "mesos_gpu_placement_latency_seconds", "histogram", "Time to plan one offer cycle."
            ).add_histogram(placement_latency)
        )
    counts = Family("mesos_gpu_api_requests_total", "counter", "API requests by method and status code.")
    for (method, code), count in sorted(requests.counts.items()):
        counts.add(count, {"method": method, "code": code})
    families.append(counts)
    families.append(
        Family(
            "mesos_gpu_api_request_duration_seconds", "histogram", "Time to answer an API request."
        ).add_histogram(requests.latency)
    )
    return families
