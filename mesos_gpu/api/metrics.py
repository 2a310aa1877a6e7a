"""`GET /metrics` on prometheus_client: the scheduler's families, the API's own, the process's.

Each app has its own `RequestStats`, holding its own `CollectorRegistry` (never the global one, so several
apps in one process, as in the tests, each count their own): API requests by method and status code,
their latency by route (the route's pattern, e.g. `/v1/jobs/{id}`, never the raw path), the process's
metrics (`ProcessCollector`: CPU, memory, open files) and `mesos_gpu_build_info{version}`.

`scheduler_families(...)` builds the scheduler's families from what the handler read (`MetricsInput`):
jobs by state, tasks launched, GPUs allocated (whole-GPU tasks' and share hosts'), share hosts and GPU
shares, GPUs allocated per tenant, leadership and connections, the cluster's GPUs by agent state (when
the master answered) and, when the service keeps them, offers received/declined, submit batches,
placement latency and the stored jobs no recovery loads (quarantined, leader only). `render(families,
stats)` writes them and the app's registry in the Prometheus text format 0.0.4 through prometheus_client's
own exposition.
"""

from __future__ import annotations

import bisect
import re
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest
from prometheus_client import Histogram as PrometheusHistogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from mesos_gpu import __version__
from mesos_gpu.api.service import HistogramLike

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Latency buckets in seconds, from 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The `route` of a request no route matched (kept as one value: raw paths would make unbounded labels).
UNMATCHED = "unmatched"

GPUS_ALLOCATED_HELP = (
    "GPUs held by this framework's active tasks: whole-GPU tasks' GPUs plus the one GPU of each share host "
    "with an active share task (an empty share host lingering before it exits is not counted)."
)
SHARE_HOSTS_HELP = "Share hosts with an active share task (each holds one whole GPU)."
SHARES_HELP = "Sum of the GPU fractions granted to active share tasks (at most mesos_gpu_share_hosts)."
TENANT_GPUS_HELP = (
    "GPUs held by each tenant's active tasks: whole GPUs plus the GPU fractions of its share tasks."
)
CLUSTER_GPUS_HELP = (
    "GPUs of the agents the Mesos master knows, by agent state (active, inactive, deactivated, draining)."
)
CLUSTER_AGENTS_HELP = "Agents the Mesos master knows, by agent state (as mesos_gpu_cluster_gpus)."
QUARANTINED_SKIPPED_HELP = (
    "Stored jobs no recovery loads: quarantined, the state machine fails on them even FAILED (not in "
    "mesos_gpu_jobs; retention deletes them as finished jobs). Leader only."
)


class Histogram:
    """A cumulative histogram (Prometheus semantics) outside any registry: `observe(seconds)`,
    `snapshot()`. The runtime observes its placement latency in one (`HistogramLike`)."""

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


class _BuildInfo(Collector):
    """`mesos_gpu_build_info{version="..."} 1`."""

    def __init__(self, version: str) -> None:
        self.version = version

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("mesos_gpu_build_info", "The running mesos-gpu's version (always 1).",
                                   labels=("version",))
        family.add_metric((self.version,), 1)
        yield family


