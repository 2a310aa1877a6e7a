"""What the soak checks, recorded from the local master's and agents' own handling (not the scheduler's).

`Audit.install(cluster)` wraps, on the cluster's loop thread, every master's `subscribe` and
`handle_call` (through `LocalCluster.watch_masters`, so a restarted master is wrapped before it serves)
and every agent's `launch` and `record_update`. It notes:

- each SUBSCRIBE with the scheduler instance that sent it (its FrameworkInfo's `webui_url`) and time;
- each other call with the instance whose subscription's stream id it carries, and whether the master
  took it (a call on a stream that is not the framework's current one is refused: still noted);
- each task id an agent was asked to launch, and how often (twice is a duplicate launch);
- each agent's GPU devices held by RUNNING tasks (from the devices TASK_RUNNING names and the terminal
  updates that free them): a device held by two unfinished tasks at once is a double allocation.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.devicelabels import devices_from_labels, status_labels
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
    _holders: dict[tuple[str, int], str] = field(default_factory=dict)
    _streams: dict[str, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, cluster: LocalCluster) -> None:
        cluster.watch_masters(self._wrap_master)
        cluster.call(lambda: [self._wrap_agent(agent) for agent in cluster.agents])

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
            if self.last_state.get(task_id) not in TERMINAL:
                self.last_state[task_id] = state
            if state == "TASK_RUNNING":
                for device in devices_from_labels(status_labels(status)) or []:
                    if device.get("index") is None:
                        continue
                    key = (agent_id, int(device["index"]))
                    holder = self._holders.get(key)
                    if holder is not None and holder != task_id:
                        self.double_allocations.append(f"{agent_id} GPU {key[1]}: {holder} and {task_id}")
                    self._holders[key] = task_id
            elif state in TERMINAL:
                for key in [k for k, v in self._holders.items() if v == task_id]:
                    del self._holders[key]

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
