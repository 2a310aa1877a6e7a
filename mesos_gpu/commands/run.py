"""`mesos-gpu run [--gpus 0.5] [--image I] ... -- python train.py args`: run a command from this directory
on the cluster, as if it ran here.

The directory is uploaded (`commands.archive`, `POST /v1/uploads`) and fetched by the task as a Mesos
URI, unpacked into its sandbox; the one-task job runs `cd workdir && <command>` there. While no
capacity is free it says why it waits, polling with exponential back-off (0.5 s doubling to 30 s,
jittered) up to `--max-wait` (default: for ever); then it streams the task's stdout and stderr live and
exits with the task's exit code. Status lines go to stderr, so stdout is the task's alone.

Exit status: the task's exit code (128 + N when signal N ended it, as shells say); 0 when the job
SUCCEEDED without one; 137 when it was KILLED without one; 1 when it failed without one; 75 when
--max-wait expired (the job is killed); 130 on Ctrl-C (the job is killed); 2 for bad arguments or a
directory over the upload limit; 1 when the API refuses or cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from mesos_gpu.client import ApiClient, ApiError, ApiUnreachable
from mesos_gpu.commands.archive import RUN_DIR, ArchiveTooLargeError, build_archive, megabytes
from mesos_gpu.commands.common import (
    TERMINAL_JOB_STATES,
    api_options,
    client_from,
    positive_int,
    reports_errors,
    task_place,
)
from mesos_gpu.core.model import Isolation

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_KILLED = 137  # 128 + SIGKILL: what a shell reports for a killed command
EXIT_MAX_WAIT = 75  # EX_TEMPFAIL: no capacity in time, try again later
EXIT_INTERRUPTED = 130  # 128 + SIGINT

FIRST_POLL = 0.5
MAX_POLL = 30.0
JITTER = 0.2  # each pause is the back-off delay times a random factor in [1 - JITTER, 1 + JITTER]
LOG_POLL = 0.25
MAX_LOG_POLL = 2.0
LOG_CHUNK = 65536
UNREADABLE_TRIES = 3  # reads of an ended task's sandbox that may fail before its output is given up
DEFAULT_UPLOAD_LIMIT = 64 << 20  # when the scheduler does not say (an older one)
UPLOAD_TIMEOUT = 120.0
ISOLATION_LEVELS = tuple(level.value for level in Isolation)  # the job model's levels, in its order
LOST_API_SECONDS = 60.0  # keep retrying an unreachable API this long (a failover) before giving up


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        parents=[api_options()],
        help="run a command from this directory on the cluster",
        description="Upload this directory, run COMMAND in it as a one-task job, say why it waits while "
        "no capacity is free, stream its output and exit with its exit code. One COMMAND word is a shell "
        "command line ('python a.py | tee log'); several are run as they are (quoted for the shell).",
    )
    parser.add_argument("--gpus", type=_gpus, default=0, help="whole GPUs (1, 2) or a share (0.5); default 0")
    parser.add_argument("--gpu-memory", type=positive_int, metavar="MB", help="GPU memory of a share (MB)")
    parser.add_argument("--isolation", choices=ISOLATION_LEVELS, help="isolation of a share (default capped)")
    parser.add_argument("--image", help="a Docker image to run in")
    parser.add_argument("--cpus", type=float, help="CPUs (default: the scheduler's)")
    parser.add_argument("--mem", type=float, help="memory in MB (default: the scheduler's)")
    parser.add_argument("--name", default="run", help="the job's name (default run)")
    parser.add_argument(
        "--max-wait", type=_seconds, metavar="SECONDS", help="not started by then: kill the job, exit 75"
    )
    parser.add_argument("--no-upload", action="store_true", help="run in the bare sandbox, uploading nothing")
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="PATTERN", help="leave matching files out"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="what to run")
    parser.set_defaults(func=run_command)


def _gpus(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of GPUs: {text!r}") from None
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return int(value) if value.is_integer() else value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value


def command_line(argv: Sequence[str], in_upload: bool) -> str:
    """The shell command of the task: one word as a command line, several quoted; in the upload's dir."""
    line = argv[0] if len(argv) == 1 else shlex.join(argv)
    return f"cd {RUN_DIR} && {line}" if in_upload else line


