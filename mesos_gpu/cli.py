"""The `mesos-gpu` command: one entry point whose subcommands live beside the code they drive.

Each module named in `SUBCOMMANDS` exposes `register(subparsers)`, which adds its subcommand(s) and
sets `func` (taking the parsed namespace, returning an exit code) as the parser default. Modules keep
heavy imports (pymesos, kazoo, tornado) inside their functions so `--help` stays fast.

`--api URL` and `--token TOKEN` are accepted before the subcommand too (`mesos-gpu --api URL jobs`, as
the DC/OS package's notes and kubectl habits have it); given after it, the subcommand's own wins.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from mesos_gpu import __version__
from mesos_gpu.client import DEFAULT_API, ENV_API, ENV_TOKEN

# Subcommand modules, in the order they appear in `--help`.
SUBCOMMANDS: tuple[str, ...] = (
    "mesos_gpu.commands.submit",
    "mesos_gpu.commands.jobs",
    "mesos_gpu.commands.logs",
    "mesos_gpu.commands.wait",
    "mesos_gpu.commands.run",
    "mesos_gpu.commands.cluster",
    "mesos_gpu.commands.tenants",
    "mesos_gpu.scheduler_main",
    "mesos_gpu.local.cli",
    "mesos_gpu.commands.local",  # extends `local` (after mesos_gpu.local.cli): the all-in-one
    "mesos_gpu.demo",
    "mesos_gpu.commands.simulate",
    "mesos_gpu.commands.completion",
)


# Commands that only talk to the API, and `simulate` (no driver): they keep the SIGINT disposition the
# process started with, not the handler pymesos installs when the scheduler's modules are imported (which,
# with SIGINT ignored, as in a background job, raised "TypeError: 'Handlers' object is not callable").
CLIENT_MODULES = frozenset(
    f"mesos_gpu.commands.{name}" for name in ("submit", "jobs", "logs", "wait", "run", "cluster", "tenants",
                                             "simulate")
)


# The API commands' options that the top-level parser takes too: dest -> the top-level option's dest.
GLOBAL_CLIENT_OPTIONS = {"api": "global_api", "token": "global_token"}


class _Unset:
    """A subcommand's `--api`/`--token` default while parsing: not given after the subcommand, so the
    top-level option (when given) or this original default fills it in."""

    def __init__(self, default: Any) -> None:
        self.default = default

    def __repr__(self) -> str:
        return f"<unset, default {self.default!r}>"


class _TopLevelParser(argparse.ArgumentParser):
    """`mesos-gpu`'s parser: after parsing, the top-level `--api`/`--token` reach the subcommand."""

    api_commands: tuple[str, ...] = ()  # the subcommands that take them (set by `build_parser`)

    def parse_known_args(  # type: ignore[override]  # typeshed's overloads; same signature at run time
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        for dest, global_dest in GLOBAL_CLIENT_OPTIONS.items():
            given = getattr(parsed, global_dest, None)
            if hasattr(parsed, global_dest):
                delattr(parsed, global_dest)
            value = getattr(parsed, dest, None)
            if isinstance(value, _Unset):
                setattr(parsed, dest, value.default if given is None else given)
            elif given is not None and not hasattr(parsed, dest) and getattr(parsed, "func", None):
                self.error(f"--{dest} is an option of the API commands ({', '.join(self.api_commands)}), "
                           "not of this one")
        return parsed, extras


def _client_option_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every subcommand's (and sub-subcommand's) `--api`/`--token` option."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield from _client_option_actions(subparser)
        elif action.dest in GLOBAL_CLIENT_OPTIONS and f"--{action.dest}" in action.option_strings:
            yield action


def build_parser() -> argparse.ArgumentParser:
    parser = _TopLevelParser(
        prog="mesos-gpu",
        description="Run GPU TensorFlow jobs on Apache Mesos: submit, watch and manage jobs, "
        "run the scheduler, or try everything on one machine with the embedded local cluster.",
    )
    parser.add_argument("--version", action="version", version=f"mesos-gpu {__version__}")
    parser.add_argument(
        "--api", dest="global_api", metavar="URL",
        help=f"the mesos-gpu API for the API commands; also accepted after the command, where it wins "
        f"(default: ${ENV_API} or {DEFAULT_API})",
    )
    parser.add_argument(
        "--token", dest="global_token", metavar="TOKEN",
        help=f"bearer token for the API; also accepted after the command (default: ${ENV_TOKEN})",
    )
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", parser_class=argparse.ArgumentParser
    )
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(subparsers)
    for action in _client_option_actions(parser):
        if not isinstance(action.default, _Unset):  # shared by several subcommands (one parent parser)
            action.default = _Unset(action.default)
    parser.api_commands = tuple(
        name for name, sub in subparsers.choices.items() if any(_client_option_actions(sub))
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    started_with = signal.getsignal(signal.SIGINT)
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    if getattr(args, "wants_parser", False):  # `completion` writes its script from the whole tree
        args.parser = parser
    if getattr(func, "__module__", None) in CLIENT_MODULES and started_with is not None:
        signal.signal(signal.SIGINT, started_with)
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
