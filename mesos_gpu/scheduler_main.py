"""`mesos-gpu scheduler`: the scheduler process (composition).

Settings from the environment (`mesos_gpu.core.config`, flags override variables) -> the ZooKeeper store ->
`SchedulerRuntime` (leader election, pymesos driver) -> the REST API on tornado, which also serves the
TF launcher bundle to agents. Several processes with the same settings form an HA group: one leads,
the others answer the API with redirects to it.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesos_gpu import gcpolicy
from mesos_gpu.core.config import ENV, LogFormat, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.logformat import formatter_for
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import CPU_TASKS_ON_GPU_AGENTS, make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.catalog import AgentCatalog
from mesos_gpu.driver.retention import RetentionSweeper
from mesos_gpu.driver.runtime import DriverFactory, FrameworkOptions, SchedulerRuntime
from mesos_gpu.store.base import FrameworkStore, StoreUnavailable
from mesos_gpu.store.settings import TenantsBook, read_tenants_file

if TYPE_CHECKING:
    from mesos_gpu.api.uploads import UploadStore

log = logging.getLogger("mesos_gpu.scheduler")

# Command-line flags and the variables they override (checked by `SchedulerSettings.from_env`).
FLAG_VARIABLES = {
    "master": "MESOS_GPU_MASTER",
    "zk": "MESOS_GPU_ZK",
    "name": "MESOS_GPU_FRAMEWORK_NAME",
    "api_host": "MESOS_GPU_API_HOST",
    "api_port": "MESOS_GPU_API_PORT",
    "role": "MESOS_GPU_ROLE",
    "advertised_host": "MESOS_GPU_ADVERTISED_HOST",
    "launcher_uri_base": "MESOS_GPU_LAUNCHER_URI_BASE",
    "log_level": "MESOS_GPU_LOG_LEVEL",
}


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> SchedulerSettings:
    merged = dict(env)
    for attribute, variable in FLAG_VARIABLES.items():
        value = getattr(args, attribute, None)
        if value is not None:
            merged[variable] = str(value)
    return SchedulerSettings.from_env(merged)


def framework_options(settings: SchedulerSettings, webui_url: str) -> FrameworkOptions:
    """The FrameworkInfo side of the settings (the secret read from its file when one is named)."""
    return FrameworkOptions(
        master=settings.master,
        name=settings.framework_name,
        user=settings.user or getpass.getuser(),
        role=settings.role,
        principal=settings.principal,
        secret=settings.resolve_secret(lambda path: Path(path).read_text()),
        failover_timeout=settings.failover_timeout,
        webui_url=webui_url,
    )


def public_base_url(settings: SchedulerSettings, api_port: int) -> str:
    """The scheduler's HTTP address as agents reach it (the launcher bundle, uploads)."""
    base = settings.launcher_base_url(api_port) or f"http://{socket.getfqdn()}:{api_port}"
    return base.rstrip("/")


def launch_settings(settings: SchedulerSettings, api_port: int) -> LaunchSettings:
    """How tasks are launched: the framework's ZooKeeper chroot, where they fetch the launcher, and the
    share host and Docker executors' commands and the share host's linger."""
    return LaunchSettings(
        framework_name=settings.framework_name,
        zk_url=framework_zk_url(settings),
        launcher_uri=public_base_url(settings, api_port) + "/v1/launcher.pyz",
        role=settings.role,
        share_host_command=settings.share_host_command,
        docker_executor_command=settings.docker_executor_command,
        share_linger_seconds=settings.share_linger_seconds,
    )


def upload_store(settings: SchedulerSettings, api_port: int) -> UploadStore:
    """Where `POST /v1/uploads` keeps archives (MESOS_GPU_UPLOAD_DIR, else a temporary directory removed
    at stop), their limit, and the base of their URIs (as for the launcher)."""
    from mesos_gpu.api.uploads import UploadStore

    directory = Path(settings.upload_dir) if settings.upload_dir else None
    return UploadStore(settings.upload_max_bytes, directory, public_base_url(settings, api_port))


def placement_policy(settings: SchedulerSettings) -> PlacementPolicy:
    """The placement policy the settings choose (CPU tasks on GPU agents, how share hosts are chosen, the
    strategy, backfill)."""
    return PlacementPolicy(
        cpu_tasks_on_gpu_agents=CPU_TASKS_ON_GPU_AGENTS[settings.cpu_tasks_on_gpu_agents],
        share_hosts=settings.share_hosts,
        strategy=settings.placement_strategy,
        backfill=settings.backfill,
    )


def framework_zk_url(settings: SchedulerSettings) -> str:
    """The framework's own chroot as a zk:// URL (TF rendezvous nodes live under it)."""
    return f"zk://{settings.zk_hosts}{settings.zk_framework_root}"


