"""`mesos-gpu cluster`: the agents and their GPUs (total / used / free, model) as a table."""

from __future__ import annotations

import argparse
from typing import Any

from mesos_gpu.commands.common import api_options, client_from, print_json, reports_errors, table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cluster",
        parents=[api_options()],
        help="show agents and GPUs",
        description="Show every Mesos agent with its GPUs (total, used, free, model), CPUs and memory.",
    )
    parser.set_defaults(func=show_cluster)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


@reports_errors
def show_cluster(args: argparse.Namespace) -> int:
    cluster = client_from(args).cluster()
    if args.json:
        print_json(cluster)
        return 0
    rows = [
        (
            agent["hostname"],
            agent["id"],
            agent["gpus"]["model"] or "-",
            agent["gpus"]["total"],
            agent["gpus"]["used"],
            agent["gpus"]["free"],
            f"{_number(agent['cpus']['used'])}/{_number(agent['cpus']['total'])}",
            f"{_number(agent['mem']['used'])}/{_number(agent['mem']['total'])}",
        )
        for agent in cluster["agents"]
    ]
    if not rows:
        print(f"No agents are registered with the Mesos master at {cluster['master']['url']}.")
        return 0
    print(table(("HOST", "AGENT", "GPU MODEL", "GPUS", "USED", "FREE", "CPUS USED", "MEM USED (MB)"), rows))
    gpus = cluster["gpus"]
    print(f"\n{len(rows)} agent(s); GPUs: {gpus['total']} total, {gpus['used']} used, {gpus['free']} free.")
    return 0
