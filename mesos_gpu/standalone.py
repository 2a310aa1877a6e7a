"""`mesos-gpu local`: everything on one machine: a ZooKeeper server, the embedded Mesos cluster (2 agents
with 2 simulated GPUs each by default), the scheduler on the ZooKeeper store, and the REST API on
`http://127.0.0.1:PORT`. `Standalone` is the context manager (tests, `make demo`); `run_standalone`
prints the URL and runs until Ctrl-C or SIGTERM, then stops everything it started, in reverse order.
"""

from __future__ import annotations

import getpass
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO, TypeVar

from mesos_gpu import gcpolicy
from mesos_gpu.api.server import ApiServer
from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.zookeeper import ZooKeeperServer
from mesos_gpu.scheduler_main import SchedulerProcess
from mesos_gpu.store.zk import ZooKeeperStore, connect

log = logging.getLogger(__name__)

ZK_BASE = "/mesos-gpu"
READY_TIMEOUT = 60.0


def local_share_host_command() -> str:
    """The share host command for agents on this machine: this interpreter, `-m isolator.sharehost`."""
    return f"{shlex.quote(sys.executable)} -m isolator.sharehost"


def local_docker_executor_command() -> str:
    """The Docker executor command for agents on this machine: this interpreter, `-m isolator.executor`
    (so `.venv/bin/mesos-gpu local` works without the virtualenv activated)."""
    return f"{shlex.quote(sys.executable)} -m isolator.executor"


class StandaloneError(RuntimeError):
    """A part of the local stack could not start; the message says which and why."""


#: The scheduler variables `mesos-gpu local` honours (the rest of its settings are its own).
LOCAL_VARIABLES = (ENV.SHARE_HOST_COMMAND, ENV.DOCKER_EXECUTOR_COMMAND, ENV.SHARE_LINGER, ENV.UPLOAD_MAX_MB,
                   ENV.SHARE_HOSTS, ENV.PLACEMENT_STRATEGY, ENV.BACKFILL,
                   ENV.TENANTS_FILE, ENV.API_TOKENS, ENV.API_TOKENS_FILE, ENV.API_AUTH_READS,
                   ENV.RETENTION_SECONDS, ENV.RETENTION_MAX_FINISHED, ENV.PREEMPTION, ENV.PREEMPTION_GRACE)


def local_settings(env: Mapping[str, str]) -> SchedulerSettings:
    """The settings of LOCAL_VARIABLES from `env`; the share host command defaults to
    `local_share_host_command()`, the Docker executor's to `local_docker_executor_command()`.
    StandaloneError naming each bad variable."""
    chosen = {name: env[name] for name in LOCAL_VARIABLES if name in env}
    chosen.setdefault(ENV.SHARE_HOST_COMMAND, local_share_host_command())
    chosen.setdefault(ENV.DOCKER_EXECUTOR_COMMAND, local_docker_executor_command())
    try:
        return SchedulerSettings.from_env(chosen)
    except ValidationError as exc:
        raise StandaloneError(str(exc)) from None


T = TypeVar("T")


def _first(value: T | None, default: T) -> T:
    return default if value is None else value


