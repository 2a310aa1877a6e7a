"""Placement of GPU shares (pure): the per-device share ledger and the choice of a device for a share.

A share (`TaskDemand.share`, a fraction of one GPU) runs on a share host: an executor holding one whole
GPU. `ShareLedger` knows, per agent of the cycle, the share hosts the scheduler reported
(`ShareHostView`: fraction and memory given, isolation, accepting, free MIG instances) and the hosts
opened tentatively in this cycle; every debit can be credited back exactly (gang roll-back).

Rules (`ShareStack.select`):
- never more than 1000 thousandths, nor more than the device's memory (when known), on one device;
  one isolation level per device; `mps` needs the agent's `gpu_mps:true`, `mig` a free instance of its
  `gpu_mig` layout (the smallest with `gpus >= need` and `memory >= need.memory`; the grant is the
  instance's fraction and memory);
- existing hosts first; then a new host (one whole GPU plus `SHARE_HOST_RESOURCES` from the agent's
  offer). Either is chosen by how much it fragments the cluster (`fragmentation`, after FGD): the
  device's fragmentation gradient against the task sizes seen, plus the change of the GPU the node
  strands behind its cpus; candidates are visited best gradient first (existing devices) or fewest
  whole GPUs free first (new hosts: whole agents stay free for whole-GPU tasks); with the policy's
  `share_hosts="spread"`, a new host goes instead where Tetris' alignment of the task's (cpus, GPU)
  with the agent's free ones is highest, most whole GPUs free first (more tasks fit, multi-GPU tasks
  find fewer whole agents: see `PlacementPolicy`);
- an elastic share gets its max on an existing host or a new one, else the largest free part >= min;
- granted memory: the stated one, else floor(fraction * device memory / 1000) (0 when unknown).
Every share also debits its own cpus/mem/disk/ports from the agent's offer.

The GPU profile in force (`ShareHostViews.profile`; `profilesapply.ProfileGate` says what it allows): per
agent group, the levels and sizes offered and the most share hosts per agent; draining hosts are not
indexed. The published strategies' own choices do not check the sizes on existing hosts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import reasons
from mesos_gpu.core.placement.capabilities import caps_of, smallest_instance
from mesos_gpu.core.placement.demand import Needs, TaskDemand
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, first_failure
from mesos_gpu.core.placement.fragmentation import FragmentationTable
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.stack import OrderedCounts, PlacementStack
from mesos_gpu.core.placement.state import AgentState, CapacityLedger, Debit, JobContext
from mesos_gpu.core.profilesapply import ProfileGate
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import SHARE_HOST_RESOURCES, ShareGrant, ShareHostView, ShareNeed

NEW_HOST_PREFIX = "new:"
WHOLE = 1000
CANDIDATES = 16  # feasible devices (or agents, for a new host) scored per share
PER_BUCKET = 2  # agents scored per count of whole GPUs free (cpu-rich and cpu-poor agents both seen)
SCAN_BUDGET = 32  # devices (agents) visited after the first feasible one, at most


class Device:
    """One share host's GPU in the ledger: what its shares take, and where it is indexed."""

    __slots__ = ("accepting", "agent", "agent_id", "device_memory", "host_id", "isolation", "mig_free",
                 "new", "seq", "used", "used_memory")

    def __init__(  # noqa: PLR0917
            self, seq: int, host_id: str, agent: AgentState | None, agent_id: str, isolation: Isolation,
            device_memory: int, used: int = 0, used_memory: int = 0, accepting: bool = True,
            mig_free: tuple[int, ...] = (), new: bool = False) -> None:
        self.seq = seq
        self.host_id = host_id
        self.agent = agent
        self.agent_id = agent_id
        self.isolation = isolation
        self.device_memory = device_memory
        self.used = used
        self.used_memory = used_memory
        self.accepting = accepting
        self.mig_free = mig_free
        self.new = new

    @property
    def free(self) -> int:
        return WHOLE - self.used

    def view(self) -> ShareHostView:
        """As the state machine would report it (tests feed these back as the next cycle's hosts)."""
        return ShareHostView(self.host_id, self.agent_id, self.isolation, self.device_memory, self.used,
                             self.used_memory, self.accepting, self.mig_free)

    def __repr__(self) -> str:
        return f"Device({self.host_id!r}, {self.isolation.value}, used={self.used}, mem={self.used_memory})"


