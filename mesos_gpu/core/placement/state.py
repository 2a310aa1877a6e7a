"""Working state of one placement cycle (pure): free capacity per agent, GPU-count index, job context.

`CapacityLedger` copies the snapshot into plain integers, indexes GPU agents by whole free GPUs, and
debits or credits it as tasks are placed or a gang is rolled back (every debit can be undone exactly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from mesos_gpu.core.placement.constraints import HOSTNAME_FIELDS
from mesos_gpu.core.placement.demand import JobDemand, Needs
from mesos_gpu.core.placement.offers import AgentSlot
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.resources import (
    Range,
    Resources,
    ranges_add,
    ranges_count,
    ranges_subtract,
    take_lowest,
)

_NO_RANGES: tuple[Range, ...] = ()


def is_unhealthy(attributes: Mapping[str, str], policy: PlacementPolicy) -> bool:
    """Whether the agent's attributes say its GPUs are not to be used (`gpu_health:unhealthy`, ...)."""
    if attributes.get(policy.gpu_health_attribute, "").strip().lower() == "unhealthy":
        return True
    raw = attributes.get(policy.unhealthy_gpus_attribute)
    if raw is None:
        return False
    try:
        return float(raw) > 0
    except ValueError:
        return True


class AgentState:
    """One agent's free capacity during a cycle, in thousandths and port ranges."""

    __slots__ = (
        "agent_id", "attributes", "cpus", "disk", "gpu_capacity", "gpus", "held", "hostname", "index",
        "is_gpu", "labels", "locality", "mem", "port_count", "ports", "ranges", "scalars", "share_caps",
        "slot", "unhealthy",
    )

    def __init__(self, index: int, slot: AgentSlot, policy: PlacementPolicy) -> None:
        available = slot.available
        milli = available.scalars_milli()
        self.index = index
        self.slot = slot
        self.agent_id = slot.agent_id
        self.hostname = slot.hostname
        self.attributes = slot.attributes
        self.cpus = milli.pop("cpus", 0)
        self.mem = milli.pop("mem", 0)
        self.disk = milli.pop("disk", 0)
        self.gpus = milli.pop("gpus", 0)
        self.scalars = milli
        self.labels = slot.labels()      # shared by every task placed here (its reservation details, lazily)
        self.held = False  # held in this cycle for a waiting job (CapacityLedger.hold)
        self.ranges = available.range_map()
        self.ports = self.ranges.pop("ports", _NO_RANGES)
        self.port_count = ranges_count(self.ports)
        self.is_gpu = slot.has_gpus(policy.gpu_model_attribute) or self.gpus > 0
        self.unhealthy = self.is_gpu and is_unhealthy(slot.attributes, policy)
        total_gpus = slot.total.scalar_milli("gpus") if slot.total is not None else 0
        self.gpu_capacity = max(total_gpus, self.gpus)
        self.locality = slot.attributes.get(policy.locality_attribute)
        self.share_caps: object = None  # what its GPUs offer shares (`shares.caps_of`), read when needed

    def value_of(self, field: str) -> str | None:
        """The value a constraint on `field` sees: the hostname or an attribute (None when absent)."""
        if field in HOSTNAME_FIELDS:
            return self.hostname
        return self.attributes.get(field)

    def free(self) -> Resources:
        """What is left, as Resources with the offer's labels."""
        scalars = dict(self.scalars, cpus=self.cpus, mem=self.mem, disk=self.disk, gpus=self.gpus)
        ranges = dict(self.ranges, ports=self.ports)
        available = self.slot.available
        sets = {name: available.set_items(name) for name in available.names() if available.set_items(name)}
        free = Resources(scalars, ranges, sets, role=available.role)
        return free.with_labels(allocation_role=available.allocation_role)

    def __repr__(self) -> str:
        return f"AgentState({self.agent_id!r}, free={self.free()})"


class Debit(NamedTuple):
    """What one placement took from one agent; `CapacityLedger.credit` gives it back exactly."""

    agent: AgentState
    needs: Needs
    ports: tuple[int, ...]
    bucket_before: int


