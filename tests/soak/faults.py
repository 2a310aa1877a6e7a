"""The soak's faults, each done to the running system and measured (`Faults.run(kind)`).

- kill: SIGKILL the leading scheduler; takeover = from the kill to the master taking a SUBSCRIBE from
  another instance; the killed one is started again (as its supervisor would).
- kill_restarting: the same while a job waits out its restart backoff (issue 20 item 1); that job's next
  attempt must reach an agent.
- pause: SIGSTOP the leader past its ZooKeeper session; once another has subscribed, SIGCONT it; from
  then on the master must see no call from it (issue 20 item 6: checked in `Soak.check`).
- zookeeper: stop ZooKeeper for an outage, start it again; the master must be announced again and a
  scheduler subscribed (issue 20 item 2).
- master: restart the local master (a new master id, agents re-register).
- task: SIGKILL a running task's process from outside the agent.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient

from mesos_gpu.client import ApiClient, ClientError
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.zookeeper import ZooKeeperServer
from tests.soak.audit import Audit
from tests.soak.params import SoakParams
from tests.soak.schedulers import SchedulerGroup, SchedulerInstance
from tests.soak.submitter import Submitter

STEADY_TIMEOUT = 120.0


class SoakError(AssertionError):
    """The system did not come back from a fault in time (a violation in itself)."""


def poll(predicate: Callable[[], Any], timeout: float, message: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise SoakError(message)


@dataclass
class Pause:
    instance: str
    woke_at: float
    until: float = float("inf")  # the next fault's start: calls from `instance` before it are violations


@dataclass
class Figures:
    kills: int = 0
    takeovers: list[float] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    zookeeper_outages: list[float] = field(default_factory=list)
    reannounced_after: list[float] = field(default_factory=list)
    master_restarts: int = 0
    task_kills: int = 0
    relaunch_checks: list[tuple[str, str]] = field(default_factory=list)  # (job id, next task id)
    problems: list[str] = field(default_factory=list)


@dataclass
class Faults:
    params: SoakParams
    cluster: LocalCluster
    zookeeper: ZooKeeperServer
    schedulers: SchedulerGroup
    audit: Audit
    submitter: Submitter
    rng: random.Random
    figures: Figures = field(default_factory=Figures)

    # ------------------------------------------------------------------ the system's state
    def leader(self) -> SchedulerInstance | None:
        """The instance the master holds a connected subscription of (None when none)."""
        urls = self.cluster.call(
            lambda: [f.info.get("webui_url") for f in self.cluster.master.frameworks.values() if f.connected]
        )
        return next((i for url in urls if (i := self.schedulers.by_url(url)) is not None), None)

    def steady(self, timeout: float = STEADY_TIMEOUT) -> SchedulerInstance:
        """Wait for a subscribed leader that runs (not paused)."""
        return poll(lambda: (i := self.leader()) is not None and i.alive and not i.paused and i,
                    timeout, "no scheduler subscribed to the master")

    def api(self) -> ApiClient:
        leader = self.leader()
        return ApiClient(leader.url if leader else self.schedulers.urls[0], timeout=10)

    def run(self, kind: str) -> None:
        getattr(self, f"_{kind}")()

    # ------------------------------------------------------------------ leader kills
    def _kill(self) -> SchedulerInstance:
        leader = self.steady()
        killed_at = time.monotonic()
        leader.kill9()
        self.figures.kills += 1
        took = poll(lambda: self.audit.first_subscribe_after(killed_at, leader.url), 60,
                    f"no takeover within 60 s of killing {leader.url}")
        self.figures.takeovers.append(took - killed_at)
        leader.start()
        return leader

    def _kill_restarting(self) -> None:
        """Submit a job that fails at once and restarts after 5 s; kill the leader while it waits."""
        job = {"name": f"soak-restarting-{self.figures.kills}", "command": "exit 1", "cpus": 0.1, "mem": 32,
               "restart": {"policy": "OnFailure", "backoff_limit": 2, "backoff_seconds": 5,
                           "max_backoff_seconds": 5}}
        job_id = self.submitter.submit(job, f"restarting-{self.params.seed}-{self.figures.kills}", self.rng)
        if job_id is None:
            raise SoakError("the RESTARTING job could not be submitted")
        self.submitter.note(job_id, "flaky", keyed=True)

        def restarting() -> dict[str, Any] | None:
            try:
                view = self.api().job(job_id)
            except ClientError:
                return None
            return view if view["state"] == "RESTARTING" else None

        view = poll(restarting, 60, f"job {job_id} never reached RESTARTING", every=0.2)
        self._kill()
        next_task = f"{job_id}.task-0.{int(view['attempt']) + 1}"  # model.task_id_for of its next attempt
        self.figures.relaunch_checks.append((job_id, next_task))

    # ------------------------------------------------------------------ pause past the session
    def _pause(self) -> None:
        leader = self.steady()
        paused_at = time.monotonic()
        leader.pause()
        poll(lambda: self.audit.first_subscribe_after(paused_at, leader.url), 60,
             f"no takeover within 60 s of pausing {leader.url}")
        rest = paused_at + self.params.session_timeout + 2 - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        leader.resume()
        self.figures.pauses.append(Pause(leader.url, time.monotonic()))
        time.sleep(5)  # the woken one learns it lost; what it sends meanwhile is what we look at

    # ------------------------------------------------------------------ ZooKeeper outage
    def _zookeeper(self) -> None:
        """An outage, then the end of the master announcement's session (a single server restores its
        sessions with a fresh timeout, so a client reconnecting within it keeps its session whatever the
        outage; the soak ends the session the classic way, as an outage longer than it does on an
        ensemble): the master must be announced again, and a scheduler subscribed through it."""
        self.steady()
        outage = self.rng.uniform(*self.params.zookeeper_outage)
        self.zookeeper.stop()
        time.sleep(outage)
        self.zookeeper.start()
        self.figures.zookeeper_outages.append(outage)
        client = self.cluster.announcer.client
        client_id = poll(lambda: client.client_id, 60, "the master's announcer did not reconnect")
        poll(lambda: self._announcement_session() == client_id[0], 60, "the master's announcement is gone")
        expired_at = time.monotonic()
        self._expire(client_id)
        poll(lambda: self._announcement_session() not in (None, client_id[0]), 60,
             "the master was not announced in ZooKeeper again within 60 s of its session's end")
        self.figures.reannounced_after.append(time.monotonic() - expired_at)
        self.steady()

    def _zk_client(self, client_id: tuple[int, bytes] | None = None) -> KazooClient:
        client = KazooClient(hosts=self.zookeeper.hosts, timeout=5, client_id=client_id)
        client.start(timeout=5)
        return client

    def _expire(self, client_id: tuple[int, bytes]) -> None:
        """End the session `client_id` in ZooKeeper: join it from another client, then close that one."""
        intruder = self._zk_client(client_id)
        intruder.stop()
        intruder.close()

    def _announcement_session(self) -> int | None:
        """The session owning the master's announcement node (None: no node, or ZooKeeper not answering)."""
        chroot = self.cluster.announcer.chroot
        try:
            client = self._zk_client()
        except Exception:
            return None
        try:
            children = client.get_children(chroot) if client.exists(chroot) else []
            for child in sorted(c for c in children if c.startswith("json.info_")):
                stat = client.exists(f"{chroot.rstrip('/')}/{child}")
                if stat is not None:
                    return int(stat.ephemeralOwner)
            return None
        finally:
            client.stop()
            client.close()

    # ------------------------------------------------------------------ master, tasks
    def _master(self) -> None:
        self.steady()
        restarted_at = time.monotonic()
        self.cluster.restart_master()
        self.figures.master_restarts += 1
        poll(lambda: self.audit.first_subscribe_after(restarted_at, None), 60,
             "no scheduler subscribed to the restarted master within 60 s")

    def _task(self) -> None:
        def pids() -> list[int]:
            return [task.command.process.pid for agent in self.cluster.agents for task in agent.tasks.values()
                    if task.command is not None and task.command.process is not None
                    and task.state == "TASK_RUNNING" and task.command.process.pid]

        running = poll(lambda: self.cluster.call(pids), 30, "no running task to kill", every=0.3)
        try:
            os.kill(self.rng.choice(running), signal.SIGKILL)
            self.figures.task_kills += 1
        except ProcessLookupError:
            pass
