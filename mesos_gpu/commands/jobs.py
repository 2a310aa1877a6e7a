"""`mesos-gpu jobs`, `mesos-gpu status ID` and `mesos-gpu kill ID`; `gpu_text` is how every command shows
a task's GPUs: the amount and, for a share, what its isolation level enforces ("0.25 (capped: memory
capped by the share host's NVML watchdog; compute and faults NOT isolated)"; whole GPUs "1 (exclusive)")."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from mesos_gpu.commands.common import (
    add_output_option,
    age,
    api_options,
    client_from,
    iso_time,
    output_format,
    print_json,
    reports_errors,
    short_state,
    table,
    task_place,
)
from mesos_gpu.core.isolationtext import summary


def _number(value: Any) -> str:
    return f"{float(value):g}"


def gpu_amount(task: Mapping[str, Any]) -> str:
    """A task's GPUs: "2", "0.25", an elastic "0.4-1"; with the share granted, "0.6 of 0.4-1" (elastic)
    or "0.286 (asked 0.25)" (a MIG instance larger than the share)."""
    gpus = task.get("gpus") or 0
    granted = (task.get("share") or {}).get("gpus")
    if isinstance(gpus, Mapping):
        asked = f"{_number(gpus.get('min', 0))}-{_number(gpus.get('max', 0))}"
        return f"{_number(round(float(granted), 3))} of {asked}" if granted else asked
    if granted and abs(float(granted) - float(gpus)) > 1e-9:
        return f"{_number(round(float(granted), 3))} (asked {_number(gpus)})"
    return _number(gpus)


def has_gpus(task: Mapping[str, Any]) -> bool:
    gpus = task.get("gpus") or 0
    return isinstance(gpus, Mapping) or float(gpus) > 0


def isolation_note(task: Mapping[str, Any]) -> str:
    """What the task's isolation enforces, short: "exclusive", or the share level's summary; then what its
    share host says is in effect, in the server's words ("...; in effect: memory NOT enforced: ...")."""
    level = str(task.get("isolation") or "exclusive")
    enforced = task.get("enforced")
    if not isinstance(enforced, Mapping):
        return level
    note = level if level == "exclusive" else summary(enforced)
    in_effect = enforced.get("in_effect")
    return f"{note}; in effect: {in_effect}" if in_effect else note


def gpu_text(task: Mapping[str, Any], unit: str = "") -> str:
    """ "1 (exclusive)", "1 (exclusive) on GPU 0 (GPU-5f1c...)" once its executor said where, "0.25 on
    GPU-8f2a (capped: ...)" (a share's device is part of its grant); with unit="GPU": "2 GPUs (exclusive)"."""
    amount = gpu_amount(task)
    if unit:
        gpus = task.get("gpus") or 0
        several = not isinstance(gpus, Mapping) and float(gpus) > 1
        amount += f" {unit}s" if several else f" {unit}"
    note = isolation_note(task)
    device = (task.get("share") or {}).get("device")
    if device:   # a share's device is part of its grant
        return f"{amount} on {device} ({note})"
    where = devices_text(task)
    return f"{amount} ({note}) on {where}" if where else f"{amount} ({note})"


def devices_text(task: Mapping[str, Any]) -> str:
    """The GPUs the task runs on as its executor reported them (the view's `devices`): "GPU 1
    (GPU-8f2a...)" each, the UUID alone when the index is not reported; "" when not reported (never
    guessed)."""
    words = []
    for found in task.get("devices") or ():
        index, uuid = found.get("index"), found.get("uuid")
        if index is None:
            words.append(str(uuid))
        else:
            words.append(f"GPU {index} ({uuid})" if uuid else f"GPU {index}")
    return ", ".join(words)


def register(subparsers: Any) -> None:
    parent = api_options()
    jobs = subparsers.add_parser(
        "jobs", parents=[parent], help="list jobs", description="List jobs, oldest first."
    )
    jobs.add_argument("--state", help="only jobs in these states (comma-separated, e.g. PENDING,RUNNING)")
    jobs.add_argument("--tenant", help="only this tenant's jobs")
    add_output_option(jobs)
    jobs.set_defaults(func=list_jobs)

    status = subparsers.add_parser(
        "status", parents=[parent], help="show a job", description="Show a job: state, tasks, why it waits."
    )
    status.add_argument("job_id", metavar="ID")
    add_output_option(status)
    status.set_defaults(func=show_status)

    kill = subparsers.add_parser(
        "kill", parents=[parent], help="kill a job", description="Kill every task of a job."
    )
    kill.add_argument("job_id", metavar="ID")
    kill.set_defaults(func=kill_job)


