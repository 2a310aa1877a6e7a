"""A task container's stdout and stderr into the executor's sandbox: streamed while the container runs
(`docker logs --follow`, so `mesos-gpu logs --follow` shows a training job's progress as it happens),
through this process's own stdout/stderr (which Mesos' container logger owns, file or pipe) or appended
to the sandbox files of those names; copied whole when it could not be followed."""

from __future__ import annotations

import logging
import os
import sys
import threading

from isolator.docker import DockerLauncher, DockerLaunchError, LogFollower

log = logging.getLogger("isolator.executor")

OUTPUT_DRAIN_SECONDS = 10.0  # how long an exited container's output may take to arrive in full


class SandboxOutput:
    """Writes container output into one sandbox; safe to use from several tasks' threads."""

    def __init__(self, sandbox: str, to_stdio: bool) -> None:
        self.sandbox = sandbox
        self.to_stdio = to_stdio
        self._lock = threading.Lock()

    def write(self, stream: str, data: bytes) -> None:
        """One chunk of the "stdout" or "stderr" stream."""
        if self.to_stdio:
            target = sys.stdout if stream == "stdout" else sys.stderr
            with self._lock:
                target.flush()
                target.buffer.write(data)
                target.buffer.flush()
            return
        with self._lock, open(os.path.join(self.sandbox, stream), "ab") as handle:
            handle.write(data)

    def follow(self, launcher: DockerLauncher, container_id: str) -> LogFollower | None:
        """Start streaming the container's output; None when it cannot be followed (see `finish`)."""
        try:
            return launcher.follow_logs(container_id, self.write)
        except (DockerLaunchError, OSError, RuntimeError) as exc:
            log.warning("cannot follow the output of %s: %s", container_id[:12], exc)
            return None

    def finish(self, launcher: DockerLauncher, container_id: str, follower: LogFollower | None) -> None:
        """After the container exited: wait for the streams to end; copy whole what was not followed."""
        if follower is not None:
            for problem in follower.finish(OUTPUT_DRAIN_SECONDS):
                log.warning("%s", problem)
            return
        try:
            out, err = launcher.logs(container_id)
            for name, data in (("stdout", out), ("stderr", err)):
                if data:
                    self.write(name, data)
        except (DockerLaunchError, OSError) as exc:
            log.warning("cannot copy the output of %s: %s", container_id[:12], exc)
