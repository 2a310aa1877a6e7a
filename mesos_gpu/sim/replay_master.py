"""A simulated Mesos master for the replay in time (pure Python, simulated clock): offers, filters, tasks.

It offers each agent's free resources as Mesos' allocator does, in batch allocation rounds
(`ALLOCATION_INTERVAL`, Mesos' `--allocation_interval` default of 1 s), one outstanding offer per agent,
in the Offer JSON the scheduler's `OffersReceived` takes (`wire.resources_to_mesos`). It carries out
the state machine's answers as the master does:

- DECLINE / ACCEPT with `refuse_seconds`: the offered (or the accepted offer's unused) resources are
  filtered for the agent that long; like Mesos' `RefusedOfferFilter`, a filter only hides resources it
  contains, so an agent whose free resources grow (a task ended there) is offered again at once.
- REVIVE clears every filter and un-suppresses; SUPPRESS stops offers until the next REVIVE.
- ACCEPT launches the TaskInfos: a task's resources, plus its executor's the first time that executor
  runs on the agent (a share host holds its whole GPU through its ExecutorInfo). A launch the offer
  cannot hold is dropped (TASK_DROPPED, REASON_INVALID_OFFERS), as Mesos drops an invalid one.
- A share host executor with no task for its linger exits by itself (as `isolator.sharehost` does):
  its resources return and the scheduler is told (`ExecutorEnded`, pymesos' `executorLost`).

The replay driver (`sim.replay_run`) asks it for the offers of a round (`allocate`), hands it the
commands (`carry_out`) and tells it when tasks end (`finish`); it answers the status updates and
executor exits the scheduler must see.
"""

from __future__ import annotations

import base64
import heapq
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.commands import Accept, Command, Decline, KillTask, Revive, Suppress
from mesos_gpu.core.placement.offers import AgentSlot
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.wire import resources_from_mesos, resources_to_mesos

ALLOCATION_INTERVAL = 1.0   # Mesos' batch allocation interval (seconds)
FRAMEWORK_ID = "sim-framework"
_MIN_CPUS, _MIN_MEM = 0.01, 32.0   # Mesos offers nothing smaller (its allocatable minimum)

JsonDict = dict[str, Any]


@dataclass
class _Executor:
    executor_id: str
    resources: Resources
    linger: float
    tasks: set[str] = field(default_factory=set)
    empty_since: float | None = None


@dataclass
class _Agent:
    slot: AgentSlot
    free: Resources
    attributes: list[JsonDict]
    filtered: Resources | None = None     # what the framework refused here, until `filter_until`
    filter_until: float = 0.0
    offer_id: str | None = None
    executors: dict[str, _Executor] = field(default_factory=dict)
    _offered_json: tuple[Resources, list[JsonDict]] | None = None

    def resources_json(self) -> list[JsonDict]:
        cached = self._offered_json
        if cached is None or cached[0] is not self.free:
            cached = self._offered_json = (self.free, resources_to_mesos(self.free))
        return cached[1]


@dataclass(frozen=True)
class Launched:
    """A task the master started: where, what it holds (its own resources), its executor (or None)."""

    task_id: str
    job_id: str
    agent: int
    resources: Resources
    executor_id: str | None


def _allocatable(free: Resources) -> bool:
    return free.cpus >= _MIN_CPUS or free.mem >= _MIN_MEM or free.gpus >= 1


def _label(info: Mapping[str, Any], key: str) -> str:
    for item in info.get("labels", {}).get("labels", ()):
        if item.get("key") == key:
            return str(item.get("value", ""))
    return ""


def status(task_id: str, state: str, agent_id: str, reason: str | None = None) -> JsonDict:
    """A TaskStatus as the executor (or the master, for a dropped launch) sends it."""
    out: JsonDict = {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": agent_id},
                     "source": "SOURCE_EXECUTOR" if reason is None else "SOURCE_MASTER"}
    if reason is not None:
        out["reason"] = reason
    return out


