"""`mesos-gpu logs ID [--task T] [--attempt N] [--stream stderr] [--follow]`: a task's stdout or stderr,
read from its Mesos sandbox through the API (`--attempt`: an earlier launch of a restarted task)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from mesos_gpu.client import ApiClient, ApiError
from mesos_gpu.commands.common import TERMINAL_JOB_STATES, api_options, client_from, reports_errors

CHUNK = 65536


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "logs",
        parents=[api_options()],
        help="show a task's output",
        description="Print a task's stdout (or stderr) from its Mesos sandbox; --follow keeps printing "
        "until the job ends.",
    )
    parser.add_argument("job_id", metavar="ID")
    parser.add_argument("--task", help="the task (e.g. worker-0; default: the job's first task)")
    parser.add_argument(
        "--attempt", type=int, metavar="N", help="launch attempt N of the task (0 first; default: the latest)"
    )
    parser.add_argument("--stream", choices=("stdout", "stderr"), default="stdout")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new output")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between reads with --follow")
    parser.set_defaults(func=show_logs)


@reports_errors
def show_logs(args: argparse.Namespace) -> int:
    api = client_from(args)
    if not args.follow:
        offset = 0
        while True:
            chunk = api.logs(args.job_id, args.task, args.stream, offset, CHUNK, attempt=args.attempt)
            if args.json:
                print_chunk_json(chunk)
            else:
                sys.stdout.write(chunk["data"])
            if not chunk["data"]:
                break
            offset = chunk["next_offset"]
        sys.stdout.flush()
        return 0
    return follow_logs(api, args)


def print_chunk_json(chunk: dict[str, Any]) -> None:
    import json

    if chunk["data"]:
        print(json.dumps(chunk), flush=True)


def follow_logs(api: ApiClient, args: argparse.Namespace) -> int:
    offset, task_id, told_waiting = 0, None, False
    while True:
        try:
            chunk = api.logs(args.job_id, args.task, args.stream, offset, CHUNK, attempt=args.attempt)
        except ApiError as exc:
            if exc.status != 409:  # 409: not launched yet, keep waiting
                raise
            if not told_waiting:
                print(f"mesos-gpu: {exc.message}; waiting.", file=sys.stderr, flush=True)
                told_waiting = True
            time.sleep(args.interval)
            continue
        if task_id is not None and chunk["task_id"] != task_id:
            print(f"mesos-gpu: the task restarted as {chunk['task_id']}.", file=sys.stderr, flush=True)
            offset = 0
            task_id = chunk["task_id"]
            continue
        task_id = chunk["task_id"]
        if chunk["data"]:
            if args.json:
                print_chunk_json(chunk)
            else:
                sys.stdout.write(chunk["data"])
                sys.stdout.flush()
            offset = chunk["next_offset"]
            continue
        earlier_attempt = args.attempt is not None and chunk.get("task_state") is None  # it has ended
        if chunk["job_state"] in TERMINAL_JOB_STATES or earlier_attempt:
            return 0
        time.sleep(args.interval)
