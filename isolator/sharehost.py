"""The share host executor (`python -m isolator.sharehost`, `mesos-gpu-sharehost`): a pymesos custom
executor whose ExecutorInfo holds one whole GPU from an offer and which runs fractional GPU shares on it
(`isolator.sharerunner.ShareHost` does the work; this module holds pymesos' callbacks and `main`).

ExecutorInfo.data (base64 JSON): {"host", "isolation", "linger_seconds", "device_memory", "mig_layout"}.
Its GPU: the devices cgroup, else NVIDIA_/CUDA_VISIBLE_DEVICES (the local agent), as
`isolator.devices` finds it; NVML (`--fake-gpus SPEC` / MESOS_GPU_FAKE_GPUS for the fake) gives its
uuid, memory and MIG instances. Each share task's TaskInfo.data: {"command", "image", "uris", "env",
"share", "resources", "kill_grace_seconds"}. The host exits (driver stopped, its GPU returns to Mesos)
once a task has ended and none has run for `linger_seconds` (before its first task: at least a minute),
or on SHUTDOWN; on SIGTERM it kills its tasks, stops the MPS daemon and exits. If it dies, Mesos reports
its tasks lost.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pymesos import MesosExecutorDriver

from isolator.docker import DockerLauncher
from isolator.executor import RunnerCallbacks
from isolator.executorconfig import ExecutorConfig, build_parser, config_from
from isolator.nvml import PynvmlBackend
from isolator.sharenvml import ShareNvml
from isolator.sharerunner import ShareHost
from isolator.shares import HostSettings, ShareError, decode_host_settings
from mesos_gpu.core.model import Isolation

log = logging.getLogger("isolator.sharehost")


class ShareHostExecutor(RunnerCallbacks):
    """The share host's pymesos callbacks (the shared ones in `RunnerCallbacks`); `ShareHost` does the
    work. Each returns at once and never raises."""

    def __init__(
        self,
        config: ExecutorConfig,
        env: Mapping[str, str],
        backend: ShareNvml | None,
        launcher_factory: Callable[[], DockerLauncher] | None = None,
    ) -> None:
        self.config = config
        self.runner: ShareHost = ShareHost(config, env, backend, launcher_factory, on_idle=self._stop_driver)
        self.framework_info: Mapping[str, Any] | None = None
        self.finished = threading.Event()

    def registered(self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any) -> None:
        try:
            self.framework_info = framework_info
            try:
                settings, error = (
                    decode_host_settings((executor_info or {}).get("data"), self.config.executor_id),
                    "",
                )
            except ShareError as exc:
                settings, error = HostSettings(self.config.executor_id, Isolation.SHARED), str(exc)
            self.runner.open(settings, driver, error)
            log.info("registered with agent %s", (agent_info or {}).get("hostname"))
        except Exception:
            log.exception("registered failed")

    def _stop_driver(self, driver: Any) -> None:
        if self.finished.is_set():
            return
        self.finished.set()
        try:
            driver.stop()
        except Exception:
            log.exception("driver.stop failed")


def backend_for(config: ExecutorConfig) -> ShareNvml | None:
    """The fake NVML of `--fake-gpus` / MESOS_GPU_FAKE_GPUS, else the real one (None without pynvml)."""
    if config.fake_gpus:
        from isolator.fakenvml import parse_fake_spec

        return parse_fake_spec(config.fake_gpus)
    try:
        return PynvmlBackend()
    except ImportError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(
        "python -m isolator.sharehost",
        "mesos-gpu's share host: runs fractional GPU shares on the one GPU Mesos gave it (started by a "
        "Mesos agent as a custom executor, not by hand).",
    )
    config, level = config_from(argv, os.environ, parser)
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not config.framework_id or not config.executor_id:
        log.error("MESOS_FRAMEWORK_ID and MESOS_EXECUTOR_ID must be set: this runs under a Mesos agent")
        return 2
    executor = ShareHostExecutor(config, os.environ, backend_for(config))
    driver = MesosExecutorDriver(executor, use_addict=True)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        driver.run()
    except _TerminatedError:
        log.warning("SIGTERM: the share host kills its tasks and exits")
        executor.runner.close()  # its tasks' processes, the MPS daemon and its short pipe directory
        logging.shutdown()
        os._exit(143)  # pymesos' threads would keep the interpreter alive
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    executor.runner.close()
    log.info("share host %s exits", config.executor_id)
    return 0


class _TerminatedError(Exception):
    """SIGTERM arrived (an agent or an operator stopping the host)."""


def _terminated(signum: int, frame: Any) -> None:
    raise _TerminatedError()


if __name__ == "__main__":
    sys.exit(main())