class CapacityLedger:
    """Free capacity of every agent in a snapshot, with GPU agents indexed by whole free GPUs.

    `cpu_agents`: agents without GPUs. `gpu_buckets[g]`: healthy GPU agents with `g` whole GPUs free,
    in a stable order. `unhealthy`: GPU agents whose GPUs must not be used. `held`: agents taken out of
    all of these for a waiting job (`hold`). `version` changes on every
    debit and credit, so cached answers can tell they are stale.
    """

    def __init__(self, slots: Sequence[AgentSlot], policy: PlacementPolicy) -> None:
        self.agents = [AgentState(index, slot, policy) for index, slot in enumerate(slots)]
        self.by_id = {agent.agent_id: agent for agent in self.agents}
        self.cpu_agents: dict[int, AgentState] = {}
        self.unhealthy: dict[int, AgentState] = {}
        self.gpu_buckets: list[dict[int, AgentState]] = [{}]
        self.gpu_agent_count = 0
        self.held: dict[int, AgentState] = {}
        self.version = 0
        for agent in self.agents:
            if not agent.is_gpu:
                self.cpu_agents[agent.index] = agent
                continue
            self.gpu_agent_count += 1
            if agent.unhealthy:
                self.unhealthy[agent.index] = agent
            else:
                self._bucket(agent.gpus // 1000)[agent.index] = agent

    def hold(self, agent_id: str) -> None:
        """Take the agent out of every candidate index for the rest of the cycle (held for a job that
        waits for it to free up); nothing is placed on it any more, so its offers are declined."""
        agent = self.by_id[agent_id]
        if agent.held:
            return
        agent.held = True
        self.held[agent.index] = agent
        self.cpu_agents.pop(agent.index, None)
        self.unhealthy.pop(agent.index, None)
        for bucket in self.gpu_buckets:
            bucket.pop(agent.index, None)
        self.version += 1

    def _bucket(self, whole: int) -> dict[int, AgentState]:
        buckets = self.gpu_buckets
        while len(buckets) <= whole:
            buckets.append({})
        return buckets[whole]

    def _move(self, agent: AgentState, before: int) -> None:
        after = agent.gpus // 1000
        if after != before and agent.is_gpu and not agent.unhealthy:
            del self.gpu_buckets[before][agent.index]
            self._bucket(after)[agent.index] = agent

    def debit(self, agent: AgentState, needs: Needs) -> Debit:
        """Take `needs` from `agent`, choosing the lowest free port numbers; the caller checked it fits."""
        before = agent.gpus // 1000
        agent.cpus -= needs.cpus
        agent.mem -= needs.mem
        agent.disk -= needs.disk
        agent.gpus -= needs.gpus
        ports: tuple[int, ...] = ()
        if needs.is_simple:
            # The common demand: only the port count can change the ranges.
            if needs.ports:
                ports, agent.ports = take_lowest(agent.ports, needs.ports)
                agent.port_count -= needs.ports
        else:
            for name, milli in needs.scalars:
                agent.scalars[name] = agent.scalars.get(name, 0) - milli
            for name, ranges in needs.ranges:
                if name == "ports":
                    agent.ports = ranges_subtract(agent.ports, ranges)
                else:
                    agent.ranges[name] = ranges_subtract(agent.ranges.get(name, _NO_RANGES), ranges)
            if needs.ports:
                ports, agent.ports = take_lowest(agent.ports, needs.ports)
            agent.port_count = ranges_count(agent.ports)
        if agent.gpus // 1000 != before:
            self._move(agent, before)
        self.version += 1
        return Debit(agent, needs, ports, before)

    def credit(self, debit: Debit) -> None:
        """Give back exactly what `debit` took (undoing a tentative gang member)."""
        agent, needs = debit.agent, debit.needs
        before = agent.gpus // 1000
        agent.cpus += needs.cpus
        agent.mem += needs.mem
        agent.disk += needs.disk
        agent.gpus += needs.gpus
        for name, milli in needs.scalars:
            agent.scalars[name] = agent.scalars.get(name, 0) + milli
        for name, ranges in needs.ranges:
            if name == "ports":
                agent.ports = ranges_add(agent.ports, ranges)
            else:
                agent.ranges[name] = ranges_add(agent.ranges.get(name, _NO_RANGES), ranges)
        if debit.ports:
            agent.ports = ranges_add(agent.ports, [(port, port) for port in debit.ports])
        if debit.ports or needs.ranges:
            agent.port_count = ranges_count(agent.ports)
        self._move(agent, before)
        self.version += 1


class JobContext:
    """Where a job's members are (running or placed this cycle), as constraints and scorers need it."""

    __slots__ = ("counts", "fields", "first", "job_id", "localities", "members_on", "ps_on")

    def __init__(self, job: JobDemand, policy: PlacementPolicy) -> None:
        self.job_id = job.job_id
        self.fields = sorted({c.field for member in job.members for c in member.constraints})
        self.counts: dict[str, dict[str | None, int]] = {field: {} for field in self.fields}
        self.first: dict[str, str | None] = dict.fromkeys(self.fields)
        self.members_on: dict[str, int] = {}
        self.ps_on: dict[str, int] = {}
        self.localities: dict[str, int] = {}
        for member in job.running:
            values = {field: member.hostname if field in HOSTNAME_FIELDS else member.attributes.get(field)
                      for field in self.fields}
            locality = member.attributes.get(policy.locality_attribute)
            self._count(member.agent_id, member.role, values, locality, 1)

    def add(self, agent: AgentState, role: str) -> None:
        """Record a member placed on `agent`."""
        values = {field: agent.value_of(field) for field in self.fields}
        self._count(agent.agent_id, role, values, agent.locality, 1)

    def remove(self, agent: AgentState, role: str) -> None:
        """Forget a member placed on `agent` (gang roll-back)."""
        values = {field: agent.value_of(field) for field in self.fields}
        self._count(agent.agent_id, role, values, agent.locality, -1)

    def _count(self, agent_id: str, role: str, values: Mapping[str, str | None], locality: str | None,
               step: int) -> None:
        for field, value in values.items():
            counts = self.counts[field]
            counts[value] = counts.get(value, 0) + step
            if not counts[value]:
                del counts[value]
            if step > 0 and self.first[field] is None:
                self.first[field] = value
            elif step < 0 and self.first[field] == value and value not in counts:
                self.first[field] = next(iter(counts), None)
        _bump(self.members_on, agent_id, step)
        if role == "ps":
            _bump(self.ps_on, agent_id, step)
        if locality is not None:
            _bump(self.localities, locality, step)


def _bump(counter: dict[str, int], key: str, step: int) -> None:
    value = counter.get(key, 0) + step
    if value:
        counter[key] = value
    else:
        counter.pop(key, None)
