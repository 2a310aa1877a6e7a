"""One CUDA MPS control daemon per share host GPU: started at the host's first `mps` share
(`nvidia-cuda-mps-control -d` with CUDA_VISIBLE_DEVICES=<the GPU's uuid> and its own pipe and log
directories), stopped (`echo quit | nvidia-cuda-mps-control`) when the host exits. With the fake NVML's
`mps` switch the daemon is simulated (the directories and a log line only: simulated GPUs have no CUDA).
Without the binary an mps share fails with `MpsError`: it never runs without MPS, since a CUDA client
that finds no daemon silently runs unisolated.

    daemon = MpsDaemon(control, gpu_uuid, os.path.join(sandbox, "mps"))
    pipe, logs = daemon.ensure_started()     # MpsError with the reason
    daemon.stop()

The pipe directory lives in the sandbox (`<root>/pipe`) unless that path is too long for the daemon's
unix sockets; then it is a short `/tmp/mesos-gpu-mps-*` directory holding an `owner` file (pid and
start time of the share host), removed when the daemon stops, when it fails to start and at exit; a host
that was killed cannot remove its own, so each new one removes those whose owner is dead.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping

from isolator.proctrack import read_stat
from isolator.sharenvml import MPS_CONTROL, SIMULATED_MPS

log = logging.getLogger("isolator.sharehost")

MAX_PIPE_PATH = 80  # the daemon's sockets live in the pipe directory; unix socket paths stay < 108 bytes
PIPE_PREFIX = "mesos-gpu-mps-"
OWNER_FILE = "owner"  # "<pid> <start time>" of the share host that made a short pipe directory
NOT_ON_PATH = f"{MPS_CONTROL} is not on PATH (install the NVIDIA driver's compute utilities)"


def _owner_text(pid: int) -> str:
    info = read_stat(pid)
    return f"{pid} {info.start if info else 0}"


def remove_stale_pipe_dirs(tmp: str | None = None) -> list[str]:
    """Remove the short pipe directories of share hosts that are dead (their owner file names a process
    that is gone, or another one with its pid); the ones removed."""
    tmp = tmp or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(tmp) if n.startswith(PIPE_PREFIX)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(tmp, name)
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
            with open(os.path.join(path, OWNER_FILE)) as handle:
                pid_text, _, start = handle.read().strip().partition(" ")
        except (OSError, ValueError):
            continue  # not ours, or not made by a host that writes its owner
        if not pid_text.isdigit() or _owner_text(int(pid_text)) == f"{pid_text} {start}":
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


class MpsError(Exception):
    """The MPS daemon is missing or would not start; the message says why and what to do."""


class MpsDaemon:
    """The control daemon of one GPU (not started until the first mps share asks)."""

    def __init__(
        self,
        control: str | None,
        device_uuid: str,
        root: str,
        env: Mapping[str, str] | None = None,
        missing: str = NOT_ON_PATH,
    ) -> None:
        self.control = control
        self.missing = missing  # why there is no control binary (said when an mps share asks)
        self.device_uuid = device_uuid
        self.root = root
        self.env = dict(os.environ if env is None else env)
        self.pipe_dir = os.path.join(root, "pipe")
        self.log_dir = os.path.join(root, "log")
        self.started = False
        self._own_pipe_dir = False
        self._lock = threading.Lock()

    @property
    def simulated(self) -> bool:
        return self.control == SIMULATED_MPS

    def _daemon_env(self) -> dict[str, str]:
        env = dict(self.env)
        env.update({
            "CUDA_VISIBLE_DEVICES": self.device_uuid,
            "CUDA_MPS_PIPE_DIRECTORY": self.pipe_dir,
            "CUDA_MPS_LOG_DIRECTORY": self.log_dir,
        })  # fmt: skip
        return env

    def ensure_started(self, timeout: float = 10.0) -> tuple[str, str]:
        """Start the daemon if it is not running; its (pipe, log) directories."""
        with self._lock:
            if self.started:
                return self.pipe_dir, self.log_dir
            if self.control is None:
                raise MpsError(f"MPS is not available on this host: {self.missing}; the task is not run "
                               "without MPS")  # fmt: skip
            os.makedirs(self.log_dir, exist_ok=True)
            if len(self.pipe_dir) > MAX_PIPE_PATH:  # a deep sandbox: the sockets need a short path
                self._short_pipe_dir()
            os.makedirs(self.pipe_dir, exist_ok=True)
            try:
                if self.simulated:
                    with open(os.path.join(self.log_dir, "control.log"), "a") as handle:
                        handle.write(f"simulated MPS control daemon for {self.device_uuid} (fake NVML)\n")
                else:
                    self._start_real(timeout)
            except BaseException:
                self.remove_pipe_dir()
                raise
            self.started = True
            log.info(
                "MPS control daemon for %s: pipe %s, log %s", self.device_uuid, self.pipe_dir, self.log_dir
            )
            return self.pipe_dir, self.log_dir

    def _short_pipe_dir(self) -> None:
        for path in remove_stale_pipe_dirs():
            log.info("removed the MPS pipe directory %s of a share host that is gone", path)
        if not self._own_pipe_dir:
            self.pipe_dir = tempfile.mkdtemp(prefix=PIPE_PREFIX)
            self._own_pipe_dir = True
            with open(os.path.join(self.pipe_dir, OWNER_FILE), "w") as handle:
                handle.write(_owner_text(os.getpid()))
            atexit.register(self.remove_pipe_dir)

    def remove_pipe_dir(self) -> None:
        """Remove the short pipe directory this daemon made (never the sandbox's); never raises."""
        if self._own_pipe_dir:
            shutil.rmtree(self.pipe_dir, ignore_errors=True)

    def _start_real(self, timeout: float) -> None:
        assert self.control is not None
        try:
            done = subprocess.run([self.control, "-d"], env=self._daemon_env(), capture_output=True,
                                  text=True, timeout=timeout, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MpsError(f"the MPS control daemon would not start: {exc}") from exc
        if done.returncode != 0:
            raise MpsError(f"the MPS control daemon would not start (exit status {done.returncode}): "
                           f"{(done.stderr or done.stdout).strip() or self._log_tail()}")  # fmt: skip
        deadline = time.monotonic() + timeout
        while not os.path.exists(os.path.join(self.pipe_dir, "control")):
            if time.monotonic() >= deadline:
                raise MpsError(
                    f"the MPS control daemon did not open {self.pipe_dir}/control: {self._log_tail()}"
                )
            time.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.log_dir, "control.log")) as handle:
                return " | ".join(handle.read().strip().splitlines()[-3:]) or "its log is empty"
        except OSError:
            return "no log"

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the daemon to quit (its servers end once their clients have); never raises."""
        with self._lock:
            if not self.started:
                return
            self.started = False
            if not self.simulated and self.control is not None:
                try:
                    subprocess.run(
                        [self.control], input="quit\n", env=self._daemon_env(), capture_output=True,
                        text=True, timeout=timeout, check=False,
                    )  # fmt: skip
                except (OSError, subprocess.TimeoutExpired) as exc:
                    log.error("cannot stop the MPS control daemon: %s", exc)
            self.remove_pipe_dir()
