"""Ctrl-C stops `mesos-gpu simulate` at once: the queued runs are cancelled, the workers stopped, one line
"interrupted", exit status 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.sim.tracefiles import write_nodes, write_tasks

SEEDS = 40      # about 1 s each on 2,000 nodes: the queue would keep a run going for ~20 s on 2 workers
BOUND = 8.0     # seconds from SIGINT to exit (it takes well under 1 s)


def test_sigint_during_a_parallel_fill_stops_it(tmp_path: Path) -> None:
    nodes = write_nodes(tmp_path / "nodes.csv", [(f"n{i}", 64_000, 262_144, 8) for i in range(2_000)])
    tasks = write_tasks(tmp_path / "tasks.csv", [("a", 0, 10, 1, 1000, 2000, 1024),
                                                 ("b", 0, 10, 2, 1000, 4000, 1024),
                                                 ("c", 0, 10, 1, 300, 1000, 1024)])
    argv = [sys.executable, "-m", "mesos_gpu.cli", "simulate", "fill", "--nodes", str(nodes), "--tasks",
            str(tasks), "--policies", "default", "--seeds", str(SEEDS), "--jobs", "2", "--progress",
            "--out", str(tmp_path / "out")]
    # Its own process group, as a shell gives a job: SIGINT to the group reaches the workers too.
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          start_new_session=True) as process:
        try:
            assert process.stderr is not None
            seen = b""
            while f" 1/{SEEDS} ".encode() not in seen:      # the first run is done: the pool is busy
                chunk = process.stderr.read1(4096)
                assert chunk, seen.decode(errors="replace")
                seen += chunk
            os.killpg(process.pid, signal.SIGINT)
            sent = time.monotonic()
            rest = process.stderr.read()
            code = process.wait(timeout=60)
            took = time.monotonic() - sent
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    lines = (seen + rest).decode().replace("\r", "\n").splitlines()
    assert code == 130
    assert lines[-1] == "interrupted"
    assert not any("Traceback" in line for line in lines)
    assert took < BOUND, f"{took:.1f} s after SIGINT"
