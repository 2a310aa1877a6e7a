"""What the soak checks, recorded from the local master's and agents' own handling (not the scheduler's).

`Audit.install(cluster)` wraps, on the cluster's loop thread, every master's `subscribe` and
`handle_call` (through `LocalCluster.watch_masters`, so a restarted master is wrapped before it serves)
and every agent's `launch` and `record_update`. It notes:

- each SUBSCRIBE with the scheduler instance that sent it (its FrameworkInfo's `webui_url`) and time;
- each other call with the instance whose subscription's stream id it carries, and whether the master
  took it (a call on a stream that is not the framework's current one is refused: still noted);
- each task id an agent was asked to launch, and how often (twice is a duplicate launch);
- each agent's GPU devices held by RUNNING tasks (from the devices TASK_RUNNING names and the terminal
  updates that free them): a device held by two unfinished whole-GPU tasks at once is a double allocation;
- the GPU shares RUNNING on each device (a share task's TASK_RUNNING names its device's UUID, its share and
  its share host, `core.sharing.LABEL_*`): the shares on one device summing beyond 1.0, a share on a
  device a whole-GPU task holds (either order), and shares of two share hosts on one device at once (each
  host holds its GPU whole) are share violations. MIG shares name their instance, not the GPU: the soak
  runs none.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.devicelabels import devices_from_labels, status_labels
from mesos_gpu.core.sharing import LABEL_DEVICE, LABEL_SHARE, LABEL_SHARE_HOST
from mesos_gpu.local.cluster import LocalCluster

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED",
            "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNREACHABLE"}


@dataclass
class Call:
    """One call a master received: when, its type, the scheduler instance (webui_url) and whether taken."""

    at: float
    kind: str
    instance: str | None
    accepted: bool


@dataclass
class Audit:
    """The records (see module docstring); every method is safe from any thread."""

    calls: list[Call] = field(default_factory=list)
    launches: Counter[str] = field(default_factory=Counter)
    launched_at: dict[str, float] = field(default_factory=dict)
    last_state: dict[str, str] = field(default_factory=dict)
    double_allocations: list[str] = field(default_factory=list)
    share_violations: list[str] = field(default_factory=list)
    shares_seen: int = 0  # share tasks seen RUNNING (a run shows its share checks were not vacuous)
    peak_share: int = 0  # the most thousandths of one GPU seen RUNNING as shares at once
    share_gpus: set[tuple[str, str]] = field(default_factory=set)  # (agent, UUID) that ran shares
    whole_gpus: set[tuple[str, str]] = field(default_factory=set)  # (agent, UUID) given whole to a task
    _holders: dict[tuple[str, int], str] = field(default_factory=dict)
    _whole: dict[tuple[str, str], str] = field(default_factory=dict)  # (agent, GPU UUID) -> whole-GPU task
    _shares: dict[tuple[str, str], dict[str, tuple[int, str]]] = field(default_factory=dict)  # -> task:
    # (thousandths of a GPU, share host)
    _streams: dict[str, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, cluster: LocalCluster) -> None:
        cluster.watch_masters(self._wrap_master)

        def wrap_agents() -> None:
            for agent in cluster.agents:
                self._wrap_agent(agent)

        cluster.call(wrap_agents)

    # ------------------------------------------------------------------ the master
    def _wrap_master(self, master: Any) -> None:
        subscribe, handle_call = master.subscribe, master.handle_call

        def subscribing(call: dict[str, Any], stream: Any, stream_id: str) -> None:
            instance = call.get("subscribe", {}).get("framework_info", {}).get("webui_url")
            with self._lock:
                self._streams[stream_id] = instance
            subscribe(call, stream, stream_id)
            self._note("SUBSCRIBE", instance, accepted=not getattr(stream, "closed", False))

        def handling(call: dict[str, Any], stream_id: str | None) -> int:
            with self._lock:
                instance = self._streams.get(stream_id or "")
            try:
                status = handle_call(call, stream_id)
            except Exception:
                self._note(str(call.get("type")), instance, accepted=False)
                raise
            self._note(str(call.get("type")), instance, accepted=True)
            return status

        master.subscribe, master.handle_call = subscribing, handling

    def _note(self, kind: str, instance: str | None, *, accepted: bool) -> None:
        with self._lock:
            self.calls.append(Call(time.monotonic(), kind, instance, accepted))

    # ------------------------------------------------------------------ the agents
    def _wrap_agent(self, agent: Any) -> None:
        launch, record_update = agent.launch, agent.record_update
        agent_id = agent.agent_id

        def launching(framework: dict[str, Any], task: dict[str, Any] | None = None,
                      executor: dict[str, Any] | None = None,
                      task_group: dict[str, Any] | None = None) -> None:
            tasks = [task] if task is not None else list((task_group or {}).get("tasks", []))
            with self._lock:
                for info in tasks:
                    task_id = str(info["task_id"]["value"])
                    self.launches[task_id] += 1
                    self.launched_at.setdefault(task_id, time.monotonic())
                    self.last_state.setdefault(task_id, "TASK_STAGING")
            launch(framework, task, executor, task_group)

        def recording(framework_id: str, status: dict[str, Any]) -> None:
            self._status(agent_id, status)
            record_update(framework_id, status)

        agent.launch, agent.record_update = launching, recording

    def _status(self, agent_id: str, status: dict[str, Any]) -> None:
        task_id = str(status["task_id"]["value"])
        state = str(status.get("state"))
        with self._lock:
            ended = self.last_state.get(task_id) in TERMINAL
            if not ended:
                self.last_state[task_id] = state
            labels = status_labels(status)
            if state == "TASK_RUNNING" and not ended:  # a late RUNNING after the end holds nothing
                if LABEL_SHARE in labels:
                    self._running_share(agent_id, task_id, labels)
                else:
                    self._running_whole(agent_id, task_id, labels)
            elif state in TERMINAL:
                for key in [k for k, v in self._holders.items() if v == task_id]:
                    del self._holders[key]
                for uuid_key in [k for k, v in self._whole.items() if v == task_id]:
                    del self._whole[uuid_key]
                for shares in self._shares.values():
                    shares.pop(task_id, None)

    def _running_whole(self, agent_id: str, task_id: str, labels: dict[str, str]) -> None:
        """A whole-GPU task RUNNING (lock held): its devices must be free of other tasks and of shares."""
        for device in devices_from_labels(labels) or []:
            if device.get("uuid") is not None:
                uuid_key = (agent_id, str(device["uuid"]))
                self._whole[uuid_key] = task_id
                self.whole_gpus.add(uuid_key)
                shares = sorted(t for t in self._shares.get(uuid_key, {}) if t != task_id)
                if shares:
                    self.share_violations.append(f"{agent_id} GPU {uuid_key[1]} given whole to {task_id} "
                                                 f"while shares {shares} run on it")
            if device.get("index") is None:
                continue
            key = (agent_id, int(device["index"]))
            holder = self._holders.get(key)
            if holder is not None and holder != task_id:
                self.double_allocations.append(f"{agent_id} GPU {key[1]}: {holder} and {task_id}")
            self._holders[key] = task_id

    def _running_share(self, agent_id: str, task_id: str, labels: dict[str, str]) -> None:
        """A share task RUNNING (lock held): its device's shares must sum to 1.0 at most, all of one share
        host, on a device no whole-GPU task holds."""
        uuid_key = (agent_id, labels.get(LABEL_DEVICE, "?"))
        host = labels.get(LABEL_SHARE_HOST, "?")
        try:
            share = round(float(labels[LABEL_SHARE]) * 1000)
        except ValueError:
            self.share_violations.append(f"{task_id} RUNNING with share {labels[LABEL_SHARE]!r}")
            return
        shares = self._shares.setdefault(uuid_key, {})
        self.shares_seen += task_id not in shares
        self.share_gpus.add(uuid_key)
        shares[task_id] = (share, host)
        where = f"{agent_id} GPU {uuid_key[1]}"
        whole = self._whole.get(uuid_key)
        if whole is not None and whole != task_id:
            self.share_violations.append(f"{where}: share {task_id} runs on the GPU given whole to {whole}")
        hosts = sorted({h for _, h in shares.values()})
        if len(hosts) > 1:
            self.share_violations.append(f"{where}: shares of {len(hosts)} share hosts {hosts} at once")
        total = sum(milli for milli, _ in shares.values())
        self.peak_share = max(self.peak_share, total)
        if total > 1000:
            self.share_violations.append(f"{where}: shares {sorted(shares)} sum to {total / 1000:g} GPU")

    # ------------------------------------------------------------------ questions
    def snapshot(self) -> tuple[list[Call], dict[str, int], dict[str, str]]:
        with self._lock:
            return list(self.calls), dict(self.launches), dict(self.last_state)

    def duplicates(self) -> list[str]:
        with self._lock:
            return sorted(task_id for task_id, count in self.launches.items() if count > 1)

    def first_subscribe_after(self, since: float, other_than: str | None) -> float | None:
        """When a SUBSCRIBE from an instance other than `other_than` was first taken after `since`."""
        with self._lock:
            return next((c.at for c in self.calls if c.at >= since and c.kind == "SUBSCRIBE" and c.accepted
                         and c.instance != other_than), None)

    def calls_from(self, instance: str, start: float, end: float) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.instance == instance and start <= c.at < end]

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.kind == kind)
