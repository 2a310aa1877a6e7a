"""The `mesos-gpu-agent` command: GPU agent set-up (`config`) and checks (`doctor`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import cast

from isolator import __version__
from isolator.agentconfig import agent_config, flags_from_env, parse_flags, render
from isolator.discovery import NvmlBackend, NvmlError, discover
from isolator.docker import engine_status
from isolator.doctor import HostPaths, failed, run_doctor, table
from isolator.fakenvml import FakeSpecError, parse_fake_spec
from isolator.nvml import real_backend
from isolator.sharenvml import ShareNvml, sharing_facts


def _backend(args: argparse.Namespace) -> NvmlBackend:
    if args.fake_gpus is not None:
        return parse_fake_spec(args.fake_gpus)
    return real_backend()


def _add_fake(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fake-gpus",
        metavar="SPEC",
        help="use simulated GPUs instead of NVML, e.g. '8xA100-SXM4-80GB;nvlink=pairs' or '2xT4;ecc=1:3'",
    )


def cmd_config(args: argparse.Namespace) -> int:
    try:
        backend = _backend(args)
        host = discover(backend)
        sharing = sharing_facts(cast(ShareNvml, backend))
    except FakeSpecError as exc:
        print(f"mesos-gpu-agent: {exc}", file=sys.stderr)
        return 2
    except NvmlError as exc:
        print(f"mesos-gpu-agent: {exc}", file=sys.stderr)
        return 1
    config = agent_config(host, include_unhealthy=args.include_unhealthy, sharing=sharing)
    print(render(config, args.format))
    if args.format != "json":
        for note in config.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    try:
        backend = _backend(args)
    except FakeSpecError as exc:
        print(f"mesos-gpu-agent: {exc}", file=sys.stderr)
        return 2
    flags = None
    if args.flags is not None:
        flags = parse_flags(args.flags)
    elif args.flags_from_env:
        flags = flags_from_env(os.environ)
    paths = HostPaths(dev=args.dev_dir, driver_version_file=args.driver_version_file)
    docker_status = None if args.no_docker else (lambda: engine_status(args.docker_host))
    checks = run_doctor(backend, flags, paths, docker_status, fake=args.fake_gpus is not None)
    print(table(checks))
    return 1 if failed(checks) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesos-gpu-agent",
        description="Set up and check a Mesos GPU agent for mesos-gpu.",
    )
    parser.add_argument("--version", action="version", version=f"mesos-gpu-agent {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    config = commands.add_parser("config", help="print the mesos-agent flags for this host's GPUs")
    _add_fake(config)
    config.add_argument("--format", choices=("flags", "env", "json"), default="flags")
    config.add_argument(
        "--include-unhealthy", action="store_true", help="offer GPUs that fail their health checks too"
    )
    config.set_defaults(func=cmd_config)

    doctor = commands.add_parser("doctor", help="check this host; non-zero exit status when a check fails")
    _add_fake(doctor)
    given = doctor.add_mutually_exclusive_group()
    given.add_argument(
        "--flags", metavar="ARGS", help='the agent\'s current flags, e.g. "$(cat /etc/mesos-slave/…)"'
    )
    given.add_argument("--flags-from-env", action="store_true", help="read the flags from MESOS_* variables")
    doctor.add_argument("--no-docker", action="store_true", help="skip the Docker and NVIDIA runtime checks")
    doctor.add_argument("--docker-host", metavar="URL", help="Docker Engine address (default: DOCKER_HOST)")
    doctor.add_argument("--dev-dir", default="/dev", help=argparse.SUPPRESS)
    doctor.add_argument(
        "--driver-version-file", default="/proc/driver/nvidia/version", help=argparse.SUPPRESS
    )
    doctor.set_defaults(func=cmd_doctor)
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