def job_document(args: argparse.Namespace, argv: Sequence[str], uri: str | None) -> dict[str, Any]:
    """The one-task job `run` submits."""
    command = command_line(argv, uri is not None)
    doc: dict[str, Any] = {"name": args.name, "command": command, "gpus": args.gpus}
    optional = {"cpus": args.cpus, "mem": args.mem, "image": args.image, "isolation": args.isolation,
                "gpu_memory": args.gpu_memory}
    doc.update({key: value for key, value in optional.items() if value is not None})
    if uri is not None:
        doc["uris"] = [{"value": uri, "extract": True}]
    return doc


def say(err: TextIO, text: str) -> None:
    print(f"mesos-gpu: {text}", file=err, flush=True)


@reports_errors
def run_command(args: argparse.Namespace) -> int:
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        say(sys.stderr, "say what to run after --, e.g. `mesos-gpu run --gpus 0.5 -- python train.py`.")
        return EXIT_USAGE
    api = client_from(args)
    uri = None
    if not args.no_upload:
        try:
            uri = upload_directory(api, Path.cwd(), args.exclude, sys.stderr)
        except ArchiveTooLargeError as exc:
            say(sys.stderr, str(exc))
            return EXIT_USAGE
        except OSError as exc:
            say(sys.stderr, f"cannot read this directory to upload it: {exc}")
            return EXIT_USAGE
    job, _ = api.submit(job_document(args, argv, uri))
    say(sys.stderr, f"submitted job {job['id']}.")
    runner = Runner(api, job["id"], args.max_wait, sys.stdout, sys.stderr)
    try:
        final = runner.run(job)
    except KeyboardInterrupt:
        runner.kill("interrupted (Ctrl-C)")
        return EXIT_INTERRUPTED
    if final is None:
        return EXIT_MAX_WAIT
    if args.json:
        print(json.dumps(final), file=sys.stderr, flush=True)
    return exit_status(final)


def upload_directory(api: ApiClient, root: Path, exclude: Sequence[str], err: TextIO) -> str:
    """Archive `root` within the scheduler's limit, upload it, return its URI."""
    limit = api.upload_limit() or DEFAULT_UPLOAD_LIMIT
    archive = build_archive(root, limit, exclude)
    for link in archive.skipped_links:
        say(err, f"left out {link}: a symbolic link to outside the directory.")
    say(err, f"uploading {root} ({archive.files} files, {megabytes(len(archive.data))} compressed).")
    uploader = ApiClient(api.base_url, token=api.token, timeout=max(api.timeout, UPLOAD_TIMEOUT),
                         dcos_token=api.dcos_token)
    return str(uploader.upload(archive.data)["uri"])


def exit_status(job: dict[str, Any]) -> int:
    """The task's exit code, else 0 (SUCCEEDED), 137 (KILLED) or 1."""
    tasks = job.get("tasks") or [{}]
    code = tasks[0].get("exit_code")
    if code is not None:
        return int(code) & 0xFF if int(code) >= 0 else EXIT_FAILED
    if job["state"] == "SUCCEEDED":
        return 0
    return EXIT_KILLED if job["state"] == "KILLED" else EXIT_FAILED


