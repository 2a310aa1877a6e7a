"""The scheduler's settings, read from environment-style variables into one typed, frozen value.

Pure: it reads the mapping it is given (never `os.environ` itself) and does no I/O; a secret kept in a
file is only named here and read by the caller through `SchedulerSettings.resolve_secret`. The DC/OS
package's `marathon.json.mustache` sets exactly the variables read here. An empty value means unset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mesos_gpu.core import retention
from mesos_gpu.core.envreader import EnvReader
from mesos_gpu.core.settingparsers import (  # the parsers live there; the types are re-exported
    Containerizer,
    CpuTasksOnGpuAgents,
    LogFormat,
    LogLevel,
    PlacementStrategy,
    ShareHostPlacement,
    _any,
    _boolean,
    _command,
    _containerizer,
    _cpu_policy,
    _derived_launcher_base,
    _failover_timeout,
    _framework_name,
    _http_url,
    _instances,
    _linger_seconds,
    _log_format,
    _log_level,
    _master,
    _megabytes,
    _no_space,
    _non_negative_seconds,
    _path,
    _port,
    _positive_seconds,
    _principal,
    _role,
    _session_seconds,
    _share_hosts,
    _strategy,
    _tokens,
    _zk_url,
    zookeeper_url,
)
from mesos_gpu.core.sharing import DEFAULT_LINGER_SECONDS, SHARE_HOST_COMMAND
from mesos_gpu.core.taskinfo import DOCKER_EXECUTOR_COMMAND

__all__ = [
    "ENV",
    "Containerizer",
    "CpuTasksOnGpuAgents",
    "LogFormat",
    "LogLevel",
    "SchedulerSettings",
    "zookeeper_url",
]


ONE_WEEK_SECONDS = 7 * 24 * 3600.0
DEFAULT_API_PORT = 8080
DEFAULT_UPLOAD_MAX_MB = 64


ALL_INTERFACES = "0.0.0.0"


class ENV:
    """Names of the variables `SchedulerSettings.from_env` reads (the package template sets them)."""

    FRAMEWORK_NAME_DCOS = "DCOS_PACKAGE_FRAMEWORK_NAME"
    FRAMEWORK_NAME = "MESOS_GPU_FRAMEWORK_NAME"
    MASTER = "MESOS_GPU_MASTER"
    ZK = "MESOS_GPU_ZK"
    ZK_SESSION_TIMEOUT = "MESOS_GPU_ZK_SESSION_TIMEOUT"
    ROLE = "MESOS_GPU_ROLE"
    USER = "MESOS_GPU_USER"
    PRINCIPAL = "MESOS_GPU_PRINCIPAL"
    SECRET = "MESOS_GPU_SECRET"
    SECRET_FILE = "MESOS_GPU_SECRET_FILE"
    FAILOVER_TIMEOUT = "MESOS_GPU_FAILOVER_TIMEOUT"
    API_HOST = "MESOS_GPU_API_HOST"
    API_PORT = "MESOS_GPU_API_PORT"
    MARATHON_PORT_API = "PORT_API"  # Marathon's variable for the port definition named "api"
    MARATHON_PORT0 = "PORT0"
    API_TOKENS = "MESOS_GPU_API_TOKENS"
    API_TOKENS_FILE = "MESOS_GPU_API_TOKENS_FILE"
    API_AUTH_READS = "MESOS_GPU_API_AUTH_READS"
    LOG_LEVEL = "MESOS_GPU_LOG_LEVEL"
    LOG_FORMAT = "MESOS_GPU_LOG_FORMAT"
    DEFAULT_CONTAINERIZER = "MESOS_GPU_DEFAULT_CONTAINERIZER"
    CPU_TASKS_ON_GPU_AGENTS = "MESOS_GPU_CPU_TASKS_ON_GPU_AGENTS"
    HEARTBEAT_TIMEOUT = "MESOS_GPU_HEARTBEAT_TIMEOUT"
    ADVERTISED_HOST = "MESOS_GPU_ADVERTISED_HOST"
    MARATHON_HOST = "HOST"  # Marathon's variable: the agent's hostname
    LAUNCHER_URI_BASE = "MESOS_GPU_LAUNCHER_URI_BASE"
    INSTANCES = "MESOS_GPU_INSTANCES"
    RESERVE_AFTER = "MESOS_GPU_RESERVE_AFTER_SECONDS"
    NEVER_FITS_AFTER = "MESOS_GPU_NEVER_FITS_AFTER_SECONDS"
    LAUNCH_CHECK = "MESOS_GPU_LAUNCH_CHECK_SECONDS"
    SHARE_LINGER = "MESOS_GPU_SHARE_LINGER_SECONDS"
    SHARE_HOSTS = "MESOS_GPU_SHARE_HOSTS"
    PLACEMENT_STRATEGY = "MESOS_GPU_PLACEMENT_STRATEGY"
    BACKFILL = "MESOS_GPU_BACKFILL"
    SHARE_HOST_COMMAND = "MESOS_GPU_SHARE_HOST_COMMAND"
    DOCKER_EXECUTOR_COMMAND = "MESOS_GPU_DOCKER_EXECUTOR_COMMAND"
    UPLOAD_MAX_MB = "MESOS_GPU_UPLOAD_MAX_MB"
    UPLOAD_DIR = "MESOS_GPU_UPLOAD_DIR"
    TENANTS_FILE = "MESOS_GPU_TENANTS_FILE"
    PREEMPTION = "MESOS_GPU_PREEMPTION"
    PREEMPTION_GRACE = "MESOS_GPU_PREEMPTION_GRACE_SECONDS"
    RETENTION_SECONDS = retention.ENV_MAX_AGE
    RETENTION_MAX_FINISHED = retention.ENV_MAX_FINISHED

    @classmethod
    def names(cls) -> frozenset[str]:
        """Every variable `SchedulerSettings.from_env` may read."""
        return frozenset(v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str))


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerSettings:
    """Everything the scheduler process is configured with. Build it with `from_env`.

    `zk_url` is the base (`zk://h1:2181,h2:2181/mesos-gpu`); this framework keeps its state under
    `zk_framework_root` (the base path plus the framework name), so two installs never collide.
    """

    framework_name: str = "mesos-gpu"
    master: str = "127.0.0.1:5050"  # host:port or zk://hosts/path, the two forms pymesos accepts
    zk_url: str = "zk://127.0.0.1:2181/mesos-gpu"
    # The scheduler's ZooKeeper session (s): a leader killed or cut off keeps leadership this long, so it
    # bounds failover; ZooKeeper grants 2 to 20 of its ticks (4-40 s at its default tickTime of 2 s).
    zk_session_timeout: float = 10.0
    role: str = "*"
    user: str | None = None  # FrameworkInfo.user; None: the caller uses the OS user it runs as
    principal: str | None = None
    secret: str | None = field(default=None, repr=False)
    secret_file: str | None = None
    failover_timeout: float = ONE_WEEK_SECONDS
    api_host: str = "127.0.0.1"  # ALL_INTERFACES when an advertised host is known (see `from_env`)
    api_port: int = DEFAULT_API_PORT  # 0: any free port
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    api_tokens_file: str | None = None
    api_auth_reads: bool = False
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"
    default_containerizer: Containerizer = "mesos"
    cpu_tasks_on_gpu_agents: CpuTasksOnGpuAgents = "restricted"
    heartbeat_timeout: float = 75.0  # 5 missed heartbeats of 15 s, as scheduler.proto recommends
    advertised_host: str | None = None
    launcher_uri_base: str | None = None  # where tasks fetch the launcher; see `launcher_base_url`
    instances: int = 1  # scheduler instances of this install (HA when > 1), for reporting
    # A job waiting this long to be placed gets the agents it needs held for it (0: never).
    reserve_after_seconds: float = 300.0
    # A job that no agent of the cluster could ever hold fails once that has been true this long (0: waits).
    never_fits_after_seconds: float = 300.0
    # A task still STAGING this long after its launch is asked of the master (core.launchcheck; 0: never).
    launch_check_seconds: float = 60.0
    # An empty share host gives its GPU back to Mesos after this long (core.sharing).
    share_linger_seconds: float = DEFAULT_LINGER_SECONDS
    # How new share hosts are chosen: "pack" (fill partly used agents first, keep whole agents free for
    # whole-GPU jobs) or "spread" (Tetris alignment of cpus and GPUs; places more shares, refuses more
    # multi-GPU jobs: benchmarks/sharing.py).
    share_hosts: ShareHostPlacement = "pack"
    # Which feasible agent (and device) a task goes to: "default", or a published policy for comparison
    # (`mesos-gpu simulate` measures them all on a trace; docs/simulate.md).
    placement_strategy: PlacementStrategy = "default"
    # Jobs behind one that waits may be placed in the same cycle (False: strict FIFO in priority order).
    backfill: bool = True
    # Waiting jobs may preempt running ones (core.preempt), whose tasks get this grace after SIGTERM.
    preemption: bool = False
    preemption_grace_seconds: float = 30.0
    # The shell command that starts a share host executor on an agent.
    share_host_command: str = SHARE_HOST_COMMAND
    # The shell command that starts the Docker executor (`"containerizer": "docker"` tasks) on an agent.
    docker_executor_command: str = DOCKER_EXECUTOR_COMMAND
    # `POST /v1/uploads` (what `mesos-gpu run` sends) refuses archives larger than this (MB).
    upload_max_mb: int = DEFAULT_UPLOAD_MAX_MB
    # Where uploads are kept; None: a temporary directory of the scheduler process, removed when it stops.
    upload_dir: str | None = None
    # A JSON file of tenants and their GPU quotas (docs/tenancy.md; `mesos_gpu.core.tenancy`), read at
    # start; what `PUT /v1/tenants` stores in ZooKeeper replaces it at run time. None: no quotas, unless
    # set through the API.
    tenants_file: str | None = None
    # Finished jobs are deleted (store and memory) this long after they finished (0: no age limit), and
    # beyond the newest `retention_max_finished` (0: no count limit); never within an hour of submission.
    retention_seconds: float = retention.DEFAULT_MAX_AGE_SECONDS
    retention_max_finished: int = retention.DEFAULT_MAX_FINISHED

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SchedulerSettings:
        """Read and check every variable; raise `ValidationError` naming each bad one (path `/VAR`)."""
        reader, d = EnvReader(env), cls()
        names = (ENV.FRAMEWORK_NAME_DCOS, ENV.FRAMEWORK_NAME)
        name = reader.first(names, d.framework_name, _framework_name)
        master = reader.get(ENV.MASTER, d.master, _master)
        zk_url = reader.get(ENV.ZK, d.zk_url, _zk_url)
        zk_session = reader.get(ENV.ZK_SESSION_TIMEOUT, d.zk_session_timeout, _session_seconds)
        role = reader.get(ENV.ROLE, d.role, _role)
        user = reader.optional(ENV.USER, _no_space)
        principal = reader.optional(ENV.PRINCIPAL, _principal)
        secret = reader.optional(ENV.SECRET, _any)
        secret_file = reader.optional(ENV.SECRET_FILE, _any)
        _check_credentials(reader, principal, secret, secret_file)
        failover = reader.get(ENV.FAILOVER_TIMEOUT, d.failover_timeout, _failover_timeout)
        advertised = reader.first((ENV.ADVERTISED_HOST, ENV.MARATHON_HOST), None, _no_space)
        # Told its host (Marathon's HOST too), the scheduler is on a cluster: agents must reach the API.
        api_host = reader.get(ENV.API_HOST, ALL_INTERFACES if advertised else d.api_host, _no_space)
        ports = (ENV.API_PORT, ENV.MARATHON_PORT_API, ENV.MARATHON_PORT0)
        api_port = reader.first(ports, d.api_port, _port)
        tokens = reader.get(ENV.API_TOKENS, d.api_tokens, _tokens)
        tokens_file = reader.optional(ENV.API_TOKENS_FILE, _any)
        auth_reads = reader.get(ENV.API_AUTH_READS, d.api_auth_reads, _boolean)
        log_level = reader.get(ENV.LOG_LEVEL, d.log_level, _log_level)
        log_format = reader.get(ENV.LOG_FORMAT, d.log_format, _log_format)
        containerizer = reader.get(ENV.DEFAULT_CONTAINERIZER, d.default_containerizer, _containerizer)
        cpu_policy = reader.get(ENV.CPU_TASKS_ON_GPU_AGENTS, d.cpu_tasks_on_gpu_agents, _cpu_policy)
        heartbeat = reader.get(ENV.HEARTBEAT_TIMEOUT, d.heartbeat_timeout, _positive_seconds)
        launcher = reader.optional(ENV.LAUNCHER_URI_BASE, _http_url)
        instances = reader.get(ENV.INSTANCES, d.instances, _instances)
        reserve_after = reader.get(ENV.RESERVE_AFTER, d.reserve_after_seconds, _non_negative_seconds)
        never_fits = reader.get(ENV.NEVER_FITS_AFTER, d.never_fits_after_seconds, _non_negative_seconds)
        launch_check = reader.get(ENV.LAUNCH_CHECK, d.launch_check_seconds, _non_negative_seconds)
        linger = reader.get(ENV.SHARE_LINGER, d.share_linger_seconds, _linger_seconds)
        share_hosts = reader.get(ENV.SHARE_HOSTS, d.share_hosts, _share_hosts)
        strategy = reader.get(ENV.PLACEMENT_STRATEGY, d.placement_strategy, _strategy)
        backfill = reader.get(ENV.BACKFILL, d.backfill, _boolean)
        share_host = reader.get(ENV.SHARE_HOST_COMMAND, d.share_host_command, _command)
        docker_executor = reader.get(ENV.DOCKER_EXECUTOR_COMMAND, d.docker_executor_command, _command)
        upload_max = reader.get(ENV.UPLOAD_MAX_MB, d.upload_max_mb, _megabytes)
        upload_dir = reader.optional(ENV.UPLOAD_DIR, _path)
        tenants_file = reader.optional(ENV.TENANTS_FILE, _path)
        preemption = reader.get(ENV.PREEMPTION, d.preemption, _boolean)
        preemption_grace = reader.get(ENV.PREEMPTION_GRACE, d.preemption_grace_seconds, _non_negative_seconds)
        kept_for = reader.get(ENV.RETENTION_SECONDS, d.retention_seconds, retention.parse_max_age)
        kept_count = reader.get(
            ENV.RETENTION_MAX_FINISHED, d.retention_max_finished, retention.parse_max_finished
        )
        if auth_reads and not tokens and tokens_file is None and ENV.API_TOKENS not in reader:
            needs = f"authenticating reads needs tokens ({ENV.API_TOKENS} or {ENV.API_TOKENS_FILE})"
            reader.fail(ENV.API_AUTH_READS, needs)
        reader.raise_problems()
        return cls(
            framework_name=name,
            master=master,
            zk_url=zk_url,
            zk_session_timeout=zk_session,
            role=role,
            user=user,
            principal=principal,
            secret=secret,
            secret_file=secret_file,
            failover_timeout=failover,
            api_host=api_host,
            api_port=api_port,
            api_tokens=tokens,
            api_tokens_file=tokens_file,
            api_auth_reads=auth_reads,
            log_level=log_level,
            log_format=log_format,
            default_containerizer=containerizer,
            cpu_tasks_on_gpu_agents=cpu_policy,
            heartbeat_timeout=heartbeat,
            advertised_host=advertised,
            launcher_uri_base=launcher,
            instances=instances,
            reserve_after_seconds=reserve_after,
            never_fits_after_seconds=never_fits,
            launch_check_seconds=launch_check,
            share_linger_seconds=linger,
            share_hosts=share_hosts,
            placement_strategy=strategy,
            backfill=backfill,
            share_host_command=share_host,
            docker_executor_command=docker_executor,
            upload_max_mb=upload_max,
            upload_dir=upload_dir,
            tenants_file=tenants_file,
            preemption=preemption,
            preemption_grace_seconds=preemption_grace,
            retention_seconds=kept_for,
            retention_max_finished=kept_count,
        )

    @property
    def retention(self) -> retention.RetentionPolicy:
        """The retention policy of finished jobs (`core.retention`; 0 in a setting: no such limit)."""
        return retention.RetentionPolicy(max_age_seconds=self.retention_seconds or None,
                                         max_finished=self.retention_max_finished or None)

    @property
    def upload_max_bytes(self) -> int:
        """`upload_max_mb` in bytes (MB = 2**20 bytes)."""
        return self.upload_max_mb << 20

    @property
    def master_is_zk(self) -> bool:
        """True when the master is found through ZooKeeper (`zk://...`) rather than given as host:port."""
        return self.master.startswith("zk://")

    @property
    def zk_hosts(self) -> str:
        """The ensemble as kazoo takes it: `h1:2181,h2:2181`."""
        return zookeeper_url(self.zk_url).hosts

    @property
    def zk_path(self) -> str:
        """The base path of `zk_url`, e.g. `/mesos-gpu`."""
        return zookeeper_url(self.zk_url).path

    @property
    def zk_framework_root(self) -> str:
        """Where this framework's state lives: `<zk_path>/<framework_name>` (DESIGN section 6)."""
        return f"{self.zk_path.rstrip('/')}/{self.framework_name}"

    @property
    def api_auth_enabled(self) -> bool:
        """True when API writes need a bearer token."""
        return bool(self.api_tokens) or self.api_tokens_file is not None

    def launcher_base_url(self, bound_port: int | None = None) -> str | None:
        """Where tasks fetch the launcher from: `launcher_uri_base` when set, else
        `http://<advertised host or specific API address>:<port>`, where the port is `bound_port` (the one
        the API really listens on) or `api_port`. None when no reachable host or port is known."""
        if self.launcher_uri_base is not None:
            return self.launcher_uri_base
        return _derived_launcher_base(self.advertised_host, self.api_host, bound_port or self.api_port)

    def resolve_secret(self, read_text: Callable[[str], str]) -> str | None:
        """The framework secret: the inline value, else the stripped contents of `secret_file` read by
        `read_text` (the caller's I/O), else None."""
        if self.secret is not None:
            return self.secret
        if self.secret_file is not None:
            return read_text(self.secret_file).strip()
        return None


def _check_credentials(
    reader: EnvReader, principal: str | None, secret: str | None, secret_file: str | None
) -> None:
    """A secret comes from one place and needs a principal to authenticate with."""
    if secret is not None and secret_file is not None:
        reader.fail(ENV.SECRET_FILE, f"set either {ENV.SECRET} or {ENV.SECRET_FILE}, not both")
    has_secret = secret is not None or secret_file is not None
    if has_secret and principal is None and ENV.PRINCIPAL not in reader:
        reader.fail(ENV.PRINCIPAL, "a framework secret needs a principal to authenticate with")
