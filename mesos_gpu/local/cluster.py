"""`LocalCluster`: the embedded master and N agents on one IOLoop thread, with fault hooks for tests.

Example::

    with LocalCluster(agents=2, gpus_per_agent=2, workdir=tmp_path) as cluster:
        driver = MesosSchedulerDriver(scheduler, framework, cluster.master_address)
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tornado.ioloop import IOLoop

from mesos_gpu.local.agent.gpus import (
    DEFAULT_GPU_MEMORY_MB,
    GpuDevice,
    GpuSharing,
    host_devices,
    split_devices,
)
from mesos_gpu.local.master.master import Master, MasterConfig, MasterServer
from mesos_gpu.loopcall import call_in_loop

log = logging.getLogger(__name__)

T = TypeVar("T")
CALL_TIMEOUT = 30.0


@dataclass
class AgentSpec:
    """Resources of one local agent (`agent_resources` keys: cpus, mem, disk, ports)."""

    cpus: float = 4.0
    mem: float = 8192.0
    disk: float = 65536.0
    ports: tuple[tuple[int, int], ...] = ((31000, 32000),)

    @staticmethod
    def ports_of(index: int) -> tuple[tuple[int, int], ...]:
        """Agent `index`'s own port range: local agents share one host, so unlike agents on separate
        hosts they must not offer the same ports (31000-31999, 32000-32999, ...)."""
        begin = 31000 + 1000 * index
        return ((begin, begin + 999),)


class LocalCluster:
    """A master and `agents` agents on loopback; a context manager that stops everything it started.

    Durations are seconds. `gpus_per_agent=None` splits the host's GPUs (NVML; the fake NVML of
    MESOS_GPU_FAKE_GPUS when set) between the agents, each device to one agent, and fails at start with
    NVML's message (gpus.NvmlUnavailableError) when NVML is absent. On 127.0.0.1 agent i binds and is
    named 127.0.0.<i+1> (`agent_host`).
    `agent_resources` (dict: cpus, mem, disk, ports as [(begin, end)]) and `agent_attributes` apply to
    every agent. `agent_options` passes any other `AgentConfig` field (e.g. command_kill_grace_period).
    `agent_gpus` gives each agent its own GPU count (its length is then the number of agents).
    Simulated GPUs have `gpu_memory` MB each, the MIG layout `gpu_mig` ("3g.40gb/2g.20gb/..."; "" for
    none) and MPS when `gpu_mps`: the agents announce them as attributes (core.sharing's names) and
    describe them to their processes through the fake NVML.
    """

    def __init__(
        self,
        agents: int = 2,
        gpus_per_agent: int | None = 2,
        workdir: Path | str | None = None,
        *,
        heartbeat_interval: float = 15.0,
        status_update_retry: float = 10.0,
        offer_timeout: float | None = None,
        zk_url: str | None = None,
        agent_resources: dict[str, Any] | None = None,
        agent_attributes: dict[str, str | float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        allocation_interval: float = 1.0,
        filter_gpu_resources: bool = True,
        strict: bool = False,
        agent_options: dict[str, Any] | None = None,
        agent_gpus: list[int | None] | None = None,
        gpu_memory: int = DEFAULT_GPU_MEMORY_MB,
        gpu_mig: str = "",
        gpu_mps: bool = False,
    ) -> None:
        self.agent_count = agents
        self.gpus_per_agent = gpus_per_agent
        self._workdir_arg = workdir
        self.workdir: Path | None = None
        self.master_config = MasterConfig(
            host=host,
            port=port,
            heartbeat_interval=heartbeat_interval,
            offer_timeout=offer_timeout,
            allocation_interval=allocation_interval,
            filter_gpu_resources=filter_gpu_resources,
            strict=strict,
        )
        self.status_update_retry = status_update_retry
        self.zk_url = zk_url
        self.agent_resources = dict(agent_resources or {})
        self.agent_attributes = dict(agent_attributes or {})
        self.agent_options = dict(agent_options or {})
        self.agent_gpus = list(agent_gpus) if agent_gpus is not None else None
        self.gpu_sharing = GpuSharing(gpu_memory, gpu_mig, gpu_mps)  # ValueError at once when bad
        self.host = host
        self.agents: list[Any] = []
        self.server: MasterServer | None = None
        self.announcer: Any = None
        self._loop: IOLoop | None = None
        self._thread: threading.Thread | None = None
        self._own_workdir = False
        self._killed: set[int] = set()
        self._master_watchers: list[Callable[[Master], None]] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalCluster:
        if self._workdir_arg is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="mesos-gpu-local-"))
            self._own_workdir = True
        else:
            self.workdir = Path(self._workdir_arg)
            self.workdir.mkdir(parents=True, exist_ok=True)
        ready: concurrent.futures.Future[IOLoop] = concurrent.futures.Future()

        def run() -> None:
            loop = IOLoop(make_current=True)
            ready.set_result(loop)
            try:
                loop.start()
            finally:
                loop.close(all_fds=True)

        self._thread = threading.Thread(target=run, name="mesos-gpu-local-cluster", daemon=True)
        self._thread.start()
        self._loop = ready.result(CALL_TIMEOUT)
        try:
            self.call(self._start_on_loop)
            if self.zk_url:
                self._announce()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_on_loop(self) -> None:
        self.server = MasterServer(self.master_config)
        self._tell_watchers(self.server.master)
        counts = self.agent_gpus if self.agent_gpus is not None else [self.gpus_per_agent] * self.agent_count
        # the host's GPUs (None): listed once and split, each device to exactly one agent
        shares = iter(split_devices(host_devices(), counts.count(None)) if None in counts else [])
        for gpus in counts:
            self.agents.append(self._new_agent(gpus, next(shares) if gpus is None else None))

    def agent_host(self, index: int) -> str:
        """Where agent `index` binds and the hostname it announces: on loopback each agent has its own
        address (127.0.0.1, 127.0.0.2, ...: Linux routes all of 127/8 to this machine), so agents differ
        by hostname as on a real cluster (`["hostname", "UNIQUE"]` fits) and TF members still bind and
        connect; any other host is shared by every agent."""
        if self.host != "127.0.0.1" or index == 0:
            return self.host
        return f"127.0.0.{index + 1}" if index < 254 else self.host

    def _new_agent(self, gpus: int | None, devices: list[GpuDevice] | None = None) -> Any:
        from mesos_gpu.local.agent.agent import Agent, AgentConfig

        assert self.server is not None and self.workdir is not None
        spec = AgentSpec()
        resources = self.agent_resources
        options: dict[str, Any] = {
            "cpus": float(resources.get("cpus", spec.cpus)),
            "mem": float(resources.get("mem", spec.mem)),
            "disk": float(resources.get("disk", spec.disk)),
            "ports": tuple(tuple(r) for r in resources.get("ports", AgentSpec.ports_of(len(self.agents)))),
            "attributes": dict(self.agent_attributes),
            "gpus": gpus,
            "gpu_memory": self.gpu_sharing.memory_mb,
            "gpu_mig": self.gpu_sharing.mig,
            "gpu_mps": self.gpu_sharing.mps,
            "host": self.agent_host(len(self.agents)),
            "status_update_retry": self.status_update_retry,
        }
        config = AgentConfig(**{**options, **self.agent_options})
        master = self.server.master
        agent = Agent(master, master.new_agent_id(), self.workdir, config, gpu_devices=devices)
        agent.start()
        return agent

    def _announce(self) -> None:
        from mesos_gpu.local.announce import MasterAnnouncer

        assert self.zk_url is not None
        info = self.call(self.master.master_info)
        self.announcer = MasterAnnouncer(self.zk_url, info, self._leader_changed)
        self.announcer.start()
        assert self.server is not None
        self.server.master.leader_probe = self.announcer.probe

    def _leader_changed(self, leader_address: str | None, is_self: bool) -> None:
        """From the ZooKeeper watch thread: become leader, or a standby redirecting to the leader."""
        loop = self._loop
        if loop is None:
            return

        def apply() -> None:
            if self.server is None:
                return
            if is_self:
                self.server.master.set_leader()
            else:
                self.server.master.set_standby(leader_address)

        loop.add_callback(apply)

    def stop(self) -> None:
        """Stop agents (killing every process), the master, the announcement and the loop thread."""
        if self.announcer is not None:
            try:
                self.announcer.stop()
            except Exception:
                log.exception("failed to withdraw the ZooKeeper announcement")
            self.announcer = None
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            try:
                self.call(self._stop_on_loop)
            except Exception:
                log.exception("failed to stop the local cluster cleanly")
            self._loop.add_callback(self._loop.stop)
            self._thread.join(CALL_TIMEOUT)
        self._loop = None
        self._thread = None
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._own_workdir = False

    def _stop_on_loop(self) -> None:
        for agent in self.agents:
            try:
                agent.master = None
                agent.stop()
            except Exception:
                log.exception("failed to stop agent %s", getattr(agent, "agent_id", "?"))
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ access
    @property
    def master(self) -> Master:
        assert self.server is not None, "LocalCluster.start() first"
        return self.server.master

    @property
    def master_address(self) -> str:
        assert self.server is not None, "LocalCluster.start() first"
        return self.server.address

    @property
    def master_url(self) -> str:
        """What to give `MesosSchedulerDriver`: the zk:// URL when announced, else host:port."""
        return self.zk_url or self.master_address

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = CALL_TIMEOUT) -> T:
        """Run `fn(*args)` on the cluster's loop thread and return its result (or raise its error)."""
        loop = self._loop
        assert loop is not None, "LocalCluster.start() first"
        if threading.current_thread() is self._thread:
            return fn(*args)
        return call_in_loop(loop, fn, *args, timeout=timeout)

    # ------------------------------------------------------------------ fault hooks
    def kill_agent(self, index: int) -> None:
        """Stop agent `index` (its processes die) and remove it from the master: tasks are LOST."""

        def kill() -> None:
            agent = self.agents[index]
            agent.master = None
            agent.stop()
            self.master.unregister_agent(agent.agent_id)

        self._killed.add(index)
        self.call(kill)

    def restart_master(self, *, reattach_agents: bool = True) -> Master:
        """A fresh master (new id; of the old one's state only its registry of agents) on the same port;
        live agents re-register with it at once, or at `reattach_agents()` when `reattach_agents` is
        False (as real agents re-register a moment after they detect a new master)."""
        master = self.call(lambda: self._replace_master(self.server_or_fail().restart, reattach_agents))
        if self.announcer is not None:
            self.announcer.update(self.call(master.master_info))
        return master

    def stop_master(self) -> None:
        """The master goes down: its port refuses connections and every stream drops; agents keep
        running their tasks and hold their status updates until a master is back (`start_master`)."""

        def down() -> None:
            self.server_or_fail().go_down()
            for agent in self._live_agents():
                agent.attach_master(None)

        self.call(down)

    def start_master(self, *, reattach_agents: bool = True) -> Master:
        """After `stop_master`: a fresh master on the same port (see `restart_master`)."""
        master = self.call(lambda: self._replace_master(self.server_or_fail().come_up, reattach_agents))
        if self.announcer is not None:
            self.announcer.update(self.call(master.master_info))
        return master

    def reattach_agents(self) -> None:
        """Every live agent (re-)registers with the current master and re-sends unacknowledged updates."""

        def attach() -> None:
            for agent in self._live_agents():
                agent.attach_master(self.master)

        self.call(attach)

    def _replace_master(self, replace: Callable[[], Master], reattach_agents: bool) -> Master:
        master = replace()
        self._tell_watchers(master)
        for agent in self._live_agents():
            agent.attach_master(master if reattach_agents else None)
        return master

    def _live_agents(self) -> list[Any]:
        return [agent for index, agent in enumerate(self.agents) if index not in self._killed]

    def server_or_fail(self) -> MasterServer:
        assert self.server is not None, "LocalCluster.start() first"
        return self.server

    def watch_masters(self, watcher: Callable[[Master], None]) -> None:
        """Call `watcher(master)` on the loop thread for the current master now and for every master that
        replaces it (`restart_master`, `start_master`) before that one handles any request: a test's
        observer of the calls every master receives (e.g. the fault soak's audit)."""

        def add() -> None:
            self._master_watchers.append(watcher)
            if self.server is not None:
                watcher(self.server.master)

        self.call(add)

    def _tell_watchers(self, master: Master) -> None:
        for watcher in self._master_watchers:
            watcher(master)

    def drop_stream(self, framework_id: str) -> bool:
        """Close the framework's subscription connection (pymesos reconnects and re-subscribes)."""
        return self.call(lambda: self.master.drop_stream(framework_id))

    def stop_heartbeats(self, framework_id: str) -> bool:
        """Keep the framework's connection open but send it no more HEARTBEATs."""
        return self.call(lambda: self.master.stop_heartbeats(framework_id))

    def state(self) -> dict[str, Any]:
        return self.call(self.master.state)
