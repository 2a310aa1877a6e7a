"""The fill experiment's plot (PNG, matplotlib's Agg backend, imported only when a plot is drawn): GPU
unallocated against arrived GPU demand per policy (median line, min-max band over the seeds), the same
zoomed on the saturated end, and the fragmented GPU."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesos_gpu.sim.fill import FillResult

ZOOM_FROM = 90  # % arrived where the zoomed panel starts (the policies part near saturation)


def _bands(result: FillResult, name: str, attribute: str) -> tuple[list[int], list[float], list[float],
                                                                    list[float]]:
    """x (% arrived), median, min and max over the seeds of one sampled figure."""
    runs = result.runs[name]
    xs = [sample.arrived_pct for sample in runs[0].samples]
    columns = [[getattr(run.samples[i], attribute) for run in runs] for i in range(len(xs))]
    return (xs, [statistics.median(column) for column in columns], [min(column) for column in columns],
            [max(column) for column in columns])


def plot_fill(result: FillResult, path: Path) -> None:
    """Write the fill experiment's PNG to `path`."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 3, figsize=(18, 5.8))
    colours = pyplot.get_cmap("tab10")
    zoom = min(ZOOM_FROM, max(0, result.headline_pct - 10))
    panels = (
        (axes[0], "unallocated_pct", "GPU unallocated", 0),
        (axes[1], "unallocated_pct", f"GPU unallocated, from {zoom} % arrived", zoom),
        (axes[2], "fragmented_pct", "GPU fragmented (FGD's measure)", 0),
    )
    for axis, attribute, title, start in panels:
        for index, case in enumerate(result.cases):
            xs, median, low, high = _bands(result, case.name, attribute)
            keep = [i for i, x in enumerate(xs) if x >= start]
            mine = case.name == "default"     # the product's own: black and thicker
            style = {"color": "black" if mine else colours(index % 10), "linewidth": 2.4 if mine else 1.4}
            axis.plot([xs[i] for i in keep], [median[i] for i in keep], label=case.name, **style)
            axis.fill_between([xs[i] for i in keep], [low[i] for i in keep], [high[i] for i in keep],
                              color=style["color"], alpha=0.15, linewidth=0)
        _mark_full(axis, result.headline_pct)
        axis.set_title(title)
        axis.set_xlabel("arrived GPU demand (% of cluster GPU capacity)")
        axis.set_ylabel(f"{title.split(',')[0].split(' (')[0]} (% of cluster GPU capacity)")
        axis.grid(True, alpha=0.3)
    axes[1].set_xlim(left=zoom)
    _zoom_y(axes[1], result, zoom)
    # Lower left: below the falling curves, clear of the "100 % arrived" label at the top right.
    axes[0].legend(title="policy (median; band: min-max)", loc="lower left", fontsize="small")
    figure.suptitle(_title(result))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def _mark_full(axis: Any, pct: int) -> None:
    axis.axvline(pct, color="black", linestyle="--", linewidth=1)
    axis.annotate(f"{pct} % arrived", xy=(pct, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                  textcoords="offset points", fontsize="small")


def _zoom_y(axis: Any, result: FillResult, start: int) -> None:
    """The zoomed panel's y range: from the least unallocated GPU of any run to 1.5 times the most at the
    headline point (the descent before saturation leaves the top of the panel)."""
    pct = result.headline_pct
    runs = [run for runs in result.runs.values() for run in runs]
    low = min(sample.unallocated_pct for run in runs for sample in run.samples if sample.arrived_pct >= start)
    high = max(run.at(pct).unallocated_pct for run in runs)
    margin = max((high - low) * 0.1, 0.2)
    axis.set_ylim(max(low - margin, 0), high * 1.5 + margin)


def _title(result: FillResult) -> str:
    fallback = "fallback" if result.cpu_fallback else "restricted"
    return (f"Fill the cluster: {result.nodes:,} nodes, {result.capacity_gpus:,.0f} GPUs, "
            f"{len(result.seeds)} seed(s), tasks drawn with replacement "
            f"(CPU tasks on GPU agents: {fallback})")
