"""The replay in time's report: the text table (one row per case) and the PNG plot (matplotlib Agg,
imported only when a plot is drawn)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mesos_gpu.sim.report import cpu_tasks_note

if TYPE_CHECKING:
    from mesos_gpu.sim.replay import ReplayResult


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


def replay_table(result: ReplayResult) -> str:
    """One row per case, then what was replayed and how to read it."""
    headers = ("policy", "delay p50", "delay p99", "delay mean", "mean JCT", "GPU alloc mean", "placed",
               "failed", "never placed", "guard: violations",
               "waited > limit (held)", "longest wait", "wall s", "cpu s")
    cells = [headers]
    for case in result.cases:
        cells.append((
            case.name, _seconds(case.delay_p50), _seconds(case.delay_p99), _seconds(case.delay_mean),
            _seconds(case.jct_mean), f"{case.allocation_mean_pct:.2f} %", f"{case.placed:,}",
            f"{case.failed:,}", f"{case.never_placed:,}",
            f"{case.violations}", f"{case.waited_past_reserve:,} ({case.held_for:,})",
            _seconds(case.longest_wait), f"{case.seconds:.1f}",
            f"{case.cpu_seconds:.1f}"))
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    left_out = ", ".join(f"{count:,} {why}" for why, count in result.left_out.items() if count)
    lines = [
        f"Replay in time: {result.jobs:,} jobs on {result.nodes:,} nodes ({result.capacity_gpus:,.0f} GPUs), "
        f"arrivals sped up {result.speedup:g}x"
        f"{', dense window only' if result.dense_window else ''}; left out: {left_out or 'none'}; seed "
        f"{result.seed}. {cpu_tasks_note(result.cpu_fallback)}.",
        "",
        *("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in cells),
        "",
        "Times are simulated seconds (submit times divided by the speed-up, durations unchanged). delay = "
        "launch - submit of the jobs placed; JCT = finish - submit; GPU alloc = GPU demand of the running "
        "tasks as % of the cluster's GPUs, time-weighted over the arrivals.",
        f"Starvation guard: violations = launches of jobs submitted later on agents held for a job waiting "
        f"past reserve_after_seconds ({result.reserve_after_seconds:g} s; must be 0); waited > limit = jobs "
        "that waited longer than that (how many had agents held for them); longest wait = of any job that "
        "fits the empty cluster (a job still waiting at the end counts until the end, "
        f"{_seconds(result.horizon_seconds)} after the last submission at most).",
    ]
    if not result.tenants_named:
        lines.append("Per tenant: the trace names no tenant (its user_or_group column is empty).")
    else:
        for case in result.cases:
            for tenant, figures in case.tenants.items():
                lines.append(f"  {case.name} / {tenant}: {figures['placed']:.0f} of {figures['jobs']:.0f} "
                             f"placed, delay p50 {_seconds(figures['delay_p50'])}, p99 "
                             f"{_seconds(figures['delay_p99'])}, mean {_seconds(figures['delay_mean'])}")
    return "\n".join(lines)


def common_span(result: ReplayResult) -> list[list[tuple[float, float]]]:
    """Each case's allocation curve over the same span, so the cases compare: one that ends before the
    latest end keeps its last level up to it."""
    end = max((curve[-1][0] for curve in (case.allocation for case in result.cases) if curve), default=0.0)
    curves = []
    for case in result.cases:
        curve = list(case.allocation)
        if curve and curve[-1][0] < end:
            curve.append((end, curve[-1][1]))
        curves.append(curve)
    return curves


def plot(result: ReplayResult, path: Path) -> None:
    """GPU allocation over simulated time per case (left) and the queueing delay CDF per case (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for case, curve in zip(result.cases, common_span(result), strict=True):
        hours = [t / 3600 for t, _ in curve]
        left.plot(hours, [p for _, p in curve], label=case.name, linewidth=1.2)
        if case.delays:     # a sample of the placed jobs' delays; jobs never placed keep the curve low
            n, placed = len(case.delays), 100.0 * case.placed / max(case.jobs, 1)
            shown = [max(d, 0.1) for d in case.delays]
            right.step(shown, [placed * (i + 1) / n for i in range(n)], where="post", label=case.name)
    left.set_title(f"GPU allocation over time ({result.speedup:g}x arrivals)")
    left.set_xlabel("simulated time (hours)")
    left.set_ylabel("allocated GPU (% of cluster GPUs)")
    left.set_ylim(0, 100)
    left.legend(fontsize="small")
    right.set_title("Queueing delay distribution (all jobs; those never placed stay below 100 %)")
    right.set_xscale("log")
    right.set_xlabel("queueing delay (simulated seconds, log scale; < 0.1 s shown at 0.1 s)")
    right.set_ylabel("jobs launched within the delay (% of all jobs)")
    right.set_ylim(0, 100)
    right.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