class ShareChoice(NamedTuple):
    """Where a share goes: an existing device (or None: open a new host on `agent`) and the grant."""

    agent: AgentState
    device: Device | None
    gpus: int
    memory: int
    device_memory: int
    mig_index: int | None
    mig_profile: str | None


class ShareDebit(NamedTuple):
    """What placing one share took: the agent's debit (the task's own resources, plus the whole GPU
    and the host's resources when it opened one) and the device's."""

    debit: Debit
    device: Device
    grant: ShareGrant
    opened: bool


class ShareLedger:
    """Every share host's device of the cycle, indexed by isolation and free thousandths."""

    def __init__(self, capacity: CapacityLedger, hosts: Sequence[ShareHostView] = ()) -> None:
        self.capacity = capacity
        self.devices: dict[int, Device] = {}
        # level -> free thousandths -> devices (usable this cycle: accepting, on a healthy offered agent)
        self.index: dict[Isolation, dict[int, dict[int, Device]]] = {}
        self.mig: dict[int, Device] = {}
        self.free_on: dict[int, int] = {}  # agent index -> thousandths free on its indexed (non-MIG) devices
        self.on_agent: dict[int, dict[int, Device]] = {}  # agent index -> its indexed (non-MIG) devices
        self._opened: dict[str, int] = {}
        self._seq = 0
        self.version = 0
        # agent index -> its hosts empty now that were empty at the start (their GPU returns at the linger)
        self.empty_on: dict[int, int] = {}
        self._empty: dict[int, int] = {}  # seq of a host empty at the start -> its `used` then
        # What the GPU profile in force allows (None: no profile; `ShareHostViews.profile`).
        profile = getattr(hosts, "profile", None)
        self.gate = None if profile is None else ProfileGate(profile, hosts, self._attributes_of)
        drain = frozenset() if self.gate is None else self.gate.draining
        for view in hosts:
            agent = capacity.by_id.get(view.agent_id)
            used = view.used
            if view.isolation is Isolation.MIG and agent is not None:
                layout = caps_of(agent).mig
                used = WHOLE - sum(layout[i].gpus for i in view.mig_free if i < len(layout))
            device = Device(self._next(), view.host_id, agent, view.agent_id, view.isolation,
                            view.device_memory, used, view.used_memory, view.accepting, tuple(view.mig_free))
            self.devices[device.seq] = device
            if agent is not None and view.accepting and not agent.unhealthy and view.host_id not in drain:
                self._index(device)
            if agent is not None and not view.used:
                self._empty[device.seq] = used
                self.empty_on[agent.index] = self.empty_on.get(agent.index, 0) + 1

    def _attributes_of(self, agent_id: str) -> Mapping[str, str] | None:
        agent = self.capacity.by_id.get(agent_id)
        return None if agent is None else agent.attributes

    def profile_allows(self, agent: AgentState, need: ShareNeed, opening: bool) -> bool:
        """Whether the profile in force lets `need` go to `agent` (`opening`: on a new host there)."""
        return self.gate is None or self.gate.allows(agent.agent_id, need, opening)

    def _count_empty(self, device: Device, was_empty: bool) -> None:
        """Keep `empty_on` as a share lands on (or is given back to) a host empty at the start."""
        start = self._empty.get(device.seq)
        if start is None or device.agent is None:
            return
        change = int(device.used == start and not device.used_memory) - int(was_empty)
        if change:
            index = device.agent.index
            self.empty_on[index] = self.empty_on.get(index, 0) + change

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _index(self, device: Device) -> None:
        if device.isolation is Isolation.MIG:
            if device.mig_free:
                self.mig[device.seq] = device
            return
        by_free = self.index.setdefault(device.isolation, {})
        bucket = by_free.get(device.free)
        if bucket is None:
            by_free[device.free] = {device.seq: device}
        else:
            bucket[device.seq] = device
        index = device.agent.index  # type: ignore[union-attr]  # only devices on offered agents are indexed
        self.free_on[index] = self.free_on.get(index, 0) + device.free
        self.on_agent.setdefault(index, {})[device.seq] = device

    def _unindex(self, device: Device) -> None:
        if device.isolation is Isolation.MIG:
            self.mig.pop(device.seq, None)
            return
        by_free = self.index.get(device.isolation, {})
        bucket = by_free.get(device.free)
        if bucket is not None and bucket.pop(device.seq, None) is not None:
            if not bucket:
                del by_free[device.free]
            index = device.agent.index  # type: ignore[union-attr]
            self.free_on[index] -= device.free
            on = self.on_agent[index]
            del on[device.seq]
            if not on:
                del self.on_agent[index]

    def take(self, device: Device, gpus: int, memory: int, mig_index: int | None) -> None:
        """Give `gpus`/`memory` (or MIG instance `mig_index`) of `device` to a share."""
        self._unindex(device)
        was_empty = self._empty.get(device.seq) == device.used and not device.used_memory
        device.used += gpus
        device.used_memory += memory
        if mig_index is not None:
            device.mig_free = tuple(i for i in device.mig_free if i != mig_index)
        self._index(device)
        self._count_empty(device, was_empty)
        self.version += 1

    def give_back(self, device: Device, gpus: int, memory: int, mig_index: int | None) -> None:
        """Undo `take` exactly."""
        self._unindex(device)
        was_empty = self._empty.get(device.seq) == device.used and not device.used_memory
        device.used -= gpus
        device.used_memory -= memory
        if mig_index is not None:
            device.mig_free = tuple(sorted((*device.mig_free, mig_index)))
        self._index(device)
        self._count_empty(device, was_empty)
        self.version += 1

    def open(self, agent: AgentState, isolation: Isolation, device_memory: int,
             mig_free: tuple[int, ...]) -> Device:
        """A new host (provisional id "new:<agent_id>:<n>") on `agent`, empty."""
        n = self._opened.get(agent.agent_id, 0) + 1
        self._opened[agent.agent_id] = n
        device = Device(self._next(), f"{NEW_HOST_PREFIX}{agent.agent_id}:{n}", agent, agent.agent_id,
                        isolation, device_memory, 0, 0, True, mig_free, new=True)
        self.devices[device.seq] = device
        if self.gate is not None:
            self.gate.opened(agent.agent_id, 1)
        self._index(device)
        self.version += 1
        return device

    def close(self, device: Device) -> None:
        """Forget a host opened in this cycle (the last one opened on its agent)."""
        self._unindex(device)
        del self.devices[device.seq]
        if self.gate is not None:
            self.gate.opened(device.agent_id, -1)
        self._opened[device.agent_id] -= 1
        if not self._opened[device.agent_id]:
            del self._opened[device.agent_id]
        self.version += 1

    def views(self) -> list[ShareHostView]:
        return [device.view() for device in self.devices.values()]


