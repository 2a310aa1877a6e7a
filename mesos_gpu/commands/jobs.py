"""`mesos-gpu jobs`, `mesos-gpu status ID` and `mesos-gpu kill ID`."""

from __future__ import annotations

import argparse
from typing import Any

from mesos_gpu.commands.common import (
    age,
    api_options,
    client_from,
    print_json,
    reports_errors,
    short_state,
    table,
    task_place,
)


def register(subparsers: Any) -> None:
    parent = api_options()
    jobs = subparsers.add_parser(
        "jobs", parents=[parent], help="list jobs", description="List jobs, oldest first."
    )
    jobs.add_argument("--state", help="only jobs in these states (comma-separated, e.g. PENDING,RUNNING)")
    jobs.add_argument("--tenant", help="only this tenant's jobs")
    jobs.set_defaults(func=list_jobs)

    status = subparsers.add_parser(
        "status", parents=[parent], help="show a job", description="Show a job: state, tasks, why it waits."
    )
    status.add_argument("job_id", metavar="ID")
    status.set_defaults(func=show_status)

    kill = subparsers.add_parser(
        "kill", parents=[parent], help="kill a job", description="Kill every task of a job."
    )
    kill.add_argument("job_id", metavar="ID")
    kill.set_defaults(func=kill_job)


@reports_errors
def list_jobs(args: argparse.Namespace) -> int:
    jobs = list(client_from(args).jobs(args.state, args.tenant))
    if args.json:
        print_json(jobs)
        return 0
    if not jobs:
        print("No jobs.")
        return 0
    rows = [
        (
            job["id"],
            job["tenant"],
            job["state"],
            f"{job['tasks_running']}/{job['task_count']}",
            job["gpus"],
            age(job["submitted_at"]),
            job["wait_reason"] if job["state"] == "PENDING" and job["wait_reason"] else job["message"],
        )
        for job in jobs
    ]
    print(table(("ID", "TENANT", "STATE", "RUNNING", "GPUS", "AGE", "MESSAGE"), rows))
    return 0


def describe(job: dict[str, Any]) -> str:
    """A job for people: its state, why it waits, every task, the TF cluster."""
    lines = [
        f"Job {job['id']} ({job['name']}, tenant {job['tenant']}): {job['state']}",
        f"  submitted {age(job['submitted_at'])} ago"
        + (f", restarts {job['restarts']}" if job["restarts"] else "")
        + (", kill requested" if job["kill_requested"] else ""),
    ]
    if job.get("message"):
        lines.append(f"  message: {job['message']}")
    if job.get("wait_reason"):
        lines.append(f"  waiting: {job['wait_reason']}")
    rows = [
        (
            task["name"],
            short_state(task["state"]),
            task_place(task),
            f"{task['gpus']} ({task['isolation']})" if task["gpus"] else "0",
            "" if task["exit_code"] is None else task["exit_code"],
            task.get("message") or "",
        )
        for task in job["tasks"]
    ]
    lines.append("")
    lines.extend(
        "  " + line
        for line in table(("TASK", "STATE", "WHERE", "GPUS", "EXIT", "MESSAGE"), rows).splitlines()
    )
    if job.get("tf_cluster"):
        lines.append("")
        lines.append("  TF cluster:")
        for role, addresses in job["tf_cluster"].items():
            lines.append(f"    {role}: " + ", ".join(a or "(not placed)" for a in addresses))
    return "\n".join(lines)


@reports_errors
def show_status(args: argparse.Namespace) -> int:
    job = client_from(args).job(args.job_id)
    if args.json:
        print_json(job)
    else:
        print(describe(job))
    return 0


@reports_errors
def kill_job(args: argparse.Namespace) -> int:
    job = client_from(args).kill(args.job_id)
    if args.json:
        print_json(job)
    elif job["terminal"]:
        print(f"Job {job['id']} has already ended: {job['state']}.")
    else:
        print(f"Killing job {job['id']} ({job['state']}); `mesos-gpu status {job['id']}` shows when it ends.")
    return 0
