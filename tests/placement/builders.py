"""Fluent builders for agents, offers, tasks and jobs in placement tests: `agent("a1").gpus(4).build()`."""

from __future__ import annotations

import dataclasses
from typing import Any

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import (
    AgentSlot,
    JobDemand,
    OfferView,
    PlacementPolicy,
    TaskDemand,
    parse_constraint,
)
from mesos_gpu.core.placement.state import AgentState, JobContext
from mesos_gpu.core.resources import Range, Resources
from mesos_gpu.core.sharing import ShareNeed, milli
from mesos_gpu.core.wire import resources_to_mesos


class AgentBuilder:
    """An agent offering 16 cpus, 64 GiB, 100 GB disk, ports 31000-31099 and no GPU unless told."""

    def __init__(self, agent_id: str) -> None:
        self._id = agent_id
        self._hostname = f"{agent_id}.example"
        self._scalars: dict[str, float] = {"cpus": 16, "mem": 65536, "disk": 100_000}
        self._ports: list[Range] = [(31000, 31099)]
        self._attributes: dict[str, str] = {}
        self._offer_ids: tuple[str, ...] = (f"{agent_id}-O1",)
        self._total: dict[str, float] | None = None
        self._allocation_role: str | None = None
        self._gpu_agent: bool | None = None

    def hostname(self, name: str) -> AgentBuilder:
        self._hostname = name
        return self

    def cpus(self, n: float) -> AgentBuilder:
        self._scalars["cpus"] = n
        return self

    def mem(self, n: float) -> AgentBuilder:
        self._scalars["mem"] = n
        return self

    def disk(self, n: float) -> AgentBuilder:
        self._scalars["disk"] = n
        return self

    def gpus(self, n: int, model: str | None = None) -> AgentBuilder:
        self._scalars["gpus"] = n
        if model is not None:
            self._attributes["gpu_model"] = model
        return self

    def scalar(self, name: str, n: float) -> AgentBuilder:
        self._scalars[name] = n
        return self

    def ports(self, *ranges: Range) -> AgentBuilder:
        self._ports = list(ranges)
        return self

    def attr(self, name: str, value: str) -> AgentBuilder:
        self._attributes[name] = value
        return self

    def rack(self, value: str) -> AgentBuilder:
        return self.attr("rack", value)

    def unhealthy(self) -> AgentBuilder:
        return self.attr("gpu_health", "unhealthy")

    def offers(self, *offer_ids: str) -> AgentBuilder:
        self._offer_ids = offer_ids
        return self

    def total(self, **scalars: float) -> AgentBuilder:
        """The agent's whole capacity (defaults to what it offers, plus these)."""
        self._total = scalars
        return self

    def gpu_agent(self, flag: bool) -> AgentBuilder:
        self._gpu_agent = flag
        return self

    def allocation_role(self, role: str) -> AgentBuilder:
        self._allocation_role = role
        return self

    def resources(self) -> Resources:
        core = {k: self._scalars.get(k, 0) for k in ("cpus", "mem", "disk", "gpus")}
        other = {k: v for k, v in self._scalars.items() if k not in core}
        built = Resources.of(**core, ports=self._ports, scalars=other)
        return built.with_labels(allocation_role=self._allocation_role)

    def build(self) -> AgentSlot:
        available = self.resources()
        total = None
        if self._total is not None:
            merged = {**self._scalars, **self._total}
            core = {k: merged.get(k, 0) for k in ("cpus", "mem", "disk", "gpus")}
            total = Resources.of(**core, ports=self._ports)
        return AgentSlot(self._id, self._hostname, available, self._offer_ids, dict(self._attributes),
                         total=total, gpu_agent=self._gpu_agent)

    def offer_json(self, offer_id: str | None = None) -> dict[str, Any]:
        """This agent as a Mesos v1 Offer JSON object."""
        return {
            "id": {"value": offer_id or self._offer_ids[0]}, "framework_id": {"value": "F"},
            "agent_id": {"value": self._id}, "hostname": self._hostname,
            "resources": resources_to_mesos(self.resources()),
            "attributes": [{"name": k, "type": "TEXT", "text": {"value": v}}
                           for k, v in self._attributes.items()],
        }


def agent(agent_id: str) -> AgentBuilder:
    return AgentBuilder(agent_id)