class RequestStats:
    """One app's own registry: the API's traffic, the process's metrics and the build info."""

    def __init__(self, version: str = __version__) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter("mesos_gpu_api_requests", "API requests by method and status code.",
                                 ("method", "code"), registry=self.registry)
        self._latency = PrometheusHistogram(
            "mesos_gpu_api_request_duration_seconds",
            "Time to answer an API request, by route (its pattern, e.g. /v1/jobs/{id}).",
            ("route",), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self.registry.register(_BuildInfo(version))

    def record(self, method: str, status: int, seconds: float, route: str = UNMATCHED) -> None:
        """One request answered: its method, status code, handling time and route pattern."""
        self._requests.labels(method, str(status)).inc()
        self._latency.labels(route).observe(seconds)


# ---------------------------------------------------------------------------------------- tenants
TENANT_TERMS_HELP = {
    "mesos_gpu_tenant_quota_gpus": "GPUs guaranteed to each tenant (its quota) while quotas are in force.",
    "mesos_gpu_tenant_limit_gpus": "The most GPUs each tenant may hold (its limit, or its quota when it may "
                                   "not borrow); no series for a tenant without a bound.",
    "mesos_gpu_tenant_borrowed_gpus": "GPUs each tenant holds beyond its quota (borrowed from idle quota).",
}
TENANT_WAITING_HELP = {
    "mesos_gpu_tenant_waiting_jobs": "Jobs of each tenant waiting to be placed (leader only).",
    "mesos_gpu_tenant_waiting_gpus": "GPUs asked for by each tenant's waiting jobs (leader only).",
}


def tenant_families(summaries: Sequence[Any], quotas: bool) -> list[Metric]:
    """The per-tenant families of `summaries` (`core.tenancyadmit.TenantSummary`, thousandths of a GPU):
    waiting jobs and GPUs always; quota, limit and borrowed GPUs only when `quotas` are in force."""
    waiting = {"mesos_gpu_tenant_waiting_jobs": {s.name: s.waiting_jobs for s in summaries},
               "mesos_gpu_tenant_waiting_gpus": {s.name: s.waiting_gpus / 1000 for s in summaries}}
    families: list[Metric] = [_by_label(name, TENANT_WAITING_HELP[name], "tenant", values)
                              for name, values in waiting.items()]
    if quotas:
        terms = {"mesos_gpu_tenant_quota_gpus": {s.name: s.terms.quota / 1000 for s in summaries},
                 "mesos_gpu_tenant_limit_gpus": {s.name: s.terms.ceiling / 1000 for s in summaries
                                                 if s.terms.ceiling is not None},
                 "mesos_gpu_tenant_borrowed_gpus": {s.name: s.borrowed / 1000 for s in summaries}}
        families += [_by_label(name, TENANT_TERMS_HELP[name], "tenant", values)
                     for name, values in terms.items()]
    return families


# ----------------------------------------------------------------------------------------- routes
_GROUP = re.compile(r"\((\?P<(?P<name>\w+)>)?[^()]*\)")


def route_template(pattern: str) -> str:
    """A route's regular expression as a readable pattern: `/v1/jobs/([^/]+)/tasks/?` ->
    `/v1/jobs/{id}/tasks`; a named group keeps its name, `(.*)` is `{path}`, the others are `{id}`."""
    text = pattern.removeprefix("^").removesuffix("$").removesuffix("/?")
    text = _GROUP.sub(lambda match: "{" + (match.group("name") or _unnamed(match.group(0))) + "}", text)
    return text.replace("\\", "") or "/"


def _unnamed(group: str) -> str:
    return "path" if group == "(.*)" else "id"


def route_of(handler: Any) -> str:
    """The pattern of the route that `handler` (a tornado RequestHandler) answers, `UNMATCHED` for the
    default handler (no route matched)."""
    routes = _routes(handler.application)
    path = handler.request.path
    for regex, target, template in routes:
        if target is type(handler) and regex.fullmatch(path):
            return template
    return UNMATCHED


_ROUTES: weakref.WeakKeyDictionary[Any, list[tuple[re.Pattern[str], Any, str]]] = weakref.WeakKeyDictionary()


def _routes(application: Any) -> list[tuple[re.Pattern[str], Any, str]]:
    """(regex, handler class, template) of every route of the app, read once per app."""
    cached = _ROUTES.get(application)
    if cached is None:
        cached = []
        for rule in getattr(application.wildcard_router, "rules", ()):
            regex = getattr(rule.matcher, "regex", None)
            if isinstance(regex, re.Pattern):
                cached.append((regex, rule.target, route_template(regex.pattern)))
        _ROUTES[application] = cached
    return cached


# ------------------------------------------------------------------------------------ the scheduler
@dataclass(frozen=True)
class ClusterCapacity:
    """The master's agents and their GPUs, by agent state."""

    agents: Mapping[str, int] = field(default_factory=dict)
    gpus: Mapping[str, int] = field(default_factory=dict)


def agent_state(agent: Mapping[str, Any]) -> str:
    """An agent of the master's `/state` as one word: draining, deactivated, inactive or active."""
    if agent.get("drain_info"):
        return "draining"
    if agent.get("deactivated"):
        return "deactivated"
    return "active" if agent.get("active", True) else "inactive"


def cluster_capacity(master_state: Mapping[str, Any]) -> ClusterCapacity:
    """Agents and total GPUs by agent state, from the master's `/state` (every state appears, 0 when none)."""
    agents = dict.fromkeys(("active", "inactive", "deactivated", "draining"), 0)
    gpus = dict(agents)
    for agent in master_state.get("slaves", ()):
        state = agent_state(agent)
        resources = agent.get("resources") or {}
        value = resources.get("gpus", 0) if isinstance(resources, Mapping) else 0
        agents[state] += 1
        gpus[state] += int(value) if isinstance(value, int | float) else 0
    return ClusterCapacity(agents, gpus)


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _by_label(name: str, text: str, label: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=(label,))
    for key, value in sorted(values.items()):
        family.add_metric((key,), value)
    return family


def _histogram(name: str, text: str, histogram: HistogramLike) -> HistogramMetricFamily:
    buckets, total, count = histogram.snapshot()
    pairs = [(_bound(bound), float(cumulative)) for bound, cumulative in buckets]
    return HistogramMetricFamily(name, text, buckets=[*pairs, ("+Inf", float(count))], sum_value=total)


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def scheduler_families(
    *,
    jobs_by_state: Mapping[str, int],
    gpus_allocated: int,
    launches: int,
    leader: bool,
    mesos_connected: bool,
    zookeeper_connected: bool,
    offers_received: int | None = None,
    offers_declined: int | None = None,
    placement_latency: HistogramLike | None = None,
    submit_batches: int | None = None,
    share_hosts: Sequence[Mapping[str, Any]] = (),
    tenant_gpus: Mapping[str, float] | None = None,
    cluster: ClusterCapacity | None = None,
    quarantined_skipped: int | None = None,
) -> list[Metric]:
    """Every scheduler family `/metrics` shows; the optional ones only when given.

    `gpus_allocated` is the whole-GPU tasks' GPUs; each of `share_hosts` (`views.share_hosts`: the hosts
    with an active share task) adds the one GPU it holds, and its tasks' fractions to the shares gauge.
    `tenant_gpus`: GPUs held per tenant; `cluster`: the master's agents and GPUs by agent state;
    `quarantined_skipped`: the stored jobs no recovery loads (the leader's)."""
    families: list[Metric] = [
        _by_label("mesos_gpu_jobs", "Jobs known to the scheduler, by state.", "state", jobs_by_state),
        CounterMetricFamily("mesos_gpu_tasks_launched_total", "Tasks handed to Mesos by this process.",
                            value=launches),
        _gauge("mesos_gpu_gpus_allocated", GPUS_ALLOCATED_HELP, gpus_allocated + len(share_hosts)),
        _gauge("mesos_gpu_share_hosts", SHARE_HOSTS_HELP, len(share_hosts)),
        _gauge("mesos_gpu_gpu_shares_allocated", SHARES_HELP,
               round(sum(float(host.get("gpus") or 0) for host in share_hosts), 3)),
        _gauge("mesos_gpu_leader", "1 when this scheduler is the leader.", int(leader)),
        _gauge("mesos_gpu_mesos_connected", "1 when subscribed to the Mesos master.", int(mesos_connected)),
        _gauge("mesos_gpu_zookeeper_connected", "1 when the job store's ZooKeeper is connected.",
               int(zookeeper_connected)),
    ]
    if quarantined_skipped is not None:
        families.append(_gauge("mesos_gpu_jobs_quarantined_skipped", QUARANTINED_SKIPPED_HELP,
                               quarantined_skipped))
    if tenant_gpus is not None:
        families.append(_by_label("mesos_gpu_tenant_gpus_allocated", TENANT_GPUS_HELP, "tenant", tenant_gpus))
    if cluster is not None:
        families.append(_by_label("mesos_gpu_cluster_gpus", CLUSTER_GPUS_HELP, "state", cluster.gpus))
        families.append(_by_label("mesos_gpu_cluster_agents", CLUSTER_AGENTS_HELP, "state", cluster.agents))
    optional_counters = (
        ("mesos_gpu_offers_received_total", "Resource offers received.", offers_received),
        ("mesos_gpu_offers_declined_total", "Resource offers declined.", offers_declined),
        ("mesos_gpu_submit_batches_total",
         "Store writes that carried submitted jobs (concurrent submits share one).", submit_batches),
    )
    for name, text, value in optional_counters:
        if value is not None:
            families.append(CounterMetricFamily(name, text, value=value))
    if placement_latency is not None:
        families.append(_histogram("mesos_gpu_placement_latency_seconds", "Time to plan one offer cycle.",
                                   placement_latency))
    return families


class _Exposition(Collector):
    """What one scrape shows: the scheduler's families, then the app's registry."""

    def __init__(self, families: Sequence[Metric], stats: RequestStats | None) -> None:
        self.families = families
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        yield from self.families
        if self.stats is not None:
            yield from self.stats.registry.collect()


def render(families: Sequence[Metric], stats: RequestStats | None = None) -> str:
    """The Prometheus text (format 0.0.4) of `families` and of the app's registry in `stats`."""
    return generate_latest(_Exposition(families, stats)).decode("utf-8")
