"""A host process's whole session ends with it, as a destroyed container takes every process of its
cgroup: a share host's tasks run in their own process groups of its session, and a crashed share host
must not leave them running (Mesos then reports them ended, and they must be gone)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from mesos_gpu.local.agent.runners import HostRunner, LaunchSpec
from tests.waiting import wait_until


class _Loop:
    def add_callback(self, callback: Any, *args: Any) -> None:
        callback(*args)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_processes_in_other_groups_of_the_session_die_with_the_leader(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    # The leader starts a child in a process group of its own (as the share host runs each task), then
    # exits with status 3 as if it crashed.
    script = (
        "import subprocess, sys, pathlib;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], process_group=0);"
        f"pathlib.Path({str(child_pid)!r}).write_text(str(p.pid));"
        "sys.exit(3)"
    )
    ended = threading.Event()
    statuses: list[int] = []

    def on_exit(status: int) -> None:
        statuses.append(status)
        ended.set()

    spec = LaunchSpec([sys.executable, "-c", script], dict(os.environ), tmp_path, tmp_path / "stdout",
                      tmp_path / "stderr")
    HostRunner(_Loop()).start(spec, on_exit)
    assert ended.wait(30)
    pid = int(child_pid.read_text())
    wait_until(lambda: not _alive(pid), timeout=10, what=f"child {pid} of the ended session to end")
    assert os.WEXITSTATUS(statuses[0]) == 3
