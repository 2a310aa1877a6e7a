"""Scheduling quality on the real Alibaba openb GPU trace (issue 13): the policies side by side.

Runs `mesos-gpu simulate`'s two experiments through the product's own placement code:

* **fill the cluster** (FGD's protocol: tasks drawn with replacement, one placement cycle, no
  departures, up to 130 % arrived GPU demand) with every policy of `sim.policies.CASES` and 5 seeds;
* **replay in time** (the trace's submit times sped up, durations unchanged, through the state machine),
  on every 16th node (on the whole cluster nothing waits): the default and strict FIFO first fit, the
  two the check compares (each case replays the whole dense window, minutes apiece;
  `--replay-policies all` runs every policy, as `mesos-gpu simulate replay` does).

Prints both tables, then the issue's checks as "figure / target / ratio" lines: the default's median
unallocated GPU at 100 % arrived no worse than FGD's and below every simple heuristic's; the replay's
mean queueing delay of the default at least 2x better than FIFO first fit's, with the starvation guard
honoured; the whole fill run under 10 minutes (its wall time, on this machine's cores). A missed target
is printed as missed; the exit status is 0 unless the inputs are missing (2).
Run: `python benchmarks/quality.py [--traces PATH] [--seeds N] [--jobs N] [--out DIR] [--no-replay]
[--replay-policies all|A,B,...] [--node-sample K] [--speedup F]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mesos_gpu import gcpolicy  # noqa: E402
from mesos_gpu.sim import report, trace  # noqa: E402
from mesos_gpu.sim.fill import FillResult, fill  # noqa: E402
from mesos_gpu.sim.policies import BY_NAME, CASES, FIFO_FIRST_FIT, PolicyCase  # noqa: E402

FILL_LIMIT_SECONDS = 600.0
DELAY_FACTOR = 2.0


def check(figure: str, value: float, target: str, ratio: float | None, met: bool) -> None:
    """One "figure / target / ratio" line (ratio >= 1 meets the target)."""
    shown = "-" if ratio is None else f"{ratio:.3f}"
    print(f"{figure}: {value:,.3f}   target {target}   ratio {shown}   {'met' if met else 'MISSED'}")


def fill_checks(result: FillResult) -> None:
    rows = {row.policy: row for row in report.summaries(result)}
    default, fgd = rows.get("default"), rows.get("fgd")
    pct = result.headline_pct
    if default is None:
        print("fill: the default policy did not run: no check")
        return
    if fgd is not None:
        check(f"fill: default's median unallocated GPU at {pct} % arrived (%), vs FGD's "
              f"{fgd.unallocated:.3f}", default.unallocated, f"<= {fgd.unallocated:.3f}",
              _at_most(default.unallocated, fgd.unallocated), default.unallocated <= fgd.unallocated)
    for name in report.SIMPLE:
        other = rows.get(name)
        if other is None:
            continue
        check(f"fill: default's median unallocated vs {name}'s {other.unallocated:.3f}", default.unallocated,
              f"< {other.unallocated:.3f}", _at_most(default.unallocated, other.unallocated),
              default.unallocated < other.unallocated)


def _at_most(value: float, limit: float) -> float | None:
    """The ratio of a "value at most limit" target: limit / value (>= 1 meets it)."""
    if value <= 0:
        return None if limit <= 0 else float("inf")
    return limit / value


def replay_checks(document: dict[str, Any]) -> None:
    cases = {case.get("name"): case for case in document.get("cases", [])}
    default, fifo = cases.get("default"), cases.get(FIFO_FIRST_FIT.name)
    if default is None or fifo is None:
        print("replay: the default or fifo-first-fit did not run: no check")
        return
    mine, theirs = float(default["delay_mean"]), float(fifo["delay_mean"])
    factor = theirs / mine if mine > 0 else (float("inf") if theirs > 0 else None)
    check(f"replay: default's mean queueing delay (s), vs fifo-first-fit's {theirs:,.3f}", mine,
          f"<= {theirs / DELAY_FACTOR:,.3f} ({DELAY_FACTOR:g}x better)",
          None if factor is None else factor / DELAY_FACTOR, factor is not None and factor >= DELAY_FACTOR)
    violations = int(default.get("violations", 0))
    print(f"replay: starvation guard (default): {violations} launch(es) of later jobs on agents held for a "
          f"waiting one; {default.get('waited_past_reserve', '?')} job(s) waited past the reservation limit, "
          f"{default.get('held_for', '?')} had agents held   {'met' if violations == 0 else 'MISSED'}")


def replay_cases(text: str) -> tuple[PolicyCase, ...]:
    if text == "all":
        return (*CASES, FIFO_FIRST_FIT)
    return tuple(BY_NAME[name.strip()] for name in text.split(",") if name.strip())


def run_replay(nodes: list[Any], tasks: list[Any], cases: tuple[PolicyCase, ...], speedup: float | None,
               out: Path | None, *, every: int, workers: int | None = None) -> None:
    from mesos_gpu.sim import replay

    chosen = speedup or replay.DEFAULT_SPEEDUP
    sampled = replay.sample_nodes(nodes, every)
    started = time.perf_counter()
    result = replay.replay(sampled, tasks, cases, speedup=chosen, dense_window=True, cpu_fallback=True,
                           seed=0, workers=workers)
    seconds = time.perf_counter() - started
    print(result.table())
    print(f"replay: {len(sampled)} of {len(nodes)} nodes (one in {every}), speedup {chosen:g}, dense window, "
          f"wall time {seconds:.1f} s")
    if out is not None:
        replay.plot_replay(result, out / "replay.png")
    replay_checks(result.to_json())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=trace.DEFAULT_TRACES,
                        help="folder with the trace CSVs")
    parser.add_argument("--seeds", type=int, default=5, help="fill: seeds 0..N-1 (default 5)")
    parser.add_argument("--jobs", type=int,
                        help="worker processes of the fill and the replay (default: one per CPU)")
    parser.add_argument("--speedup", type=float, help="replay: submit times divided by this (default: "
                        "the replay's own default)")
    parser.add_argument("--node-sample", type=int, metavar="K", help="replay: every K-th node (default: the "
                        "replay's own, 16; on the whole openb cluster nothing waits)")
    parser.add_argument("--no-replay", action="store_true", help="the fill experiment only")
    parser.add_argument("--replay-policies", default=f"default,{FIFO_FIRST_FIT.name}", metavar="all|A,B,...",
                        help="replay: the policies (default: default and fifo-first-fit)")
    parser.add_argument("--out", type=Path, help="also write the plots (fill.png, replay.png) here")
    args = parser.parse_args(argv)
    try:
        cases = replay_cases(args.replay_policies)
    except KeyError as exc:
        parser.error(f"unknown policy {exc}: choose from {', '.join(BY_NAME)} or all")
    nodes_file, tasks_file = args.traces / trace.NODES_FILE, args.traces / trace.TASKS_FILE
    if not nodes_file.exists() or not tasks_file.exists():
        print(f"trace files not found under {args.traces} (use --traces PATH)", file=sys.stderr)
        return 2
    gcpolicy.configure()
    nodes, tasks = trace.load_nodes(nodes_file), trace.load_tasks(tasks_file)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    result = fill(nodes, tasks, CASES, seeds=range(args.seeds), max_arrived=1.3, cpu_fallback=True,
                  jobs=args.jobs)
    print(result.table())
    if args.out is not None:
        from mesos_gpu.sim.plot import plot_fill

        plot_fill(result, args.out / "fill.png")
    fill_checks(result)
    check(f"fill: wall time of all {len(CASES)} policies x {args.seeds} seeds (s), {result.workers} "
          f"worker(s) on {os.cpu_count()} CPU(s)", result.wall_seconds, f"< {FILL_LIMIT_SECONDS:.0f}",
          FILL_LIMIT_SECONDS / result.wall_seconds if result.wall_seconds > 0 else None,
          result.wall_seconds < FILL_LIMIT_SECONDS)
    if not args.no_replay:
        from mesos_gpu.sim.replay import DEFAULT_NODE_SAMPLE

        run_replay(nodes, tasks, cases, args.speedup, args.out, every=args.node_sample or DEFAULT_NODE_SAMPLE,
                   workers=args.jobs)
    print("ratio = how far the figure is on the right side of its target: >= 1 meets it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
