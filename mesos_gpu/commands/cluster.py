"""`mesos-gpu cluster`: the agents and their GPUs (total / used / free, model) as a table, then the share
hosts (each holds one whole GPU that its share tasks divide): agent, isolation, fraction and memory given,
tasks; then the GPU profile in force and the next switch, when profiles are configured."""

from __future__ import annotations

import argparse
from typing import Any

from mesos_gpu.commands.common import api_options, client_from, print_json, reports_errors, table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cluster",
        parents=[api_options()],
        help="show agents and GPUs",
        description="Show every Mesos agent with its GPUs (total, used, free, model), CPUs and memory, "
        "then every share host with an active share task (agent, isolation, GPU fraction and memory given, "
        "tasks), and the GPU profile in force and the next one when profiles are configured.",
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
    hosts = cluster.get("share_hosts") or []
    if hosts:
        print(f"\n{share_hosts_text(hosts)}")
    profile = cluster.get("profile")
    if profile:
        print(f"\n{profile_text(profile)}")
    return 0


def profile_text(profile: dict[str, Any]) -> str:
    """The GPU profile in force, the next switch, and what drains (`GET /v1/cluster`'s `profile`)."""
    zone = profile.get("time_zone") or "UTC"
    current = profile.get("current")
    if current is None:
        line = f"GPU profile: none in force (no schedule entry has fired; time zone {zone})."
    else:
        line = f"GPU profile: {current} since {profile.get('since')} ({zone})."
    if profile.get("next") is not None:
        line += f" Next: {profile['next']} at {profile.get('next_at')}."
    else:
        line += " No switch scheduled."
    draining = profile.get("draining_share_hosts") or []
    if draining:
        line += f"\nDraining (no new shares): {', '.join(draining)}"
        deadline = profile.get("drain_deadline")
        line += f"; their share tasks are killed at {deadline}." if deadline else "; running shares finish."
    return line


def share_hosts_text(hosts: list[dict[str, Any]]) -> str:
    """The share hosts as a table, and a line of what they hold and give."""
    rows = [
        (
            host.get("hostname") or "-",
            host.get("agent_id") or "-",
            host["host"],
            host.get("isolation") or "-",
            _number(float(host.get("gpus") or 0)),
            f"{host.get('gpu_memory') or 0}/{host.get('device_memory') or '?'}",
            ", ".join(str(task) for task in host.get("tasks") or ()),
        )
        for host in hosts
    ]
    given = sum(float(host.get("gpus") or 0) for host in hosts)
    tasks = sum(len(host.get("tasks") or ()) for host in hosts)
    header = ("HOST", "AGENT", "SHARE HOST", "ISOLATION", "GPU GIVEN", "GPU MEM GIVEN (MB)", "TASKS")
    return (
        f"{table(header, rows)}\n\n{len(hosts)} share host(s) hold {len(hosts)} GPU(s); "
        f"{_number(round(given, 3))} GPU given to {tasks} share task(s). An empty share host is not listed: "
        "it gives its GPU back after its linger."
    )