@dataclass
class Standalone:
    """ZooKeeper + local Mesos cluster + scheduler + API, started together and stopped together.

    Example::

        with Standalone(agents=2, gpus_per_agent=2) as local:
            ApiClient(local.api_url).submit({"name": "hi", "command": "echo hi"})

    `zk_hosts`: use this ZooKeeper ("host:port") instead of starting one. `cluster_options` go to
    `LocalCluster`. `api_tokens`: require bearer tokens for writes. `share_host_command`: how agents
    start a share host; `share_linger_seconds`: how long an empty one keeps its GPU; `upload_max_mb`:
    the largest upload. Each one left None comes from its variable (MESOS_GPU_SHARE_HOST_COMMAND,
    MESOS_GPU_SHARE_LINGER_SECONDS, MESOS_GPU_UPLOAD_MAX_MB) when set, else its default; the share
    host command's is `local_share_host_command()` (this interpreter, so no virtualenv needs to be
    activated). Uploads go to `<workdir>/uploads` when a workdir is given, else a temporary directory.
    """

    host: str = "127.0.0.1"
    port: int = 0
    agents: int = 2
    gpus_per_agent: int | None = 2
    framework_name: str = "mesos-gpu"
    workdir: Path | str | None = None
    zk_hosts: str | None = None
    api_tokens: tuple[str, ...] = ()
    tick_seconds: float = 1.0
    cluster_options: dict[str, Any] = field(default_factory=dict)
    share_host_command: str | None = None
    share_linger_seconds: float | None = None
    upload_max_mb: int | None = None

    zookeeper: ZooKeeperServer | None = field(default=None, init=False)
    cluster: LocalCluster | None = field(default=None, init=False)
    store: ZooKeeperStore | None = field(default=None, init=False)
    runtime: SchedulerRuntime | None = field(default=None, init=False)
    process: SchedulerProcess | None = field(default=None, init=False)
    server: ApiServer | None = field(default=None, init=False)

    @property
    def api_url(self) -> str:
        assert self.server is not None, "Standalone.start() first"
        return self.server.url

    @property
    def zk_url(self) -> str:
        """The framework's chroot (`zk://host:port/mesos-gpu/<name>`)."""
        return f"zk://{self._zk_hosts}{ZK_BASE}/{self.framework_name}"

    @property
    def _zk_hosts(self) -> str:
        if self.zk_hosts is not None:
            return self.zk_hosts
        assert self.zookeeper is not None
        return self.zookeeper.hosts

    def start(self) -> Standalone:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        local = local_settings(os.environ)  # first: a bad variable fails before anything starts
        self.server = ApiServer(self.host, self.port)
        port = self.server.bind()  # first: a busy port fails before anything else starts
        if self.zk_hosts is None:
            self.zookeeper = ZooKeeperServer(host=self.host).start()
        cluster = LocalCluster(
            agents=self.agents,
            gpus_per_agent=self.gpus_per_agent,
            workdir=self.workdir,
            host=self.host,
            **self.cluster_options,
        )
        self.cluster = cluster.start()
        self.store = connect(f"zk://{self._zk_hosts}{ZK_BASE}", self.framework_name, timeout=15.0)
        settings = SchedulerSettings(
            framework_name=self.framework_name,
            master=cluster.master_address,
            zk_url=f"zk://{self._zk_hosts}{ZK_BASE}",
            user=getpass.getuser(),
            api_host=self.host,
            api_port=port,
            api_tokens=self.api_tokens or local.api_tokens,
            cpu_tasks_on_gpu_agents="fallback",
            share_host_command=self.share_host_command or local.share_host_command,
            docker_executor_command=local.docker_executor_command,
            share_linger_seconds=_first(self.share_linger_seconds, local.share_linger_seconds),
            upload_max_mb=_first(self.upload_max_mb, local.upload_max_mb),
            share_hosts=local.share_hosts,
            placement_strategy=local.placement_strategy,
            backfill=local.backfill,
            upload_dir=str(Path(self.workdir).resolve() / "uploads") if self.workdir else None,
            tenants_file=local.tenants_file,
            api_tokens_file=local.api_tokens_file,
            api_auth_reads=local.api_auth_reads,
            retention_seconds=local.retention_seconds,
            retention_max_finished=local.retention_max_finished,
            preemption=local.preemption,
            preemption_grace_seconds=local.preemption_grace_seconds,
        )
        self.process = SchedulerProcess(
            settings, store=self.store, server=self.server, tick_seconds=self.tick_seconds
        ).start()
        self.runtime = self.process.runtime
        assert self.runtime is not None
        self._wait_ready(self.runtime)

    @staticmethod
    def _wait_ready(runtime: SchedulerRuntime) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (runtime.is_leader and runtime.mesos_connected):
            if time.monotonic() > deadline:
                raise StandaloneError(
                    f"the scheduler did not {'subscribe to Mesos' if runtime.is_leader else 'become leader'} "
                    f"within {READY_TIMEOUT:.0f} s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop what was started, newest first; every part is stopped even if another fails."""
        steps = [
            ("the scheduler and its API", self.process, "stop"),
            ("the local cluster", self.cluster, "stop"),
            ("the ZooKeeper store", self.store, "close"),
            ("ZooKeeper", self.zookeeper, "stop"),
        ]
        for what, part, method in steps:
            if part is None:
                continue
            try:
                getattr(part, method)()
            except Exception:
                log.exception("failed to stop %s", what)
        self.process = self.server = self.runtime = self.cluster = self.store = self.zookeeper = None

    def __enter__(self) -> Standalone:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_standalone(local: Standalone, out: TextIO, stop: threading.Event | None = None) -> int:
    """Start `local`, print its API URL to `out`, run until Ctrl-C / SIGTERM (or `stop` is set), stop it.

    Call from the main thread (signal handlers). Returns the process exit status.
    """
    stop = stop or threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    started = False
    try:
        local.start()
        started = True
        gcpolicy.configure(os.environ)
        assert local.cluster is not None and local.runtime is not None
        print(f"mesos-gpu local is running: API {local.api_url}", file=out)
        print(f"  web page: {local.api_url}/", file=out)
        print(
            f"  Mesos master http://{local.cluster.master_address}, {local.agents} agent(s) with "
            f"{local.gpus_per_agent if local.gpus_per_agent is not None else 'the host'} GPU(s) each; "
            f"ZooKeeper {local.zk_url}",
            file=out,
        )
        print(f"  try: MESOS_GPU_API={local.api_url} mesos-gpu cluster", file=out)
        print("Press Ctrl-C to stop.", file=out, flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if started:
            print("Stopping mesos-gpu local...", file=out, flush=True)
        local.stop()
        signal.signal(signal.SIGTERM, previous)