class SchedulerProcess:
    """One scheduler process: API server plus runtime. `start()` binds and campaigns; `stop()` leaves."""

    def __init__(
        self,
        settings: SchedulerSettings,
        *,
        store: FrameworkStore | None = None,
        driver_factory: DriverFactory | None = None,
        policy: PlacementPolicy | None = None,
        server: Any = None,
        tick_seconds: float = 1.0,
    ) -> None:
        """`store`: an open store to use (else one is connected from the settings and closed at
        `stop()`); `server`: an `ApiServer`, possibly already bound (else one is made)."""
        self.settings = settings
        self._store = store
        self._driver_factory = driver_factory
        self._policy = policy or placement_policy(settings)
        self.runtime: SchedulerRuntime | None = None
        self.api_port = 0
        self._server: Any = server
        self._app: Any = None
        self._agents: AgentCatalog | None = None
        self._tick_seconds = tick_seconds
        self._own_store = store is None
        self._retention: RetentionSweeper | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.api_port}"

    def start(self) -> SchedulerProcess:
        """Bind the API, then join the leader election; returns once the API answers."""
        from mesos_gpu.api.app import make_app
        from mesos_gpu.api.metrics import Histogram
        from mesos_gpu.api.server import ApiServer
        from mesos_gpu.store.zk import connect
        from mesos_gpu.tf.bundle import launcher_bundle_bytes

        settings = self.settings
        if self._store is None:
            self._store = connect(settings.zk_url, settings.framework_name,
                                  session_timeout=settings.zk_session_timeout)
        store = self._store
        server = self._server or ApiServer(settings.api_host, settings.api_port)
        self._server = server
        self.api_port = server.bind()
        advertised = settings.advertised_host or settings.api_host
        options = framework_options(settings, f"http://{advertised}:{self.api_port}")
        credentials = (options.principal, options.secret) if options.principal and options.secret else None
        agents = AgentCatalog(credentials=credentials, gpu_model_attribute=self._policy.gpu_model_attribute)
        runtime = SchedulerRuntime(
            store=store,
            planner=make_planner(self._policy, catalog=agents.current),
            options=options,
            launch=launch_settings(settings, self.api_port),
            identifier=f"{advertised}:{self.api_port}",
            driver_factory=self._driver_factory,
            heartbeat_timeout=settings.heartbeat_timeout,
            tick_seconds=self._tick_seconds,
            clear_rendezvous=rendezvous_cleaner(store),
            reserve_after_seconds=settings.reserve_after_seconds or None,
            never_fits_after_seconds=settings.never_fits_after_seconds or None,
            launch_check_seconds=settings.launch_check_seconds or None,
            placement_latency=Histogram(),
            tenancy=tenants_book(store, settings),
            preemption_grace_seconds=settings.preemption_grace_seconds if settings.preemption else None,
            agent_catalog=agents.current,
        )
        self.runtime = runtime
        master_url = _master_http_url(settings.master, runtime)
        agents.master_url = master_url
        agents.active = lambda: runtime.is_leader   # standbys do not read the master
        self._agents = agents
        app = make_app(
            runtime,
            settings=settings,
            launcher_bundle=launcher_bundle_bytes(),
            master_url=master_url,
            uploads=upload_store(settings, self.api_port),
        )
        self._app = app
        server.start(app)
        runtime.start()
        agents.start()
        # finished jobs past MESOS_GPU_RETENTION_*: deleted by the leader (docs/retention.md)
        self._retention = RetentionSweeper(runtime, settings.retention).start()
        log.info("scheduler %s: API on %s, master %s", settings.framework_name, self.api_url, settings.master)
        return self

    def stop(self) -> None:
        if self._retention is not None:  # first: a sweep step waits on the runtime's worker
            self._retention.stop()
            self._retention = None
        if self._agents is not None:
            self._agents.stop()
            self._agents = None
        if self.runtime is not None:
            self.runtime.stop()
        if self._server is not None:
            self._server.stop()
        if self._app is not None:
            from mesos_gpu.api.app import close_app

            close_app(self._app)        # the API's worker threads
            self._app = None
        if self._own_store and self._store is not None:
            self._store.close()

    def __enter__(self) -> SchedulerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tenants_book(store: FrameworkStore, settings: SchedulerSettings) -> TenantsBook:
    """The process's tenants' terms (`store.settings.TenantsBook`): the store's record, else the tenants
    file's (`settings.tenants_file`; ValueError naming the file and each problem when it is not a valid
    tenants document). Handed to the runtime, whose state machine applies it, and used by the API's
    `/v1/tenants` routes (they read it from the runtime)."""
    fallback = read_tenants_file(settings.tenants_file) if settings.tenants_file else None
    records: Any = store if hasattr(store, "read_setting") else None   # a store without settings: the file's
    return TenantsBook(records, fallback, settings.tenants_file)


