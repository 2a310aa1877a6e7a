"""The `mesos-gpu` command: one entry point whose subcommands live beside the code they drive.

Each module named in `SUBCOMMANDS` exposes `register(subparsers)`, which adds its subcommand(s) and
sets `func` (taking the parsed namespace, returning an exit code) as the parser default. Modules keep
heavy imports (pymesos, kazoo, tornado) inside their functions so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from mesos_gpu import __version__

# Subcommand modules, in the order they appear in `--help`.
SUBCOMMANDS: tuple[str, ...] = (
    "mesos_gpu.commands.submit",
    "mesos_gpu.commands.jobs",
    "mesos_gpu.commands.logs",
    "mesos_gpu.commands.run",
    "mesos_gpu.commands.cluster",
    "mesos_gpu.commands.simulate",
    "mesos_gpu.scheduler_main",
    "mesos_gpu.local.cli",
    "mesos_gpu.commands.local",  # extends `local` (after mesos_gpu.local.cli): the all-in-one
    "mesos_gpu.demo",
)


# Commands that only talk to the API: they keep the SIGINT disposition the process started with, not the
# handler pymesos installs when the scheduler's modules are imported (which, with SIGINT ignored, as in a
# background job, raised "TypeError: 'Handlers' object is not callable" on SIGINT).
CLIENT_MODULES = frozenset(
    f"mesos_gpu.commands.{name}" for name in ("submit", "jobs", "logs", "run", "cluster")
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesos-gpu",
        description="Run GPU TensorFlow jobs on Apache Mesos: submit, watch and manage jobs, "
        "run the scheduler, or try everything on one machine with the embedded local cluster.",
    )
    parser.add_argument("--version", action="version", version=f"mesos-gpu {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    started_with = signal.getsignal(signal.SIGINT)
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    if getattr(func, "__module__", None) in CLIENT_MODULES and started_with is not None:
        signal.signal(signal.SIGINT, started_with)
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