class TaskBuilder:
    """A task of job "j" needing 1 cpu and 1 GiB unless told."""

    def __init__(self, task_id: str, job_id: str) -> None:
        self._id = task_id
        self._job = job_id
        self._role = "worker"
        self._index = 0
        self._scalars: dict[str, float] = {"cpus": 1, "mem": 1024}
        self._ports = 0
        self._fixed_ports: list[Range] = []
        self._constraints: list[Any] = []
        self._share: ShareNeed | None = None
        self._opens = False

    def share(self, gpus: float, isolation: str = "capped", *, gpus_min: float | None = None,
              memory: int = 0) -> TaskBuilder:
        """A GPU share of `gpus` (elastic from `gpus_min`), `memory` MB stated (0: none)."""
        self._share = ShareNeed(Isolation(isolation), milli(gpus), milli(gpus_min or gpus), memory)
        return self

    def opening(self) -> TaskBuilder:
        """The demand of opening a share host for the share (its needs carry it, as `share_capable` sees)."""
        self._opens = True
        return self

    def role(self, role: str, index: int = 0) -> TaskBuilder:
        self._role, self._index = role, index
        return self

    def cpus(self, n: float) -> TaskBuilder:
        self._scalars["cpus"] = n
        return self

    def mem(self, n: float) -> TaskBuilder:
        self._scalars["mem"] = n
        return self

    def disk(self, n: float) -> TaskBuilder:
        self._scalars["disk"] = n
        return self

    def gpus(self, n: float) -> TaskBuilder:
        self._scalars["gpus"] = n
        return self

    def scalar(self, name: str, n: float) -> TaskBuilder:
        self._scalars[name] = n
        return self

    def ports(self, n: int) -> TaskBuilder:
        self._ports = n
        return self

    def fixed_ports(self, *ranges: Range) -> TaskBuilder:
        self._fixed_ports = list(ranges)
        return self

    def constraint(self, *parts: str) -> TaskBuilder:
        self._constraints.append(parse_constraint(list(parts)))
        return self

    def build(self) -> TaskDemand:
        core = {k: self._scalars.get(k, 0) for k in ("cpus", "mem", "disk", "gpus")}
        other = {k: v for k, v in self._scalars.items() if k not in core}
        resources = Resources.of(**core, ports=self._fixed_ports, scalars=other)
        if self._opens:
            built = TaskDemand(self._id, self._job, self._role, self._index, resources, self._ports,
                               tuple(self._constraints))
            object.__setattr__(built, "needs", dataclasses.replace(built.needs, share=self._share))
            return built
        return TaskDemand(self._id, self._job, self._role, self._index, resources, self._ports,
                          tuple(self._constraints), self._share)


def task(task_id: str = "t", job_id: str = "j") -> TaskBuilder:
    return TaskBuilder(task_id, job_id)


def tf_job(job_id: str, workers: int = 2, ps: int = 1, *, gpus: int = 1, chief: bool = True,
           constraints: tuple[tuple[str, ...], ...] = ()) -> JobDemand:
    """A TF job: chief + workers with `gpus` each, CPU-only ps; one port each."""
    members = []
    roles = ([("chief", 0)] if chief else []) + [("worker", i) for i in range(workers)] + \
        [("ps", i) for i in range(ps)]
    for role, index in roles:
        builder = task(f"{job_id}-{role}-{index}", job_id).role(role, index).ports(1).cpus(2).mem(2048)
        if role != "ps":
            builder.gpus(gpus)
        for parts in constraints:
            builder.constraint(*parts)
        members.append(builder.build())
    return JobDemand.of(members)


def view(*agents: AgentBuilder, catalog: list[AgentBuilder] | None = None) -> OfferView:
    return OfferView(tuple(a.build() for a in agents),
                     tuple(c.build() for c in catalog) if catalog is not None else None)


def agent_state(builder: AgentBuilder, policy: PlacementPolicy | None = None) -> AgentState:
    return AgentState(0, builder.build(), policy or PlacementPolicy())


def context(*members: TaskDemand, placed_on: tuple[tuple[AgentState, str], ...] = ()) -> JobContext:
    """A job context for `members`, with members already placed on the given (agent, role) pairs."""
    demand = JobDemand.of(list(members) or [task().build()])
    ctx = JobContext(demand, PlacementPolicy())
    for state, role in placed_on:
        ctx.add(state, role)
    return ctx
