"""One CUDA MPS control daemon per share host GPU: started at the host's first `mps` share
(`nvidia-cuda-mps-control -d` with CUDA_VISIBLE_DEVICES=<the GPU's uuid> and its own pipe and log
directories), stopped (`echo quit | nvidia-cuda-mps-control`) when the host exits. With the fake NVML's
`mps` switch the daemon is simulated (the directories and a log line only: simulated GPUs have no CUDA).
Without the binary an mps share fails with `MpsError`: it never runs without MPS, since a CUDA client
that finds no daemon silently runs unisolated.

    daemon = MpsDaemon(control, gpu_uuid, os.path.join(sandbox, "mps"))
    pipe, logs = daemon.ensure_started()     # MpsError with the reason
    daemon.stop()
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping

from isolator.sharenvml import MPS_CONTROL, SIMULATED_MPS

log = logging.getLogger("isolator.sharehost")

MAX_PIPE_PATH = 80  # the daemon's sockets live in the pipe directory; unix socket paths stay < 108 bytes


class MpsError(Exception):
    """The MPS daemon is missing or would not start; the message says why and what to do."""


class MpsDaemon:
    """The control daemon of one GPU (not started until the first mps share asks)."""

    def __init__(
        self, control: str | None, device_uuid: str, root: str, env: Mapping[str, str] | None = None
    ) -> None:
        self.control = control
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
                raise MpsError(
                    f"MPS is not available on this host: {MPS_CONTROL} is not on PATH (install the "
                    "NVIDIA driver's compute utilities); the task is not run without MPS"
                )
            os.makedirs(self.log_dir, exist_ok=True)
            if len(self.pipe_dir) > MAX_PIPE_PATH:  # a deep sandbox: the sockets need a short path
                self.pipe_dir = tempfile.mkdtemp(prefix="mesos-gpu-mps-")
                self._own_pipe_dir = True
            os.makedirs(self.pipe_dir, exist_ok=True)
            if self.simulated:
                with open(os.path.join(self.log_dir, "control.log"), "a") as handle:
                    handle.write(f"simulated MPS control daemon for {self.device_uuid} (fake NVML)\n")
            else:
                self._start_real(timeout)
            self.started = True
            log.info(
                "MPS control daemon for %s: pipe %s, log %s", self.device_uuid, self.pipe_dir, self.log_dir
            )
            return self.pipe_dir, self.log_dir

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
            if self._own_pipe_dir:
                shutil.rmtree(self.pipe_dir, ignore_errors=True)
