"""`mesos-gpu local`: ZooKeeper, the embedded Mesos cluster, the scheduler and the API on this machine,
until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from typing import Any

from mesos_gpu.core.config import DEFAULT_API_PORT
from mesos_gpu.local.cli import (
    add_gpu_sharing_arguments,
    add_secrets_argument,
    apply_secrets_dir,
    gpu_sharing_options,
    host_gpus_usable,
)


def register(subparsers: Any) -> None:
    """Add `mesos-gpu local` (everything on this machine). When another module already added a `local`
    command (`mesos_gpu.local.cli`: `local up`, the cluster alone), extend it instead: `mesos-gpu local`
    without a subcommand then runs the whole stack. List this module after that one."""
    description = (
        "Start ZooKeeper (from the local install), an embedded Mesos cluster with GPU agents, the scheduler "
        "and the REST API, print the API URL, and stop them all on Ctrl-C or SIGTERM."
    )
    parser = subparsers.choices.get("local")
    if parser is None:
        parser = subparsers.add_parser(
            "local", help="run everything on this machine", description=description
        )
    else:
        parser.description = description + " (`mesos-gpu local up` runs the Mesos cluster alone.)"
    parser.add_argument("--host", default="127.0.0.1", help="address to serve the API on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_API_PORT, help=f"API port (default {DEFAULT_API_PORT}; 0: any)"
    )
    parser.add_argument("--agents", type=int, default=2, help="number of agents (default 2)")
    parser.add_argument(
        "--gpus-per-agent",
        default="2",
        help="simulated GPUs per agent (default 2), or 'nvml' for this machine's real GPUs, split "
        "between the agents (each GPU to one agent; 'host' is an alias)",
    )
    add_gpu_sharing_arguments(parser)
    add_secrets_argument(parser)
    parser.add_argument("--workdir", help="where sandboxes go (default: a temporary directory)")
    parser.add_argument("--zk", metavar="HOST:PORT", help="use this ZooKeeper instead of starting one")
    parser.add_argument("--framework-name", default="mesos-gpu")
    parser.add_argument("--verbose", "-v", action="store_true", help="log what the scheduler does")
    parser.set_defaults(func=run_local)


def _gpus(text: str) -> int | None:
    if text in ("host", "nvml"):
        return None
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def run_local(args: argparse.Namespace) -> int:
    try:
        gpus = _gpus(args.gpus_per_agent)
    except ValueError:
        print(
            f"mesos-gpu: --gpus-per-agent must be a number or 'nvml', not {args.gpus_per_agent!r}.",
            file=sys.stderr,
        )
        return 2
    try:
        sharing = gpu_sharing_options(args)
    except ValueError as exc:
        print(f"mesos-gpu: {exc}", file=sys.stderr)
        return 2
    if args.agents < 1:
        print("mesos-gpu: --agents must be at least 1.", file=sys.stderr)
        return 2
    problem = apply_secrets_dir(args)
    if problem:
        print(f"mesos-gpu: {problem}", file=sys.stderr)
        return 2
    from mesos_gpu.store.settings import tenants_file_problem

    problem = tenants_file_problem(os.environ.get("MESOS_GPU_TENANTS_FILE"))
    if problem:     # one line before anything starts (the API would refuse it after the cluster started)
        print(f"mesos-gpu: MESOS_GPU_TENANTS_FILE: {problem}", file=sys.stderr)
        return 2
    if gpus is None and not host_gpus_usable():
        return 1
    from mesos_gpu.core.errors import ValidationError
    from mesos_gpu.scheduler_main import configure_logging, log_format_of

    try:
        log_format = log_format_of(os.environ)
    except ValidationError as exc:
        print(f"mesos-gpu: {exc}", file=sys.stderr)
        return 2
    configure_logging(logging.INFO if args.verbose else logging.WARNING, log_format)
    from mesos_gpu.local.zookeeper import ZooKeeperError
    from mesos_gpu.standalone import Standalone, StandaloneError, run_standalone

    local = Standalone(
        host=args.host,
        port=args.port,
        agents=args.agents,
        gpus_per_agent=gpus,
        framework_name=args.framework_name,
        workdir=args.workdir,
        zk_hosts=args.zk,
        cluster_options=sharing,
    )
    try:
        return run_standalone(local, sys.stdout)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"mesos-gpu: port {args.port} on {args.host} is already in use; choose another with --port "
                "(0 picks a free one).",
                file=sys.stderr,
            )
        else:
            print(f"mesos-gpu: mesos-gpu local could not start: {exc}", file=sys.stderr)
        return 1
    except (ZooKeeperError, StandaloneError) as exc:
        print(f"mesos-gpu: mesos-gpu local could not start: {exc}", file=sys.stderr)
        return 1
