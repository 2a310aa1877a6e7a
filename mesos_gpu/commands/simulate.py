"""`mesos-gpu simulate [fill|replay|all]`: the trace-driven simulator on the product's own placement code.

`fill` fills the cluster with tasks drawn from the trace (FGD's protocol, `sim.fill`); `replay` replays
the trace in simulated time (`sim.replay`); `tenants` replays it split among tenants, without and with
quotas (`sim.tenants`; not part of `all`). Each writes a text table, a JSON document and a PNG plot to
`--out` and prints the table (or, with `--json`, the JSON). Exit status: 0 when done, 2 for bad
arguments or unreadable trace files (one line on stderr), 130 on Ctrl-C (runs not started are cancelled,
the worker processes stopped; "interrupted" on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mesos_gpu.commands.common import positive_int
from mesos_gpu.sim.report import cpu_tasks_note

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): 128 + 2, as a shell reports it
EXPERIMENTS = ("fill", "replay", "tenants", "all")
FALLBACK_REASON = cpu_tasks_note(True)
RESTRICTED_REASON = cpu_tasks_note(False)


class UsageError(Exception):
    """Bad arguments or inputs: one line on stderr, exit status 2."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="compare placement policies on a GPU cluster trace",
        description="Replay a GPU cluster trace through mesos-gpu's own placement code with several "
        "placement policies side by side. 'fill': fill the cluster with tasks drawn from the trace (GPU "
        "unallocated and fragmented against arrived demand); 'replay': the trace in simulated time "
        "(queueing delay, job completion time, GPU allocation). Writes a table, JSON and a PNG plot.",
    )
    parser.add_argument("experiment", nargs="?", choices=EXPERIMENTS, default="all",
                        help="which experiment (default all: fill and replay)")
    parser.add_argument("--nodes", type=Path, metavar="PATH",
                        help="node list CSV (default: the openb trace's, under ../shared/traces)")
    parser.add_argument("--tasks", type=Path, metavar="PATH",
                        help="task list CSV (default: the openb trace's, under ../shared/traces)")
    parser.add_argument("--policies", metavar="A,B,...",
                        help="policies to compare (default: all; see docs/simulate.md)")
    parser.add_argument("--seeds", type=positive_int, default=5, metavar="N",
                        help="fill: seeds 0..N-1 (default 5)")
    parser.add_argument("--max-arrived", type=_percent, default=130.0, metavar="PCT",
                        help="fill: stop at this arrived GPU demand, %% of capacity (default 130)")
    parser.add_argument("--speedup", type=_number, metavar="F",
                        help="replay: submit times divided by F (default: the replay's, "
                        "see docs/simulate.md)")
    parser.add_argument("--node-sample", type=positive_int, metavar="K",
                        help="replay: every K-th node of the node list (default: 16 for the openb node "
                        "list, where on the whole cluster nothing waits at any speed-up; 1, the whole "
                        "list, for a node list given with --nodes)")
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--dense-window", dest="dense_window", action="store_true", default=True,
                        help="replay: only the trace's dense window (the default)")
    window.add_argument("--whole-trace", dest="dense_window", action="store_false",
                        help="replay: the whole trace")
    parser.add_argument("--tenant-seed", type=_seed, default=0, metavar="N",
                        help="tenants: the seed of the synthetic tenants' draw (default 0; see "
                        "docs/simulate.md)")
    parser.add_argument("--cpu-tasks-on-gpu-agents", choices=("restricted", "fallback"), default="fallback",
                        help="where CPU tasks may go (default fallback, as in the trace's own cluster)")
    parser.add_argument("--out", type=Path, default=Path("simulate-out"), metavar="DIR",
                        help="where the tables, JSON and plots go (default ./simulate-out)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout instead of the tables")
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="worker processes for the fill and the replay (default: one per CPU, "
                        "at most one per run; 1: all in this process)")
    parser.add_argument("--progress", action="store_true",
                        help="draw the progress bar even when stderr is not a terminal")
    parser.set_defaults(func=simulate)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _percent(text: str) -> float:
    value = _number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (%): {text!r}")
    return value




