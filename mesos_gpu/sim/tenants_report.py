"""The multi-tenant replay's text table and PNG plot (`sim.tenants`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mesos_gpu.sim.tenants import TenantsResult


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.0f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def tenants_table(result: TenantsResult) -> str:
    """One row per (run, tenant), then how the tenants were drawn and what the quotas are."""
    drawn = ("synthetic (the trace names none): drawn with seed "
             f"{result.seed}, see docs/simulate.md" if result.synthetic else "the trace's user_or_group")
    lines = [
        f"Multi-tenant replay: policy {result.policy}, {result.nodes} nodes ({result.capacity_gpus:g} GPUs), "
        f"{result.jobs} jobs, arrivals {result.speedup:g}x; tenants {drawn}",
        f"{'run':<16} {'tenant':<11} {'quota':>6} {'jobs':>6} {'placed':>7} {'never':>6} "
        f"{'delay p50':>10} {'delay p99':>10} {'mean delay':>11} {'GPU share':>10}",
    ]
    for run, tenants in result.runs.items():
        for name, fig in tenants.items():
            quota = "-" if fig.quota_gpus is None else f"{fig.quota_gpus:g}"
            lines.append(
                f"{run:<16} {name:<11} {quota:>6} {fig.jobs:>6} {fig.placed:>7} {fig.never_placed:>6} "
                f"{_seconds(fig.delay_p50):>10} {_seconds(fig.delay_p99):>10} {_seconds(fig.delay_mean):>11} "
                f"{fig.share_mean_pct:>9.1f}%")
    quotas = result.quotas
    terms = ", ".join(f"{name} {doc['quota']:g}" for name, doc in quotas["tenants"].items())
    lines += [
        f"With quotas: guarantees {terms} GPUs (may borrow idle guarantees); others (interns) no guarantee, "
        f"limit {quotas['default']['limit']:g}; unassigned {quotas['unassigned_gpus']:g}.",
        "Delays: launch - submit (simulated), of the placed jobs; GPU share: time-weighted mean % of the "
        "cluster's GPUs the tenant's running jobs held while jobs arrived. 'never': not placed by the end.",
        "Run time: " + ", ".join(f"{run} {seconds:.0f} s" for run, seconds in result.seconds.items()),
    ]
    return "\n".join(lines)


def plot(result: TenantsResult, path: Path) -> None:
    """Each tenant's GPU share over time, stacked, without quotas (left) and with quotas (right), and
    each tenant's mean queueing delay in both runs (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(result.runs.items())
    figure, axes = plt.subplots(1, len(runs) + 1, figsize=(18, 5.5))
    names = sorted({name for _, tenants in runs for name in tenants})
    for axis, (run, tenants) in zip(axes, runs, strict=False):
        hours = [t / 3600 for t, _ in next(iter(tenants.values())).share] if tenants else []
        stacks = [[p for _, p in tenants[name].share] if name in tenants else [0.0] * len(hours)
                  for name in names]
        if hours:
            axis.stackplot(hours, *stacks, labels=names, alpha=0.85)
        axis.set_title(f"GPU share by tenant, {run}")
        axis.set_xlabel("simulated time (hours)")
        axis.set_ylabel("GPUs held (% of cluster GPUs)")
        axis.set_ylim(0, 100)
        axis.legend(fontsize="small", loc="upper right")
    bars = axes[-1]
    width = 0.8 / max(len(runs), 1)
    for number, (run, tenants) in enumerate(runs):
        values = [tenants[name].delay_mean / 60 if name in tenants else 0.0 for name in names]
        bars.bar([i + number * width for i in range(len(names))], values, width, label=run)
    bars.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(names))], names)
    bars.set_ylabel("mean queueing delay (simulated minutes)")
    bars.set_title(f"Mean queueing delay by tenant ({result.speedup:g}x arrivals)")
    bars.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
