"""`mesos-gpu wait ID [--timeout S]`: block until a job ends, for scripts.

Exit status: 0 when the job SUCCEEDED, 1 when it ended otherwise (FAILED, KILLED), 2 when `--timeout`
seconds passed first or the job could not be read (no such job, the API unreachable for longer than
`--timeout` allows, a bad answer). The job's final state is printed (its view with `--json`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from mesos_gpu.client import ApiClient, ApiError, ApiUnreachable, ClientError
from mesos_gpu.commands.common import TERMINAL_JOB_STATES, api_options, client_from, print_json

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_TIMEOUT_OR_ERROR = 2
UNREACHABLE_FOR = 60.0  # seconds an unreachable API is retried (a scheduler failing over)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "wait",
        parents=[api_options(call_timeout="--request-timeout")],
        help="wait for a job to end",
        description="Wait until a job ends. Exit status: 0 if it SUCCEEDED, 1 if it FAILED or was KILLED, "
        "2 on --timeout or when the job cannot be read (unknown job, API unreachable).",
    )
    parser.add_argument("job_id", metavar="ID")
    parser.add_argument(
        "--timeout", dest="wait_timeout", type=float, metavar="S",
        help="give up after S seconds (default: never); --request-timeout bounds each API call",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    parser.set_defaults(func=wait_job)


def wait_job(args: argparse.Namespace) -> int:
    api = client_from(args)
    try:
        job = wait_for(api, args.job_id, args.wait_timeout, args.interval)
    except ClientError as exc:
        print(f"mesos-gpu: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT_OR_ERROR
    except BrokenPipeError:
        return EXIT_TIMEOUT_OR_ERROR
    if job is None:
        print(f"mesos-gpu: job {args.job_id} has not ended after {args.wait_timeout:g}s.", file=sys.stderr)
        return EXIT_TIMEOUT_OR_ERROR
    if args.json:
        print_json(job)
    else:
        detail = f" ({job['message']})" if job.get("message") else ""
        print(f"Job {job['id']} {job['state']}{detail}.")
    return EXIT_SUCCEEDED if job["state"] == "SUCCEEDED" else EXIT_FAILED


def wait_for(
    api: ApiClient,
    job_id: str,
    timeout: float | None,
    interval: float,
    *,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any] | None:
    """Poll the job until it is terminal (its view), or None when `timeout` seconds pass first. A lost
    connection (a scheduler failing over) is retried for up to `UNREACHABLE_FOR` seconds, a 503 (no
    leader for a moment) until the timeout; any other API error is raised."""
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    deadline = None if timeout is None else clock() + timeout
    lost_since: float | None = None
    while True:
        try:
            job = api.job(job_id)
            lost_since = None
            if job["state"] in TERMINAL_JOB_STATES:
                return job
        except ApiUnreachable:
            lost_since = clock() if lost_since is None else lost_since
            if clock() - lost_since > UNREACHABLE_FOR:
                raise
        except ApiError as exc:
            if exc.status != 503:  # 503: no leader for a moment
                raise
        if deadline is not None and clock() >= deadline:
            return None
        pause = interval if deadline is None else max(0.0, min(interval, deadline - clock()))
        sleep(pause)
