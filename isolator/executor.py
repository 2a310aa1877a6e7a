"""The nvidia-docker executor (`python -m isolator.executor`): a pymesos custom executor that runs each
task's image through the Docker Engine on exactly the GPUs Mesos gave its container. This module is
the pymesos side (pymesos' and addict's only home in isolator): the callbacks, which hand the work to
`isolator.taskrunner.TaskRunner`, and the process's `main`.

Per task (one container each): STARTING; decode the payload (base64 JSON `{"image", "command", "uris",
["network"]}` from TaskInfo.data, else ExecutorInfo.data); choose the GPUs (`isolator.devices`: devices
cgroup, then NVIDIA_/CUDA_VISIBLE_DEVICES, then the host's `ExclusiveGpuAllocator`); start the container
(GPU device request for exactly those devices, CPU and memory limits from the task's resources, the
sandbox mounted at /mnt/mesos/sandbox and used as working directory, labels with framework, executor,
task and agent ids); RUNNING; stream the container's stdout/stderr into the sandbox's; wait; remove the
container, release the devices; then FINISHED ("Command exited with status 0") or FAILED ("Command
exited with status N", label `exit_code`). A container that cannot start gives FAILED with the engine's
message and REASON_CONTAINER_LAUNCH_FAILED. KILL stops the container (SIGTERM, SIGKILL after the task's
kill_policy grace, else MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD) and sends KILLED; SHUTDOWN does that for
every task within the shutdown grace period. The executor exits when its last task has ended. At start
it removes the containers an earlier run of the same executor id left behind and frees their devices.

Network: `host` by default (Mesos' docker containerizer default; TF members bind the offered PORT0 on
the agent's address, which needs the host's network namespace); `--network` or the payload's
"network" picks another (e.g. `none`). The engine: `--docker-host` / MESOS_GPU_DOCKER_HOST, else the
SDK's DOCKER_HOST environment (`isolator.executorconfig`). The container's output is streamed while it
runs (`isolator.sandboxoutput`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pymesos import Executor, MesosExecutorDriver

from isolator.devices import GpuInventory
from isolator.docker import DockerLauncher
from isolator.executorconfig import ExecutorConfig, config_from
from isolator.taskrunner import REASON_LAUNCH_FAILED, TaskRunner

log = logging.getLogger("isolator.executor")


class RunnerCallbacks(Executor):  # type: ignore[misc,unused-ignore]  # pymesos is untyped
    """The pymesos callbacks both of our executors share: each hands the work to `self.runner` (the
    docker executor's `TaskRunner`, the share host's `ShareHost`: `start`, `kill`, `stop_all`,
    `updates`), returns at once and never raises. Subclasses set `config`, `runner` and
    `framework_info`, and add `registered`."""

    config: ExecutorConfig
    runner: Any
    framework_info: Mapping[str, Any] | None
    _shutting_down = False

    def reregistered(self, driver: Any, agent_info: Any) -> None:
        log.info("re-registered with the agent")

    def disconnected(self, driver: Any) -> None:
        log.warning("disconnected from the agent")

    def launchTask(self, driver: Any, task: Any) -> None:  # noqa: N802 - pymesos' name
        try:
            self.runner.start(driver, task)
        except Exception as exc:
            log.exception("launchTask failed")
            broken = _task_id_of(task)
            if broken is not None:
                message = f"Executor error: {exc}"
                self.runner.updates.send_async(driver, broken, "TASK_FAILED", message, REASON_LAUNCH_FAILED)

    def launchTaskGroup(self, driver: Any, task_infos: Any) -> None:  # noqa: N802 - pymesos' name
        for task in task_infos or []:
            self.launchTask(driver, task)

    def killTask(self, driver: Any, task_id: Any) -> None:  # noqa: N802 - pymesos' name
        try:
            self.runner.kill(driver, str(task_id["value"]), self._has_capability("TASK_KILLING_STATE"))
        except Exception:
            log.exception("killTask failed")

    def frameworkMessage(self, driver: Any, message: Any) -> None:  # noqa: N802 - pymesos' name
        log.info("framework message ignored (%d bytes of base64)", len(message or ""))

    def shutdown(self, driver: Any) -> None:
        """Stop every task within the shutdown grace period (pymesos SIGKILLs this process group when it
        ends), send KILLED for each, release everything."""
        try:
            self._shutting_down = True
            self.runner.stop_all(max(0.0, self.config.shutdown_grace - 1.0))
        except Exception:
            log.exception("shutdown failed")

    def error(self, driver: Any, message: Any) -> None:
        log.error("error from the agent: %s", message)

    def _has_capability(self, name: str) -> bool:
        capabilities = (self.framework_info or {}).get("capabilities") or []
        return any(isinstance(c, Mapping) and c.get("type") == name for c in capabilities)


class DockerExecutor(RunnerCallbacks):
    """The docker executor: `TaskRunner` does the work; it exits once every task has ended."""

    def __init__(
        self,
        config: ExecutorConfig,
        env: Mapping[str, str],
        launcher_factory: Callable[[], DockerLauncher] | None = None,
        inventory: GpuInventory | None = None,
    ) -> None:
        self.config = config
        self.runner = TaskRunner(config, env, launcher_factory, inventory, on_ended=self._maybe_exit)
        self.framework_info: Mapping[str, Any] | None = None
        self._lock = threading.Lock()
        self._shutting_down = False
        self.finished = threading.Event()  # set once the driver was asked to stop

    def remove_orphans(self) -> list[str]:
        """What an earlier run of this executor left: see `TaskRunner.remove_orphans`."""
        return self.runner.remove_orphans()

    def close(self) -> None:
        """After the driver stopped: stop and remove whatever still runs, release every grant."""
        self.runner.close()

    # ---- pymesos callbacks ----

    def registered(self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any) -> None:
        try:
            self.runner.executor_info, self.framework_info = executor_info, framework_info
            log.info("registered with agent %s", (agent_info or {}).get("hostname"))
        except Exception:
            log.exception("registered failed")

    # ---- the executor's own life ----

    def _maybe_exit(self, driver: Any) -> None:
        """Stop the driver once every task has ended (after a short delay for the agent's ACKs)."""

        def later() -> None:
            time.sleep(self.config.exit_delay)
            with self._lock:
                if not self.runner.all_ended() or self.finished.is_set():
                    return
                self.finished.set()
            log.info("every task has ended: stopping the executor")
            try:
                driver.stop()
            except Exception:
                log.exception("driver.stop failed")

        if self._shutting_down or not self.runner.all_ended():
            return
        threading.Thread(target=later, name="exit", daemon=True).start()


def _task_id_of(task: Any) -> str | None:
    try:
        return str(task["task_id"]["value"])
    except Exception:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    config, level = config_from(argv, os.environ)
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not config.framework_id or not config.executor_id:
        log.error("MESOS_FRAMEWORK_ID and MESOS_EXECUTOR_ID must be set: this runs under a Mesos agent")
        return 2
    executor = DockerExecutor(config, os.environ)
    removed = executor.remove_orphans()
    if removed:
        log.warning("removed %d orphan container(s) of executor %s", len(removed), config.executor_id)
    driver = MesosExecutorDriver(executor, use_addict=True)
    driver.run()
    executor.close()
    log.info("executor %s exits", config.executor_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
