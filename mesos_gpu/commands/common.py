"""What the API subcommands share: `--api`/`--token`/`--json` options, the client, error reporting as
plain sentences, and small text-table helpers."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from mesos_gpu.client import DEFAULT_API, ENV_API, ENV_DCOS_TOKEN, ENV_TOKEN, ApiClient, ClientError
from mesos_gpu.core.model import JobState

Handler = Callable[[argparse.Namespace], int]

# The job states' names a poll stops at (from `JobState.is_terminal`, the one definition).
TERMINAL_JOB_STATES = frozenset(state.value for state in JobState if state.is_terminal)


def api_options(call_timeout: str = "--timeout") -> argparse.ArgumentParser:
    """A parent parser with the options every API subcommand takes; `call_timeout` names the option of
    the seconds each API call may take (`wait` keeps `--timeout` for itself)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--api",
        default=os.environ.get(ENV_API, DEFAULT_API),
        metavar="URL",
        help=f"the mesos-gpu API (default: ${ENV_API} or {DEFAULT_API})",
    )
    parent.add_argument(
        "--token",
        default=os.environ.get(ENV_TOKEN),
        help=f"bearer token for the API (default: ${ENV_TOKEN})",
    )
    parent.add_argument(
        "--dcos-token",
        default=os.environ.get(ENV_DCOS_TOKEN),
        metavar="TOKEN",
        help=f"a DC/OS login token, for an --api URL through Admin Router (https://<dcos>/service/<name>): "
        f"sent as 'Authorization: token=...', --token then in X-Mesos-GPU-Token (default: ${ENV_DCOS_TOKEN})",
    )
    parent.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    parent.add_argument(
        call_timeout, dest="timeout", type=float, default=10.0, help="seconds to wait for each API call"
    )
    return parent


OUTPUT_FORMATS = ("json", "wide", "name")


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """`-o json|wide|name` (as kubectl's); `--json` stays an alias of `-o json`."""
    parser.add_argument(
        "-o", "--output", choices=OUTPUT_FORMATS, metavar="FORMAT",
        help="json (as --json), wide (more columns) or name (the job IDs alone, one a line)",
    )


def output_format(args: argparse.Namespace) -> str:
    """The output asked for: "json", "wide", "name", or "" for the default text."""
    if getattr(args, "output", None):
        return str(args.output)
    return "json" if getattr(args, "json", False) else ""


def iso_time(epoch: float | None) -> str:
    """Epoch seconds as ISO-8601 UTC to the second ("2026-12-04T12:36:33Z"); "-" when unknown."""
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(epoch)))


def client_from(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.api, token=args.token, timeout=args.timeout,
                     dcos_token=getattr(args, "dcos_token", None))


def reports_errors(handler: Handler) -> Handler:
    """Turn client errors into one plain sentence on stderr and exit status 1 (no traceback)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ClientError as exc:
            print(f"mesos-gpu: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            return 0

    return run


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left-aligned text table (the last column is not padded)."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def age(since: float | None, now: float | None = None) -> str:
    """ "42s", "5m", "3h", "2d" since a timestamp ("-" when unknown)."""
    if not since:
        return "-"
    seconds = max(0.0, (now if now is not None else time.time()) - since)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def short_state(state: str | None) -> str:
    """ "TASK_RUNNING" -> "RUNNING"; None -> "-" (not launched)."""
    if not state:
        return "-"
    return state.removeprefix("TASK_")


def task_place(task: dict[str, Any]) -> str:
    """Where a task runs: "host:port (agent id)" or "-"."""
    if not task.get("hostname"):
        return "-"
    where = task.get("address") or task["hostname"]
    return f"{where} ({task.get('agent_id')})" if task.get("agent_id") else where


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0: {text!r}")
    return int(text)