def rendezvous_cleaner(store: FrameworkStore) -> Callable[[str], None] | None:
    """Deletes a TF job's rendezvous nodes through the store's ZooKeeper session: they live under the
    store's root, where the launchers register (`framework_zk_url`)."""
    client, root = getattr(store, "client", None), getattr(store, "root", None)
    if client is None or root is None:
        return None
    from mesos_gpu.tf.rendezvous import clear_job

    return functools.partial(clear_job, client, chroot=root)


def _master_http_url(master: str, runtime: SchedulerRuntime) -> str | Callable[[], str | None]:
    """The master's HTTP base for /state and /files: fixed, or (zk:// masters) the one the driver
    is connected to now."""
    if master.startswith(("zk://", "zoo://")):
        return lambda: f"http://{runtime.master_address}" if runtime.master_address else None
    return f"http://{master}" if ":" in master else f"http://{master}:5050"


def run(settings: SchedulerSettings, wait: Callable[[threading.Event], None] | None = None) -> int:
    """Run until SIGTERM or SIGINT; hand over leadership cleanly (tasks keep running). No ZooKeeper
    answering: one line on stderr and exit status 1."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        process = SchedulerProcess(settings).start()
    except StoreUnavailable as exc:
        print(f"mesos-gpu scheduler: cannot reach ZooKeeper at {settings.zk_url}: {exc}", file=sys.stderr)
        return 1
    gcpolicy.configure(os.environ)      # after start: what it loaded is frozen out of collections
    print(f"mesos-gpu scheduler {settings.framework_name}: API {process.api_url}", flush=True)
    try:
        (wait or (lambda event: event.wait()))(stop)
    finally:
        process.stop()
    return 0


def _command(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args, os.environ)
    except ValidationError as exc:
        for error in exc.errors:
            print(f"mesos-gpu scheduler: {error.path.lstrip('/')}: {error.message}")
        return 2
    from mesos_gpu.store.settings import tenants_file_problem  # a bad file: one line, before ZooKeeper

    if problem := tenants_file_problem(settings.tenants_file):
        print(f"mesos-gpu scheduler: {ENV.TENANTS_FILE}: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    return run(settings)


# Loggers whose DEBUG lines hold what must never be logged: kazoo's show every znode written (job
# records, with their env values). They log at INFO at most, whatever the level.
SECRET_DEBUG_LOGGERS = ("kazoo",)


def configure_logging(level: int | str, log_format: LogFormat) -> None:
    """Log to stderr at `level`, as plain lines ("text") or one JSON object per line ("json"); the
    `SECRET_DEBUG_LOGGERS` never below INFO."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    for name in SECRET_DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def log_format_of(env: Mapping[str, str]) -> LogFormat:
    """`MESOS_GPU_LOG_FORMAT` of `env`, checked as the scheduler checks it (ValidationError if bad)."""
    return SchedulerSettings.from_env({ENV.LOG_FORMAT: env.get(ENV.LOG_FORMAT, "")}).log_format


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scheduler",
        help="run the mesos-gpu scheduler (one of an HA group) with its REST API",
        description="Run the scheduler. Every option also comes from its environment variable "
        "(flags win); see docs/dcos.md for the full list.",
    )
    parser.add_argument("--master", help="HOST:PORT or zk://HOST:PORT/mesos ($MESOS_GPU_MASTER)")
    parser.add_argument("--zk", help="zk://HOST:PORT/mesos-gpu, the state's ZooKeeper ($MESOS_GPU_ZK)")
    parser.add_argument("--name", help="framework name ($MESOS_GPU_FRAMEWORK_NAME)")
    parser.add_argument(
        "--api-host", dest="api_host",
        help="API bind address ($MESOS_GPU_API_HOST; default 127.0.0.1, or 0.0.0.0 once the advertised "
        "host is known)",
    )
    parser.add_argument(
        "--api-port", dest="api_port", type=int,
        help="API port ($MESOS_GPU_API_PORT, else Marathon's $PORT_API or $PORT0; default 8080)",
    )
    parser.add_argument(
        "--advertised-host", dest="advertised_host", metavar="HOST",
        help="this scheduler's host name as agents and clients reach it ($MESOS_GPU_ADVERTISED_HOST, else "
        "Marathon's $HOST): the launcher URI in every TaskInfo and the leader's address",
    )
    parser.add_argument(
        "--launcher-uri-base", dest="launcher_uri_base", metavar="URL",
        help="where agents fetch the TF launcher, e.g. a load balancer's http(s)://HOST[:PORT][/PATH] "
        "($MESOS_GPU_LAUNCHER_URI_BASE; default http://ADVERTISED_HOST:API_PORT)",
    )
    parser.add_argument("--role", help="Mesos role ($MESOS_GPU_ROLE)")
    parser.add_argument("--log-level", dest="log_level", help="DEBUG, INFO, WARNING or ERROR")
    parser.set_defaults(func=_command)
