"""The fill experiment's report: per-policy summaries at the headline point (100 % arrived), the text
table with ratios against FGD and against the best simple heuristic, and the JSON document."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from mesos_gpu.sim.fill import FillResult

#: The simple heuristics (what FGD's paper compares against, with FGD itself and our default apart).
SIMPLE = ("random", "first-fit", "best-fit", "worst-fit", "tetris", "gpu-packing")


def cpu_tasks_note(fallback: bool) -> str:
    """Where CPU tasks may go in the run, and why (each experiment's table says it once, in its header)."""
    if fallback:
        return ("CPU tasks on GPU agents: fallback (a CPU task may use a GPU agent when no CPU agent fits), "
                "because the trace's production cluster let CPU pods run on GPU nodes")
    return ("CPU tasks on GPU agents: restricted (GPU agents kept for GPU work, the product's default; the "
            "trace's production cluster let CPU pods use GPU nodes)")


class Summary(NamedTuple):
    """One policy at the headline point, over the seeds: unallocated % (median, min, max), fragmented %
    (median), tasks failed (median), seconds per run (median)."""

    policy: str
    unallocated: float
    unallocated_min: float
    unallocated_max: float
    fragmented: float
    failed: float
    seconds: float


def summaries(result: FillResult) -> list[Summary]:
    """One `Summary` per policy, in the result's order."""
    pct = result.headline_pct
    rows = []
    for case in result.cases:
        samples = [run.at(pct) for run in result.runs[case.name]]
        unallocated = [sample.unallocated_pct for sample in samples]
        rows.append(Summary(
            case.name, statistics.median(unallocated), min(unallocated), max(unallocated),
            statistics.median(sample.fragmented_pct for sample in samples),
            statistics.median(sample.failed for sample in samples),
            statistics.median(run.seconds for run in result.runs[case.name])))
    return rows


def best_simple(rows: Sequence[Summary]) -> Summary | None:
    """The simple heuristic with the least median unallocated GPU (None when none ran)."""
    simple = [row for row in rows if row.policy in SIMPLE]
    return min(simple, key=lambda row: row.unallocated) if simple else None


def _ratio(value: float, against: Summary | None) -> float | None:
    if against is None or against.unallocated <= 0:
        return None
    return value / against.unallocated


def _cell(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}"


def fill_table(result: FillResult) -> str:
    """The text table: one row per policy, then how to read it."""
    rows = summaries(result)
    fgd = next((row for row in rows if row.policy == "fgd"), None)
    best = best_simple(rows)
    pct = result.headline_pct
    headers = ("policy", f"unalloc@{pct}% med", "min-max", f"frag@{pct}% med", "failed", "s/run",
               "vs fgd", "vs best simple")
    cells = [headers]
    for row in rows:
        cells.append((
            row.policy, f"{row.unallocated:.2f} %", f"{row.unallocated_min:.2f}-{row.unallocated_max:.2f}",
            f"{row.fragmented:.2f} %", f"{row.failed:g}", f"{row.seconds:.1f}",
            _cell(_ratio(row.unallocated, fgd)), _cell(_ratio(row.unallocated, best))))
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    lines = [
        f"Fill the cluster: {result.nodes:,} nodes ({result.capacity_gpus:,.0f} GPUs), tasks drawn with "
        f"replacement from {result.tasks:,} trace rows ({result.shapes} task shapes), seeds "
        f"{_seeds(result.seeds)}, up to {result.max_arrived_pct} % arrived GPU demand. "
        f"{cpu_tasks_note(result.cpu_fallback)}.",
        "",
    ]
    for line in cells:
        lines.append("  ".join(cell.rjust(widths[i]) if i else cell.ljust(widths[i])
                               for i, cell in enumerate(line)).rstrip())
    lines.append("")
    lines.append(f"unalloc: GPU capacity not taken by placed tasks, at {pct} % arrived demand, % of capacity "
                 f"(median and min-max over {len(result.seeds)} seed(s)); frag: the free GPU "
                 "that FGD's measure finds unusable by the trace's task shapes (expected over their "
                 "popularity), % of capacity, median; failed: tasks drawn that "
                 "did not fit by then (median); s/run: seconds per seed (median).")
    best_name = best.policy if best is not None else "none ran"
    lines.append(f"vs fgd / vs best simple ({best_name}): median unallocated divided by theirs "
                 "(below 1: fewer GPUs unallocated).")
    share = _fragmentation_share(result)
    lines.append(f"wall time {result.wall_seconds:.1f} s with {result.workers} worker process(es); "
                 f"measuring fragmentation took {share:.0%} of the runs' time.")
    return "\n".join(lines)


def _seeds(seeds: Sequence[int]) -> str:
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]}"
    return ",".join(str(seed) for seed in seeds)


def _fragmentation_share(result: FillResult) -> float:
    runs = [run for runs in result.runs.values() for run in runs]
    total = sum(run.seconds for run in runs)
    return sum(run.fragmentation_seconds for run in runs) / total if total > 0 else 0.0


def _round(value: float) -> float:
    """Samples in the JSON: 4 decimals of a percent (0.0001 % of 6,212 GPUs is 6 thousandths of one)."""
    return round(value, 4) if isinstance(value, float) else value


def fill_json(result: FillResult) -> dict[str, Any]:
    """Everything as plain JSON types: the set-up, each policy's summary and its runs' samples."""
    rows = {row.policy: row for row in summaries(result)}
    fgd = rows.get("fgd")
    best = best_simple(list(rows.values()))
    policies = []
    for case in result.cases:
        row = rows[case.name]
        policies.append({
            "name": case.name, "strategy": case.strategy, "description": case.description,
            "summary": {
                "unallocated_pct_median": row.unallocated, "unallocated_pct_min": row.unallocated_min,
                "unallocated_pct_max": row.unallocated_max, "fragmented_pct_median": row.fragmented,
                "failed_median": row.failed, "seconds_median": row.seconds,
                "ratio_vs_fgd": _ratio(row.unallocated, fgd),
                "ratio_vs_best_simple": _ratio(row.unallocated, best),
            },
            "runs": [{
                "seed": run.seed, "seconds": run.seconds, "fragmentation_seconds": run.fragmentation_seconds,
                "samples": {name: [_round(getattr(sample, name)) for sample in run.samples]
                            for name in ("arrived_pct", "unallocated_pct", "fragmented_pct", "arrived",
                                         "placed", "failed")},
            } for run in result.runs[case.name]],
        })
    return {
        "experiment": "fill", "nodes": result.nodes, "capacity_gpus": result.capacity_gpus,
        "trace_tasks": result.tasks, "task_shapes": result.shapes, "seeds": list(result.seeds),
        "max_arrived_pct": result.max_arrived_pct, "headline_pct": result.headline_pct,
        "cpu_tasks_on_gpu_agents": "fallback" if result.cpu_fallback else "restricted",
        "best_simple": best.policy if best is not None else None,
        "wall_seconds": result.wall_seconds, "workers": result.workers,
        "fragmentation_share": _fragmentation_share(result), "policies": policies,
    }