def simulate(args: argparse.Namespace) -> int:
    try:
        return _simulate(args)
    except UsageError as exc:
        print(f"mesos-gpu simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _simulate(args: argparse.Namespace) -> int:
    from mesos_gpu.sim import trace

    experiments = ("fill", "replay") if args.experiment == "all" else (args.experiment,)
    chosen = _policies(args.policies)
    try:
        nodes = trace.load_nodes(args.nodes or trace.default_file(trace.NODES_FILE))
        tasks = trace.load_tasks(args.tasks or trace.default_file(trace.TASKS_FILE))
    except trace.TraceError as exc:
        raise UsageError(str(exc)) from None
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {args.out}: {exc.strerror or exc}") from None
    info = sys.stderr if args.json else sys.stdout
    fallback = args.cpu_tasks_on_gpu_agents == "fallback"   # each table's header says which, and why
    documents: dict[str, Any] = {}
    for experiment in experiments:
        runner = {"fill": _run_fill, "replay": _run_replay, "tenants": _run_tenants}[experiment]
        result, plotter = runner(args, nodes, tasks, chosen, fallback)
        documents[experiment] = result.to_json()
        text = result.table()
        if not args.json:
            print(text)
        _write(args.out, experiment, (text, documents[experiment], result, plotter), info)
    if args.json:
        print(json.dumps(documents, indent=2))
    return 0


def _policies(text: str | None) -> tuple[Any, ...] | None:
    """The named cases (None: each experiment's default set)."""
    from mesos_gpu.sim.policies import BY_NAME

    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown or not names:
        raise UsageError(f"unknown policy {', '.join(unknown) or '(none given)'}: choose from "
                         f"{', '.join(BY_NAME)}")
    return tuple(BY_NAME[name] for name in dict.fromkeys(names))


def _bar(args: argparse.Namespace, label: str) -> Any:
    from mesos_gpu.sim.progress import ProgressBar

    return ProgressBar(label, enabled=True if args.progress else None)


def _run_fill(args: argparse.Namespace, nodes: Any, tasks: Any, chosen: Any,
              fallback: bool) -> tuple[Any, Callable[[Any, Path], None]]:
    from mesos_gpu.sim.fill import fill
    from mesos_gpu.sim.plot import plot_fill
    from mesos_gpu.sim.policies import CASES

    bar = _bar(args, "fill")
    try:
        result = fill(nodes, tasks, chosen or CASES, seeds=range(args.seeds),
                      max_arrived=args.max_arrived / 100, cpu_fallback=fallback, progress=bar, jobs=args.jobs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
    return result, plot_fill


def _replay_nodes(args: argparse.Namespace, nodes: Any) -> tuple[float, int, Any]:
    """A replay's speed-up, node sampling step and sampled nodes, as the options ask; UsageError when the
    sample has no GPU while the node list has."""
    from mesos_gpu.sim import replay

    speedup = args.speedup or replay.DEFAULT_SPEEDUP
    # The default sample is for the openb node list (see --help); a node list of one's own: all of it.
    every = args.node_sample or (1 if args.nodes else replay.DEFAULT_NODE_SAMPLE)
    sampled = replay.sample_nodes(nodes, every)
    if every > 1 and not _has_gpu(sampled) and _has_gpu(nodes):
        raise UsageError(f"the node sample (one in {every}) has no GPU: give a smaller --node-sample")
    return speedup, every, sampled


def _run_replay(args: argparse.Namespace, nodes: Any, tasks: Any, chosen: Any,
                fallback: bool) -> tuple[Any, Callable[[Any, Path], None]]:
    from mesos_gpu.sim import replay
    from mesos_gpu.sim.policies import CASES, FIFO_FIRST_FIT

    speedup, every, sampled = _replay_nodes(args, nodes)
    print(f"replay: {len(sampled)} of {len(nodes)} nodes (one in {every}), submit times sped up "
          f"{speedup:g}x", file=sys.stderr if args.json else sys.stdout)
    bar = _bar(args, "replay")
    try:
        result = replay.replay(sampled, tasks, chosen or (*CASES, FIFO_FIRST_FIT), speedup=speedup,
                               dense_window=args.dense_window, cpu_fallback=fallback, seed=0, progress=bar,
                               workers=args.jobs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
    return result, replay.plot_replay


def _run_tenants(args: argparse.Namespace, nodes: Any, tasks: Any, chosen: Any,
                 fallback: bool) -> tuple[Any, Callable[[Any, Path], None]]:
    from mesos_gpu.sim import tenants
    from mesos_gpu.sim.policies import BY_NAME

    if chosen is not None and len(chosen) > 1:
        raise UsageError("the tenants replay runs one policy: give one with --policies")
    case = chosen[0] if chosen else BY_NAME["default"]
    speedup, every, sampled = _replay_nodes(args, nodes)
    print(f"tenants: {len(sampled)} of {len(nodes)} nodes (one in {every}), submit times sped up "
          f"{speedup:g}x, policy {case.name}, tenant seed {args.tenant_seed}",
          file=sys.stderr if args.json else sys.stdout)
    bar = _bar(args, "tenants")
    try:
        result = tenants.replay_tenants(sampled, tasks, case, speedup=speedup, dense_window=args.dense_window,
                                        cpu_fallback=fallback, seed=args.tenant_seed, progress=bar,
                                        workers=args.jobs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
    return result, tenants.plot_tenants


def _has_gpu(nodes: Any) -> bool:
    return any((node.total or node.available).gpus for node in nodes)


def _write(out: Path, name: str, written_out: tuple[str, dict[str, Any], Any, Callable[[Any, Path], None]],
           info: Any) -> None:
    """One experiment's (table, JSON document, result, plot function) as files under `out`; their paths
    printed to `info`."""
    text, document, result, plotter = written_out
    table, data, image = out / f"{name}.txt", out / f"{name}.json", out / f"{name}.png"
    try:
        table.write_text(text + "\n")
        data.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write under {out}: {exc.strerror or exc}") from None
    written = [table, data]
    try:
        plotter(result, image)
        written.append(image)
    except ImportError:
        print(f"{name}: plot skipped: matplotlib is not installed (pip install 'mesos-gpu[sim]')", file=info)
    print(f"{name}: wrote {', '.join(str(path) for path in written)}", file=info)
