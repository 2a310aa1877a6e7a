"""`mesos-gpu submit job.json [--follow]`: submit a job and, with --follow, show its progress until it
ends. Exit status with --follow: a single-task job's exit code (as `mesos-gpu run`: 128 + N for signal N),
else 0 when the job SUCCEEDED and 1 when not."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from mesos_gpu.client import ApiClient, ApiUnreachable
from mesos_gpu.commands.common import (
    TERMINAL_JOB_STATES,
    api_options,
    client_from,
    print_json,
    reports_errors,
    short_state,
    task_place,
)
from mesos_gpu.commands.jobs import gpu_text, has_gpus

EXIT_FAILED = 1
EXIT_BAD_FILE = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        parents=[api_options()],
        help="submit a job",
        description="Submit a job (a JSON file, or - for stdin). With --follow, show each task's progress "
        "(state, agent, GPUs, why it waits) until the job ends; the exit status is then the task's exit code "
        "for a single-task job, else 0 if it SUCCEEDED and 1 if not.",
    )
    parser.add_argument("file", metavar="JOB.json", help="the job document (- reads stdin)")
    parser.add_argument("--follow", "-f", action="store_true", help="follow the job until it ends")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between checks with --follow")
    parser.add_argument("--idempotency-key", help="a key that makes retried submits create one job")
    parser.set_defaults(func=submit)


def read_job(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


@reports_errors
def submit(args: argparse.Namespace) -> int:
    try:
        doc = read_job(args.file)
    except OSError as exc:
        print(f"mesos-gpu: cannot read {args.file}: {exc.strerror or exc}.", file=sys.stderr)
        return EXIT_BAD_FILE
    except (ValueError, UnicodeDecodeError) as exc:
        print(f"mesos-gpu: {args.file} is not valid JSON: {exc}.", file=sys.stderr)
        return EXIT_BAD_FILE
    api = client_from(args)
    job, created = api.submit(doc, args.idempotency_key)
    if not args.follow:
        if args.json:
            print_json(job)
        else:
            verb = "Submitted" if created else "Already submitted (same idempotency key)"
            print(f"{verb} job {job['id']}: {job['state']}.")
            print(f"Follow it with `mesos-gpu status {job['id']}` or `mesos-gpu logs {job['id']} --follow`.")
        return 0
    if not args.json:
        print(f"Submitted job {job['id']}.", flush=True)
    final = follow(api, job, args.interval, sys.stdout, quiet=args.json)
    if args.json:
        print_json(final)
    return follow_exit_status(final)


def follow_exit_status(job: dict[str, Any]) -> int:
    """A single-task job's exit code (its low 8 bits, as a shell's), else 0 if SUCCEEDED, else 1."""
    succeeded = job["state"] == "SUCCEEDED"
    tasks = job.get("tasks") or []
    code = tasks[0].get("exit_code") if len(tasks) == 1 else None
    if code is None or int(code) < 0 or (int(code) & 0xFF == 0) != succeeded:
        return 0 if succeeded else EXIT_FAILED
    return int(code) & 0xFF


class ProgressPrinter:
    """Prints what changed between two views of a job: its state, why it waits, each task's state."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._job: tuple[Any, ...] | None = None
        self._tasks: dict[str, tuple[Any, ...]] = {}

    def show(self, job: dict[str, Any]) -> None:
        stamp = time.strftime("%H:%M:%S")
        key = (job["state"], job.get("wait_reason"), job.get("message"))
        if key != self._job:
            self._job = key
            line = f"{stamp} job {job['id']}: {job['state']}"
            if job.get("wait_reason") and not job["terminal"]:
                line += f", waiting: {job['wait_reason']}"
            elif job.get("message"):
                line += f" ({job['message']})"
            print(line, file=self.out, flush=True)
        for task in job["tasks"]:
            task_key = (task["task_id"], task["state"], task["agent_id"], task.get("message"))
            if task["task_id"] is None or self._tasks.get(task["name"]) == task_key:
                continue
            self._tasks[task["name"]] = task_key
            gpus = gpu_text(task, unit="GPU") if has_gpus(task) else "no GPU"
            line = (
                f"{stamp}   {task['name']:<12} {short_state(task['state']):<10} on {task_place(task)}, {gpus}"
            )
            if task.get("exit_code") is not None:
                line += f", exit code {task['exit_code']}"
            if task.get("message"):
                line += f": {task['message']}"
            print(line, file=self.out, flush=True)

    def final(self, job: dict[str, Any]) -> None:
        codes = [t["exit_code"] for t in job["tasks"] if t.get("exit_code") is not None]
        status = follow_exit_status(job)
        detail = f"; task exit codes: {', '.join(map(str, codes))}" if codes else ""
        print(
            f"Job {job['id']} ended {job['state']}{detail}; exit status {status}.", file=self.out, flush=True
        )


def follow(
    api: ApiClient, job: dict[str, Any], interval: float, out: TextIO, quiet: bool = False
) -> dict[str, Any]:
    """Poll the job until it ends, printing progress (unless `quiet`); returns the final view."""
    printer = ProgressPrinter(out)
    lost_since: float | None = None
    while True:
        if not quiet:
            printer.show(job)
        if job["state"] in TERMINAL_JOB_STATES:
            if not quiet:
                printer.final(job)
            return job
        time.sleep(interval)
        try:
            job = api.job(job["id"])
            lost_since = None
        except ApiUnreachable:
            # The scheduler may be failing over: keep trying for a while before giving up.
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > 60:
                raise