class SimMaster:
    """The master's side of the replay: agents, offers, filters, running tasks and executors."""

    def __init__(self, nodes: Sequence[AgentSlot]) -> None:
        self.agents = [
            _Agent(slot, slot.total or slot.available,
                   [{"name": k, "type": "TEXT", "text": {"value": v}} for k, v in slot.attributes.items()])
            for slot in nodes
        ]
        self.by_id = {agent.slot.agent_id: index for index, agent in enumerate(self.agents)}
        self.suppressed = False
        self.tasks: dict[str, Launched] = {}
        self.offers: dict[str, int] = {}        # outstanding offer id -> agent index
        self._candidates: set[int] = set(range(len(self.agents)))
        self._expiries: list[tuple[float, int]] = []    # (filter end, agent index)
        self._offer_count = 0
        self.dropped = 0        # launches the offers could not hold (a planner over-commit)
        self.offers_made = 0

    # ------------------------------------------------------------------------------------- offers
    def next_round(self, now: float) -> float | None:
        """When the next allocation round that may offer something runs (None: none is due)."""
        if self.suppressed:
            return None
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            self._candidates.add(heapq.heappop(expiries)[1])
        due = now if self._candidates else (expiries[0][0] if expiries else None)
        if due is None:
            return None
        return math.ceil(due / ALLOCATION_INTERVAL - 1e-9) * ALLOCATION_INTERVAL

    def allocate(self, now: float) -> tuple[JsonDict, ...]:
        """One allocation round: an offer of each agent whose free resources are not filtered."""
        if self.suppressed:
            return ()
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            self._candidates.add(heapq.heappop(expiries)[1])
        offers = []
        for index in sorted(self._candidates):
            agent = self.agents[index]
            if agent.offer_id is not None or not _allocatable(agent.free):
                continue
            refused = agent.filtered
            if refused is not None and agent.filter_until > now and refused.contains(agent.free):
                continue    # its filter's expiry puts it back among the candidates
            self._offer_count += 1
            offer_id = f"O{self._offer_count}"
            agent.offer_id = offer_id
            self.offers[offer_id] = index
            slot = agent.slot
            offers.append({
                "id": {"value": offer_id}, "framework_id": {"value": FRAMEWORK_ID},
                "agent_id": {"value": slot.agent_id}, "hostname": slot.hostname,
                "resources": agent.resources_json(), "attributes": agent.attributes,
            })
        self._candidates.clear()
        self.offers_made += len(offers)
        return tuple(offers)

    def _filter(self, index: int, refuse_seconds: float, now: float) -> None:
        agent = self.agents[index]
        agent.filtered, agent.filter_until = agent.free, now + refuse_seconds
        if refuse_seconds > 0:
            heapq.heappush(self._expiries, (now + refuse_seconds, index))
        else:
            self._candidates.add(index)

    def _answered(self, offer_ids: Iterable[str]) -> list[int]:
        indexes = []
        for offer_id in offer_ids:
            index = self.offers.pop(offer_id, None)
            if index is not None:
                self.agents[index].offer_id = None
                indexes.append(index)
        return indexes

    # ----------------------------------------------------------------------------------- commands
    def carry_out(self, commands: Sequence[Command], now: float) -> tuple[list[JsonDict], list[Launched]]:
        """Carry out the scheduler's commands: the status updates it must be sent, and the tasks started."""
        statuses: list[JsonDict] = []
        started: list[Launched] = []
        for command in commands:
            if isinstance(command, Accept):
                for index in self._answered(command.offer_ids):
                    self._launch(index, command.task_infos, now, statuses, started)
                    self._filter(index, command.refuse_seconds, now)
            elif isinstance(command, Decline):
                for index in self._answered(command.offer_ids):
                    self._filter(index, command.refuse_seconds, now)
            elif isinstance(command, Revive):
                self.suppressed = False
                for agent in self.agents:
                    agent.filtered = None
                self._expiries.clear()
                self._candidates.update(range(len(self.agents)))
            elif isinstance(command, Suppress):
                self.suppressed = True
            elif isinstance(command, KillTask) and command.task_id in self.tasks:
                task = self.tasks[command.task_id]
                statuses.append(status(task.task_id, "TASK_KILLED", self.agents[task.agent].slot.agent_id))
                self.finish(task.task_id, now)
            # Persist, Acknowledge, Reconcile (nothing to reconcile), ClearRendezvous: no master effect
        return statuses, started

    def _launch(self, index: int, infos: Sequence[Mapping[str, Any]], now: float, statuses: list[JsonDict],
                started: list[Launched]) -> None:
        agent = self.agents[index]
        agent_id = agent.slot.agent_id
        for info in infos:
            task_id = str(info["task_id"]["value"])
            own = resources_from_mesos(info.get("resources", ()))
            need, executor, opened = own, None, None
            executor_json = info.get("executor")
            if executor_json is not None:
                executor_id = str(executor_json["executor_id"]["value"])
                executor = agent.executors.get(executor_id)
                if executor is None:    # its first task here: the executor starts, with its resources
                    executor = opened = _Executor(
                        executor_id, resources_from_mesos(executor_json.get("resources", ())),
                        _linger(executor_json))
                    need = own + opened.resources
            if not agent.free.contains(need):
                self.dropped += 1
                statuses.append(status(task_id, "TASK_DROPPED", agent_id, "REASON_INVALID_OFFERS"))
                continue
            agent.free = agent.free - need
            if opened is not None:
                agent.executors[opened.executor_id] = opened
            if executor is not None:
                executor.tasks.add(task_id)
                executor.empty_since = None
            launched = Launched(task_id, _label(info, "mesos-gpu/job"), index, own,
                                executor.executor_id if executor is not None else None)
            self.tasks[task_id] = launched
            started.append(launched)
            statuses.append(status(task_id, "TASK_STARTING", agent_id))
            statuses.append(status(task_id, "TASK_RUNNING", agent_id))

    # ----------------------------------------------------------------------------------- endings
    def finish(self, task_id: str, now: float) -> _Executor | None:
        """Task `task_id` ended: its resources return (its executor's stay while the executor runs); the
        executor that has become empty, whose linger starts now (None if none)."""
        task = self.tasks.pop(task_id)
        agent = self.agents[task.agent]
        agent.free = agent.free + task.resources
        self._candidates.add(task.agent)
        if task.executor_id is None:
            return None
        executor = agent.executors[task.executor_id]
        executor.tasks.discard(task_id)
        if executor.tasks:
            return None
        executor.empty_since = now
        return executor

    def executor_exits(self, agent_id: str, executor_id: str, empty_since: float) -> bool:
        """The linger of an executor that emptied at `empty_since` is over: if it is still empty since
        then, it exits and its resources return (True: the scheduler must be told)."""
        index = self.by_id[agent_id]
        agent = self.agents[index]
        executor = agent.executors.get(executor_id)
        if executor is None or executor.tasks or executor.empty_since != empty_since:
            return False
        del agent.executors[executor_id]
        agent.free = agent.free + executor.resources
        self._candidates.add(index)
        return True

    def used_gpus(self) -> float:
        """GPUs held on every agent (tasks' and executors')."""
        return sum((agent.slot.total or agent.slot.available).gpus - agent.free.gpus for agent in self.agents)


def _linger(executor: Mapping[str, Any]) -> float:
    """The linger a share host's ExecutorInfo carries in its base64 JSON `data` (30 s when absent)."""
    try:
        data = json.loads(base64.b64decode(executor.get("data", "")))
        return float(data.get("linger_seconds", 30.0))
    except (ValueError, TypeError):
        return 30.0
