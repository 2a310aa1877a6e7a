"""The soak's three `mesos-gpu scheduler` processes (the real command, each on its own loopback API port).

An instance is known by its API URL, which is also the `webui_url` of its FrameworkInfo (what the
audit sees in each SUBSCRIBE). `kill9` / `pause` / `resume` signal one; `restart` runs it again on the
same port (a supervisor such as Marathon would).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from mesos_gpu.local.zookeeper import free_port

REPO = Path(__file__).resolve().parents[2]


class SchedulerInstance:
    """One `mesos-gpu scheduler` process; its log goes to `<logdir>/<port>.log` (appended across runs)."""

    def __init__(self, master: str, zk_url: str, logdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logdir / f"scheduler-{self.port}.log"
        self._args = [sys.executable, "-m", "mesos_gpu.cli", "scheduler", "--master", master, "--zk", zk_url,
                      "--name", "soak", "--api-host", "127.0.0.1", "--api-port", str(self.port),
                      "--advertised-host", "127.0.0.1", "--log-level", "INFO"]
        self._env = {**os.environ, **env}
        self._log_file: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    def start(self) -> None:
        if self._log_file is None:
            self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(self._args, cwd=REPO, env=self._env, stdin=subprocess.DEVNULL,
                                        stdout=self._log_file, stderr=subprocess.STDOUT)
        self.paused = False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.paused = False

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self) -> None:
        self.kill9()
        self.start()

    def close(self) -> None:
        """Resume if paused, then SIGKILL (a soak's leftover scheduler has nothing to hand over)."""
        self.resume()
        self.kill9()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


class SchedulerGroup:
    """`count` instances of one framework; `by_url` finds the one the master names as subscribed."""

    def __init__(self, count: int, master: str, zk_url: str, logdir: Path, env: dict[str, str]) -> None:
        self.instances = [SchedulerInstance(master, zk_url, logdir, env) for _ in range(count)]

    @property
    def urls(self) -> list[str]:
        return [instance.url for instance in self.instances]

    def start(self) -> None:
        for instance in self.instances:
            instance.start()

    def by_url(self, url: str | None) -> SchedulerInstance | None:
        return next((i for i in self.instances if url is not None and url.rstrip("/") == i.url), None)

    def close(self) -> None:
        for instance in self.instances:
            instance.close()