def host_resources() -> Resources:
    """What opening a share host takes from an offer besides the task's own: one GPU and the executor's."""
    return Resources.of(cpus=SHARE_HOST_RESOURCES["cpus"], mem=SHARE_HOST_RESOURCES["mem"], gpus=1)


def granted_memory(need: ShareNeed, gpus: int, device_memory: int) -> int:
    """The stated memory, else the fraction's part of the device (0 when its memory is unknown)."""
    if need.memory:
        return need.memory
    return gpus * device_memory // WHOLE if device_memory else 0


class ShareStack:
    """Selects a device for a share over a `ShareLedger` and the cycle's `CapacityLedger`."""

    def __init__(self, capacity: CapacityLedger, stack: PlacementStack, policy: PlacementPolicy,
                 hosts: Sequence[ShareHostView] = (), table: FragmentationTable | None = None) -> None:
        self.capacity = capacity
        self.stack = stack
        self.policy = policy
        self.ledger = ShareLedger(capacity, hosts)
        self.table = table if table is not None else FragmentationTable()
        stack.use_fragmentation(self.table, self.ledger.free_on)
        stack.use_empty_hosts(self.ledger.empty_on)
        self._openers: dict[TaskDemand, TaskDemand] = {}
        self._extra = host_resources()
        self._scale: tuple[float, float] | None = None

    def opener(self, task: TaskDemand) -> TaskDemand:
        """The demand of opening a host for `task`: its own resources, one GPU, the executor's, and the
        share (so that `share_capable` checks the agent's level and memory)."""
        found = self._openers.get(task)
        if found is None:
            found = TaskDemand(task.task_id, task.job_id, task.role, task.index, task.resources + self._extra,
                               task.ports, task.constraints)
            # Its needs carry the share (a TaskDemand with both gpus and a share would be invalid).
            object.__setattr__(found, "needs", dataclasses.replace(found.needs, share=task.share))
            self._openers[task] = found
        return found

    def select(self, task: TaskDemand, job: JobContext) -> tuple[ShareChoice | None, OrderedCounts]:
        """Where `task`'s share goes, or None and each agent's first failing reason."""
        need = task.share
        assert need is not None
        self.table.refresh()
        if need.isolation is Isolation.MIG:
            choice = self._existing_mig(task, need, job)
        else:
            choice = self._existing(task, need, job, need.gpus)
        if choice is not None:
            return choice, ()
        opener = self.opener(task)
        if self.policy.share_hosts == "spread":
            agent = self._spread_agent(opener, need, job)
        else:
            agent = self._new_agent(opener, need, job)
        counts: OrderedCounts = ()
        refused = 0
        if agent is None:
            agent, counts = self.stack.select(opener, job)   # the reasons (or an agent the scan missed)
            if agent is not None and not self.ledger.profile_allows(agent, need, True):
                agent, counts = None, ((reasons.INSUFFICIENT_GPUS, len(self.capacity.agents)),)
            refused = 0 if self.ledger.gate is None else self.ledger.gate.refused(self.capacity, need)
        if agent is not None:
            return self._new(agent, need), ()
        if need.elastic and need.isolation is not Isolation.MIG:
            choice = self._existing(task, need, job, need.gpus_min, largest=True)
            if choice is not None:
                return choice, ()
        short = reasons.no_share_room(need.gpus_min)
        said = {short if reason == reasons.INSUFFICIENT_GPUS else reason: n for reason, n in counts}
        if refused and said.get(short):
            moved = min(refused, said[short])   # agents the profile refuses: said so, not "no room"
            said[short] -= moved
            said[self.ledger.gate.reason(need)] = moved  # type: ignore[union-attr]  # refused: a gate
        return None, reasons.ordered_counts(said)

    def _fits(self, agent: AgentState | None, needs: Needs, job: JobContext) -> bool:
        if agent is None or agent.held:
            return False
        # A new host's demand carries the share (`opener`): the profile in force may refuse it there.
        if needs.share is not None and self.ledger.gate is not None and \
                not self.ledger.profile_allows(agent, needs.share, True):
            return False
        return first_failure(agent, needs, job, self.policy, AFTER_GPU_FILTERS) is None

    def _score(self, agent: AgentState, device: Device | None, gpus: int, cpus: int) -> float:
        """How much placing a share of `gpus` (and `cpus`) on `device` of `agent` (None: a new host)
        fragments the cluster: the device's gradient plus the change of the node's stranded GPU."""
        free = agent.gpus + self.ledger.free_on.get(agent.index, 0)
        table = self.table
        stranded = table.stranded
        score = stranded(free - gpus, agent.cpus - cpus) - stranded(free, agent.cpus)
        if device is not None:
            score += table.gradient(device.free, gpus)
        return score

    def _existing(self, task: TaskDemand, need: ShareNeed, job: JobContext, least: int, *,
                  largest: bool = False) -> ShareChoice | None:
        """Among existing devices with at least `least` free (fraction and memory), the one whose
        placement makes fragmentation grow least: the device's gradient plus its node's term (ties:
        the fuller device, then the older); with `largest`, the one with the most free (an elastic
        share's largest fraction). Devices are visited best gradient first; once one fits, at most
        `SCAN_BUDGET` more are visited and the best of `CANDIDATES` feasible ones is taken."""
        by_free = self.ledger.index.get(need.isolation)
        if not by_free:
            return None
        gradient = self.table.gradient
        want = need.gpus
        if largest:
            ranked = sorted((float(-free), free) for free in by_free if free >= least)
        else:
            ranked = sorted((gradient(free, want), free) for free in by_free if free >= least)
        needs = task.needs
        best: tuple[float, Device, int, int] | None = None
        found = budget = 0
        missed: list[Device] = []
        for score, free in ranked:
            gpus = min(want, free)
            for device in by_free[free].values():
                memory = granted_memory(need, gpus, device.device_memory)
                if (device.device_memory and device.used_memory + memory > device.device_memory) or \
                        not self._fits(device.agent, needs, job) or (self.ledger.gate is not None and not
                        self.ledger.profile_allows(device.agent, need, False)):  # type: ignore[arg-type]
                    if best is None:
                        missed.append(device)
                    else:
                        budget += 1
                    continue
                total = score if largest else self._score(
                    device.agent, device, gpus, needs.cpus)  # type: ignore[arg-type]
                if best is None or total < best[0]:
                    best = (total, device, gpus, memory)
                found += 1
                if found >= CANDIDATES:
                    break
            if found >= CANDIDATES or budget >= SCAN_BUDGET:
                break
        for device in missed:       # passed over: to the back of its bucket, visited last next time
            bucket = by_free[device.free]
            del bucket[device.seq]
            bucket[device.seq] = device
        if best is None:
            return None
        _, device, gpus, memory = best
        return ShareChoice(device.agent, device, gpus, memory,  # type: ignore[arg-type]
                           device.device_memory, None, None)

    def _new_agent(self, opener: TaskDemand, need: ShareNeed, job: JobContext) -> AgentState | None:
        """The agent to open a new host on: among `CANDIDATES` agents that fit, at most `PER_BUCKET` of
        each count of whole GPUs free, fewest free first (GPU best fit), the one whose placement
        fragments least (`_score`; ties: fewest whole GPUs free, so whole agents stay free for
        whole-GPU tasks)."""
        needs = opener.needs
        best: tuple[float, int, AgentState] | None = None
        found = budget = 0
        missed: list[AgentState] = []
        for bucket in self.capacity.gpu_buckets[1:]:
            here = 0
            for agent in bucket.values():
                if not self._fits(agent, needs, job):
                    if best is None:
                        missed.append(agent)
                    else:
                        budget += 1
                    continue
                score = self._score(agent, None, need.gpus, needs.cpus)
                if best is None or (score, agent.gpus) < best[:2]:
                    best = (score, agent.gpus, agent)
                found += 1
                here += 1
                if found >= CANDIDATES or here >= PER_BUCKET:
                    break
            if found >= CANDIDATES or budget >= SCAN_BUDGET:
                break
        buckets = self.capacity.gpu_buckets
        for agent in missed:        # passed over: to the back of its bucket, visited last next time
            bucket = buckets[agent.gpus // WHOLE]
            del bucket[agent.index]
            bucket[agent.index] = agent
        return best[2] if best is not None else None

    def _spread_agent(self, opener: TaskDemand, need: ShareNeed, job: JobContext) -> AgentState | None:
        """The agent to open a new host on with `share_hosts="spread"`: among `CANDIDATES` agents
        that fit, visited most whole GPUs free first, the one with the highest Tetris alignment (the dot
        product of the task's (cpus, GPU) with the agent's free (cpus, GPU), each normalised by the
        largest agent's capacity; ties: the first visited). After `4 * SCAN_BUDGET` agents that do not
        fit, the search ends (the caller then asks the stack). Measured on the openb trace (CPU
        fallback): 16, 32 or 64 candidates place 99.30, 99.31 and 99.36 % of the tasks, the more the
        slower."""
        needs = opener.needs
        cpu_scale, gpu_scale = self._scales()
        weight_cpus = needs.cpus / (cpu_scale * cpu_scale)
        weight_gpus = need.gpus / (gpu_scale * gpu_scale)
        free_on = self.ledger.free_on
        best: tuple[float, AgentState] | None = None
        found = budget = 0
        buckets = self.capacity.gpu_buckets
        for bucket in reversed(buckets[1:]):
            for agent in bucket.values():
                if not self._fits(agent, needs, job):
                    budget += 1
                    if budget >= SCAN_BUDGET * 4:
                        break
                    continue
                score = agent.cpus * weight_cpus + (agent.gpus + free_on.get(agent.index, 0)) * weight_gpus
                if best is None or score > best[0]:
                    best = (score, agent)
                found += 1
                if found >= CANDIDATES:
                    break
            if found >= CANDIDATES or budget >= SCAN_BUDGET * 4:
                break
        return best[1] if best is not None else None

    def _scales(self) -> tuple[float, float]:
        """The largest agent's cpus and GPUs (thousandths) in this cycle: Tetris' normalisation."""
        if self._scale is None:
            agents = self.capacity.agents
            cpus = max((agent.cpus for agent in agents), default=0)
            gpus = max((agent.gpu_capacity for agent in agents), default=0)
            self._scale = (float(max(cpus, 1)), float(max(gpus, 1)))
        return self._scale

    def _existing_mig(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        """The smallest free MIG instance that holds the share on an existing MIG host."""
        best: tuple[tuple[int, int], Device, int] | None = None
        for device in self.ledger.mig.values():
            if device.agent is None:
                continue
            layout = caps_of(device.agent).mig
            index = smallest_instance(layout, (i for i in device.mig_free if i < len(layout)), need)
            if index is None:
                continue
            size = (layout[index].slices, layout[index].memory)
            if (best is None or size < best[0]) and self._fits(device.agent, task.needs, job) and \
                    self.ledger.profile_allows(device.agent, need, False):
                best = (size, device, index)
        if best is None:
            return None
        _, device, index = best
        profile = caps_of(device.agent).mig[index]  # type: ignore[arg-type]
        return ShareChoice(device.agent, device, profile.gpus, profile.memory,  # type: ignore[arg-type]
                           device.device_memory, index, profile.name)

    def _new(self, agent: AgentState, need: ShareNeed) -> ShareChoice:
        caps = caps_of(agent)
        if need.isolation is Isolation.MIG:
            index = smallest_instance(caps.mig, range(len(caps.mig)), need)
            assert index is not None     # share_capable checked it
            profile = caps.mig[index]
            # MIG profile names round memory up ("1g.10gb" of an 80 GB GPU): the device holds its layout.
            device_memory = caps.device_memory and max(caps.device_memory, sum(p.memory for p in caps.mig))
            return ShareChoice(agent, None, profile.gpus, profile.memory, device_memory, index, profile.name)
        memory = granted_memory(need, need.gpus, caps.device_memory)
        return ShareChoice(agent, None, need.gpus, memory, caps.device_memory, None, None)

    def debit(self, task: TaskDemand, choice: ShareChoice) -> ShareDebit:
        """Take the choice: the agent's resources (and a whole GPU for a new host), the device's share."""
        ledger = self.ledger
        device = choice.device
        need = task.share
        assert need is not None
        if device is None:
            debit = self.capacity.debit(choice.agent, self.opener(task).needs)
            mig_all = tuple(range(len(caps_of(choice.agent).mig))) if need.isolation is Isolation.MIG else ()
            device = ledger.open(choice.agent, need.isolation, choice.device_memory, mig_all)
            opened = True
        else:
            debit = self.capacity.debit(choice.agent, task.needs)
            opened = False
        ledger.take(device, choice.gpus, choice.memory, choice.mig_index)
        grant = ShareGrant(device.host_id, opened or device.new, need.isolation, choice.gpus, choice.memory,
                           choice.device_memory, choice.mig_index, choice.mig_profile)
        return ShareDebit(debit, device, grant, opened)

    def credit(self, share: ShareDebit) -> None:
        """Give back exactly what `debit` took (gang roll-back)."""
        grant = share.grant
        self.ledger.give_back(share.device, grant.gpus, grant.memory, grant.mig_index)
        if share.opened:
            self.ledger.close(share.device)
        self.capacity.credit(share.debit)


def device_sizes(task: TaskDemand) -> list[tuple[int, int, int]]:
    """A member as `TaskSizes.observe` counts it: (thousandths per device, devices, cpus), none for a
    CPU task."""
    if task.share is not None:
        return [(task.share.gpus, 1, task.needs.cpus)]
    if task.needs.gpus:
        return [(WHOLE, task.needs.gpus // WHOLE, task.needs.cpus)]
    return []


