"""`mesos-gpu logs ID [--task T] [--attempt N] [--stream stderr] [--tail N] [--since WHEN] [--follow]`:
the output of a job's tasks, read from their Mesos sandboxes through the API.

Every task of the job by default, in the job's member order, each line prefixed with `[role-index] `
when more than one task is shown (as `kubectl logs --prefix` and `docker compose logs` do; `--prefix` /
`--no-prefix` decide it yourself); `--task` selects one. With `--follow` the tasks' lines are merged as
they arrive (whole lines only, so two tasks' lines never mix) until the job ends.

`--tail N` keeps each task's last N lines: the API reads them backwards from the end of the file
(`?tail=N`, at most 1 MiB a task), so a long log is not fetched whole; a scheduler without `tail`
(older) is read from the start and cut here. `--since` takes a duration ("10m", "1h30m") or an
ISO-8601 time; the sandbox files carry no time per line, so it is decided per job from its start and
end times: a job that ended before it shows nothing, one that started after it shows everything, and
one running across it shows everything with a note on stderr saying so.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from mesos_gpu.client import ApiClient, ApiError
from mesos_gpu.commands.common import TERMINAL_JOB_STATES, api_options, client_from, reports_errors

CHUNK = 65536
#: The most bytes of a task's last lines `--tail` asks the API for (its largest read).
TAIL_BYTES = 1 << 20
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "logs",
        parents=[api_options()],
        help="show a job's output",
        description="Print the stdout (or stderr) of every task of a job from their Mesos sandboxes, each "
        "line prefixed with [role-index] when there are several; --task shows one; --follow keeps printing "
        "until the job ends.",
    )
    parser.add_argument("job_id", metavar="ID")
    parser.add_argument("--task", help="only this task (e.g. worker-0, or its Mesos task id)")
    parser.add_argument(
        "--attempt", type=int, metavar="N",
        help="launch attempt N of the task(s) (0 first; default: the latest)",
    )
    parser.add_argument("--stream", choices=("stdout", "stderr"), default="stdout")
    parser.add_argument("--tail", type=int, metavar="N", help="only the last N lines of each task")
    parser.add_argument(
        "--since", type=since_time, metavar="WHEN",
        help="only output since WHEN: a duration (30s, 10m, 1h30m, 2d) or an ISO-8601 time; decided per job "
        "from its start and end (the sandbox keeps no time per line)",
    )
    parser.add_argument(
        "--prefix", action=argparse.BooleanOptionalAction, default=None,
        help="prefix each line with [role-index] (default: when more than one task is shown)",
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new output")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between reads with --follow")
    parser.set_defaults(func=show_logs)


def since_time(text: str, now: float | None = None) -> float:
    """`--since`'s value as epoch seconds: "90s", "10m", "1h30m", "2d" before now, or an ISO-8601 time
    (UTC when it names no zone). Raises argparse.ArgumentTypeError otherwise."""
    words = text.strip()
    if re.fullmatch(r"(?:\d+(?:\.\d+)?[smhd])+", words):
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(words))
        return (time.time() if now is None else now) - seconds
    try:
        moment = datetime.fromisoformat(words)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30s, 10m, 1h30m, 2d) nor an ISO-8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def since_verdict(job: dict[str, Any], since: float | None) -> str:
    """What `--since` leaves of a job's output: "all", "none" (it ended before), or "across" (it ran
    across `since`: everything is shown, the sandbox keeping no time per line)."""
    if since is None or (job.get("started_at") or job.get("submitted_at") or 0) >= since:
        return "all"
    finished = job.get("finished_at")
    return "none" if finished is not None and finished < since else "across"


def last_lines(text: str, count: int) -> str:
    """The last `count` lines of `text` (a final line without a newline counts)."""
    if count <= 0:
        return ""
    return "".join(deque(text.splitlines(keepends=True), maxlen=count))


@dataclass
class TaskOutput:
    """One task's stream as it is read: where the next read starts, and the partial line not yet shown."""

    name: str
    label: str | None  # "[worker-0] " when lines are prefixed
    offset: int = 0
    task_id: str | None = None
    pending: str = ""
    done: bool = False
    said_waiting: bool = False
    started: bool = False  # read once (with --follow: --tail applies to that first read only)

    def lines(self, data: str, final: bool = False) -> str:
        """`data` as it is to be printed: raw without a label; else whole lines, each labelled (a partial
        last line waits for the next read, or is ended with a newline when `final`)."""
        if self.label is None:
            return data
        parts = (self.pending + data).split("\n")
        self.pending = parts.pop()
        if final and self.pending:
            parts.append(self.pending)
            self.pending = ""
        return "".join(f"{self.label}{line}\n" for line in parts)


def choose_tasks(job: dict[str, Any], wanted: str | None) -> list[str]:
    """The tasks to show: `--task` alone (as given: the API takes a name or a Mesos task id), else all."""
    return [wanted] if wanted else [task["name"] for task in job.get("tasks", [])]


def outputs_for(job: dict[str, Any], args: argparse.Namespace) -> list[TaskOutput]:
    names = choose_tasks(job, args.task)
    labelled = args.prefix if args.prefix is not None else len(names) > 1
    return [TaskOutput(name, f"[{name}] " if labelled else None) for name in names]