@reports_errors
def list_jobs(args: argparse.Namespace) -> int:
    jobs = list(client_from(args).jobs(args.state, args.tenant))
    shape = output_format(args)
    if shape == "json":
        print_json(jobs)
    elif shape == "name":
        for job in jobs:
            print(job["id"])
    elif not jobs:
        print("No jobs.")
    else:
        print(jobs_table(jobs, wide=shape == "wide"))
    return 0


def jobs_table(jobs: list[dict[str, Any]], wide: bool = False) -> str:
    """The `jobs` table; `wide` adds the job's name, restarts and its times (ISO-8601 UTC)."""
    headers: tuple[str, ...] = ("ID", "TENANT", "STATE", "RUNNING", "GPUS", "AGE", "MESSAGE")
    if wide:
        headers = ("ID", "NAME", "TENANT", "STATE", "RUNNING", "GPUS", "RESTARTS", "SUBMITTED", "STARTED",
                   "FINISHED", "AGE", "MESSAGE")
    rows: list[tuple[Any, ...]] = []
    for job in jobs:
        when = age(job["submitted_at"])
        message = job["wait_reason"] if job["state"] == "PENDING" and job["wait_reason"] else job["message"]
        running = f"{job['tasks_running']}/{job['task_count']}"
        gpus = job.get("gpus_text", job["gpus"])  # "0.3-1 (share)": a share is not shown as a whole GPU
        if wide:
            times = (iso_time(job.get(name)) for name in ("submitted_at", "started_at", "finished_at"))
            rows.append((job["id"], job["name"], job["tenant"], job["state"], running, gpus, job["restarts"],
                         *times, when, message))
        else:
            rows.append((job["id"], job["tenant"], job["state"], running, gpus, when, message))
    return table(headers, rows)


def describe(job: dict[str, Any], wide: bool = False) -> str:
    """A job for people: its state, why it waits, every task, the TF cluster; `wide` adds its times
    (ISO-8601 UTC) and each task's Mesos task id and attempt."""
    lines = [
        f"Job {job['id']} ({job['name']}, tenant {job['tenant']}): {job['state']}",
        f"  submitted {age(job['submitted_at'])} ago"
        + (f", restarts {job['restarts']}" if job["restarts"] else "")
        + (", kill requested" if job["kill_requested"] else ""),
    ]
    if wide:
        times = ", ".join(f"{name.removesuffix('_at')} {iso_time(job.get(name))}"
                          for name in ("submitted_at", "started_at", "finished_at") if job.get(name))
        lines.append(f"  times: {times}")
    if job.get("message"):
        lines.append(f"  message: {job['message']}")
    if job.get("wait_reason"):
        lines.append(f"  waiting: {job['wait_reason']}")
    headers: tuple[str, ...] = ("TASK", "STATE", "WHERE", "GPUS", "EXIT", "MESSAGE")
    if wide:
        headers = ("TASK", "TASK ID", "ATTEMPT", *headers[1:])
    rows = []
    for task in job["tasks"]:
        row: tuple[Any, ...] = (
            task["name"],
            short_state(task["state"]),
            task_place(task),
            gpu_text(task) if has_gpus(task) else "0",
            "" if task["exit_code"] is None else task["exit_code"],
            task.get("message") or "",
        )
        if wide:
            row = (row[0], task.get("task_id") or "-", task.get("attempt", -1), *row[1:])
        rows.append(row)
    lines.append("")
    lines.extend("  " + line for line in table(headers, rows).splitlines())
    if job.get("tf_cluster"):
        lines.append("")
        lines.append("  TF cluster:")
        for role, addresses in job["tf_cluster"].items():
            lines.append(f"    {role}: " + ", ".join(a or "(not placed)" for a in addresses))
    return "\n".join(lines)


@reports_errors
def show_status(args: argparse.Namespace) -> int:
    job = client_from(args).job(args.job_id)
    shape = output_format(args)
    if shape == "json":
        print_json(job)
    elif shape == "name":
        print(job["id"])
    else:
        print(describe(job, wide=shape == "wide"))
    return 0


@reports_errors
def kill_job(args: argparse.Namespace) -> int:
    client = client_from(args)
    before = client.job(args.job_id)  # a waiting job ends at once when killed: say it was ours
    job = client.kill(args.job_id)
    if args.json:
        print_json(job)
    elif before["terminal"] or (job["terminal"] and job["state"] != "KILLED"):
        print(f"Job {job['id']} has already ended: {job['state']}.")
    elif job["terminal"]:
        print(f"Killed job {job['id']} (it was {before['state']}): {job['message']}.")
    else:
        print(f"Killing job {job['id']} ({job['state']}); `mesos-gpu status {job['id']}` shows when it ends.")
    return 0
