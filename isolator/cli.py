"""The `mesos-gpu-agent` command: GPU agent set-up (`config`) and checks (`doctor`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from isolator import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesos-gpu-agent",
        description="Set up and check a Mesos GPU agent for mesos-gpu.",
    )
    parser.add_argument("--version", action="version", version=f"mesos-gpu-agent {__version__}")
    parser.add_subparsers(title="commands", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    return int(func(args))


if __name__ == "__main__":
    sys.exit(main())