@reports_errors
def show_logs(args: argparse.Namespace) -> int:
    api = client_from(args)
    job = api.job(args.job_id)
    verdict = since_verdict(job, args.since)
    if verdict == "none":
        print(f"mesos-gpu: job {job['id']} ended before --since; nothing to show.", file=sys.stderr)
        return 0
    if verdict == "across":
        print(f"mesos-gpu: job {job['id']} ran across --since and the sandbox keeps no time per line: "
              "showing all of its output.", file=sys.stderr)
    outputs = outputs_for(job, args)
    if args.follow:
        return follow_logs(api, args, outputs)
    for output in outputs:
        read_all(api, args, output, sys.stdout)
    sys.stdout.flush()
    return 0


def read_chunk(api: ApiClient, args: argparse.Namespace, output: TaskOutput) -> dict[str, Any]:
    return api.logs(args.job_id, output.name, args.stream, output.offset, CHUNK, attempt=args.attempt)


def read_tail(api: ApiClient, args: argparse.Namespace, output: TaskOutput) -> dict[str, Any] | None:
    """The task's last --tail lines read by the server (`output.offset` moved past them), or None when
    the server does not read tails (its answer has no `tail`)."""
    chunk = api.logs(args.job_id, output.name, args.stream, 0, TAIL_BYTES, attempt=args.attempt,
                     tail=args.tail)
    if "tail" not in chunk:
        return None
    output.offset = chunk["next_offset"]
    if chunk.get("truncated"):
        shown = f"only the lines in the last {TAIL_BYTES >> 20} MiB shown"
        print(f"mesos-gpu: {output.name}: {shown}.", file=sys.stderr)
    return chunk


def read_all(api: ApiClient, args: argparse.Namespace, output: TaskOutput, out: TextIO) -> None:
    """Print one task's stream as it is now (its last --tail lines); a task not launched yet, or
    without the asked attempt, is said on stderr when several tasks are shown (an error otherwise)."""
    data = []
    try:
        tailed = read_tail(api, args, output) if args.tail is not None else None
        if tailed is not None:
            emit(args, output, tailed["data"], out, tailed, tail=None, final=True)
            return
        while True:
            chunk = read_chunk(api, args, output)
            if not chunk["data"]:
                break
            data.append(chunk["data"])
            output.offset = chunk["next_offset"]
    except ApiError as exc:
        if output.label is None or exc.status not in (404, 409):
            raise
        print(f"mesos-gpu: {output.name}: {exc.message}.", file=sys.stderr)
        return
    emit(args, output, "".join(data), out, chunk, tail=args.tail, final=True)


def emit(
    args: argparse.Namespace, output: TaskOutput, data: str, out: TextIO, chunk: dict[str, Any], *,
    tail: int | None, final: bool = False,
) -> None:
    """Print a task's `data`, read up to `output.offset` (its last `tail` lines when given): raw or
    labelled lines, or with --json the API's chunk object (`chunk`, the last read) holding that data,
    its `offset` and `next_offset` the bytes it spans."""
    if tail is not None:
        data = last_lines(data, tail)
    if args.json:
        if data:
            span = {"offset": output.offset - len(data.encode("utf-8")), "next_offset": output.offset}
            print(json.dumps({**chunk, "data": data, **span}), file=out, flush=True)
        return
    out.write(output.lines(data, final=final))
    out.flush()


def follow_logs(api: ApiClient, args: argparse.Namespace, outputs: list[TaskOutput]) -> int:
    """Print each task's new output as it comes, whole lines, until every task's stream has ended."""
    while not all(output.done for output in outputs):
        printed = False
        for output in outputs:
            if not output.done:
                printed = follow_once(api, args, output) or printed
        if not printed:
            time.sleep(args.interval)
    return 0


def follow_once(api: ApiClient, args: argparse.Namespace, output: TaskOutput) -> bool:
    """One read of a followed task; True when it printed something."""
    try:
        chunk = read_chunk(api, args, output)
    except ApiError as exc:
        if exc.status != 409:  # 409: not launched yet, keep waiting (unless the job has ended)
            raise
        if api.job(args.job_id)["state"] in TERMINAL_JOB_STATES:
            output.done = True
            return False
        if not output.said_waiting:
            print(f"mesos-gpu: {exc.message}; waiting.", file=sys.stderr, flush=True)
            output.said_waiting = True
        return False
    if output.task_id is not None and chunk["task_id"] != output.task_id:
        print(f"mesos-gpu: {output.name} restarted as {chunk['task_id']}.", file=sys.stderr, flush=True)
        output.offset, output.task_id = 0, chunk["task_id"]
        return True
    output.task_id = chunk["task_id"]
    if not output.started and args.tail is not None:  # its last N lines as they are now, then what comes
        output.started = True
        tailed = read_tail(api, args, output)
        if tailed is not None:
            emit(args, output, tailed["data"], sys.stdout, tailed, tail=None)
            return bool(tailed["data"])
        data = []
        while chunk["data"]:
            data.append(chunk["data"])
            output.offset = chunk["next_offset"]
            chunk = read_chunk(api, args, output)
        emit(args, output, "".join(data), sys.stdout, chunk, tail=args.tail)
        return bool(data)
    output.started = True
    if chunk["data"]:
        output.offset = chunk["next_offset"]
        emit(args, output, chunk["data"], sys.stdout, chunk, tail=None)
        return True
    earlier_attempt = args.attempt is not None and chunk.get("task_state") is None  # it has ended
    if chunk["job_state"] in TERMINAL_JOB_STATES or earlier_attempt:
        emit(args, output, "", sys.stdout, chunk, tail=None, final=True)
        output.done = True
    return False