def backoff_delays(first: float = FIRST_POLL, cap: float = MAX_POLL) -> Iterator[float]:
    """0.5, 1, 2, ... doubling up to `cap`, then `cap` for ever."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


class Runner:
    """Waits for the job's task to start (saying why it waits), then streams its output until it ends."""

    def __init__(
        self,
        api: ApiClient,
        job_id: str,
        max_wait: float | None,
        out: TextIO,
        err: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.api, self.job_id, self.max_wait = api, job_id, max_wait
        self.out, self.err = out, err
        self.clock, self.sleep, self.rng = clock, sleep, rng
        self.reason = ""

    def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The final job view, or None when --max-wait expired (the job is then killed)."""
        started = self.wait(job)
        if started is None:
            waited = f"{self.max_wait:g} s"
            self.kill(f"not started within --max-wait {waited} ({self.reason or 'no reason given'})")
            return None
        if _launched(started):
            say(self.err, f"started: {where(started['tasks'][0])}.")
        final = self.stream() if _launched(started) else started  # launched: its output, ended or not
        self.report(final)
        return final

    # -- waiting --------------------------------------------------------------------------------------
    def wait(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """Poll with back-off until the task is launched or the job ended; None when max_wait expires."""
        start = self.clock()
        for delay in backoff_delays():
            if job["terminal"] or _launched(job):
                return job
            waited = self.clock() - start
            self.tell_why(job, waited)
            if self.max_wait is not None and waited >= self.max_wait:
                return None
            pause = delay * (1 - JITTER + 2 * JITTER * self.rng())
            if self.max_wait is not None:
                pause = min(pause, self.max_wait - waited)
            self.sleep(pause)
            job = self.fetch_job(job)
        raise AssertionError("unreachable")

    def tell_why(self, job: dict[str, Any], waited: float) -> None:
        reason = job.get("wait_reason") or job.get("message") or f"the job is {job['state']}"
        if reason != self.reason:
            self.reason = reason
            say(self.err, f"waiting ({waited:.0f} s): {reason}")

    def fetch_job(self, last: dict[str, Any]) -> dict[str, Any]:
        """The job now; while the API is unreachable (a failover), the last view, for up to a minute."""
        lost_since: float | None = None
        while True:
            try:
                return self.api.job(self.job_id)
            except ApiUnreachable:
                lost_since = lost_since if lost_since is not None else self.clock()
                if self.clock() - lost_since > LOST_API_SECONDS:
                    raise
                self.sleep(1.0)

    # -- streaming ------------------------------------------------------------------------------------
    def stream(self) -> dict[str, Any]:
        """Copy the task's stdout and stderr as they grow; return the job once it ended and both are read
        (or, when its sandbox cannot be read, a few tries after it ended)."""
        streams = {"stdout": self.out, "stderr": self.err}
        offsets = dict.fromkeys(streams, 0)
        task_id: str | None = None
        pause, unreadable = LOG_POLL, 0
        while True:
            progressed, states = False, []
            for stream, sink in streams.items():
                chunk = self.read(stream, offsets[stream])
                states.append(None if chunk is None else chunk["job_state"])
                if chunk is None:
                    continue
                if task_id is not None and chunk["task_id"] != task_id:
                    say(self.err, f"the task restarted as {chunk['task_id']}.")
                    offsets, task_id, progressed = dict.fromkeys(streams, 0), chunk["task_id"], True
                    break
                task_id = chunk["task_id"]
                if chunk["data"]:
                    sink.write(chunk["data"])
                    sink.flush()
                    offsets[stream] = chunk["next_offset"]
                    progressed = True
            if progressed:
                pause = LOG_POLL
                continue
            if None in states:
                unreadable += 1 if self.fetch_job({})["terminal"] else 0
                done = unreadable >= UNREADABLE_TRIES
            else:
                done = all(state in TERMINAL_JOB_STATES for state in states)
            if done:
                return self.fetch_job({})
            self.sleep(pause)
            pause = min(pause * 2, MAX_LOG_POLL)

    def read(self, stream: str, offset: int) -> dict[str, Any] | None:
        """A chunk of `stream`, or None while it cannot be read (sandbox not there yet, agent busy)."""
        try:
            return self.api.logs(self.job_id, None, stream, offset, LOG_CHUNK)
        except ApiError as exc:
            if exc.status in (404, 409, 502, 503, 504):
                return None
            raise
        except ApiUnreachable:
            return None

    # -- the end --------------------------------------------------------------------------------------
    def report(self, job: dict[str, Any]) -> None:
        task = (job.get("tasks") or [{}])[0]
        detail = f", exit code {task['exit_code']}" if task.get("exit_code") is not None else ""
        text = task.get("message") or ""
        restated = "exited with status" in text  # the exit code says it already
        message = f": {text}" if text and not restated and job["state"] != "SUCCEEDED" else ""
        status = exit_status(job)
        say(self.err, f"job {job['id']} ended {job['state']}{detail}{message}; exit status {status}.")

    def kill(self, why: str) -> None:
        try:
            self.api.kill(self.job_id)
            say(self.err, f"{why}; killed job {self.job_id}.")
        except (ApiError, ApiUnreachable) as exc:
            say(self.err, f"{why}; could not kill job {self.job_id}: {exc} Kill it with "
                f"`mesos-gpu kill {self.job_id}`.")


def where(task: dict[str, Any]) -> str:
    """Where a task runs and with what GPU isolation, e.g. "on 10.0.0.5 (S1), 0.5 GPU, capped isolation
    (the share host's NVML watchdog ...)"."""
    gpus = task.get("gpus") or 0
    text = f"{task.get('name') or 'the task'} on {task_place(task)}"
    if not gpus:
        return text + ", no GPU"
    amount = f"{gpus['min']}-{gpus['max']}" if isinstance(gpus, dict) else f"{gpus}"
    enforced = (task.get("enforced") or {}).get("enforced_by")
    by = f" (enforced by {enforced})" if enforced else ""
    return f"{text}, {amount} GPU, {task.get('isolation', 'exclusive')} isolation{by}"


def _launched(job: dict[str, Any]) -> bool:
    return any(task.get("task_id") for task in job.get("tasks", []))


