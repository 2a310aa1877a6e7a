"""Placement of GPU shares (pure): the choice of a device for a share.

A share (`TaskDemand.share`, a fraction of one GPU) runs on a share host: an executor holding one whole
GPU. The cycle's share hosts are in a `ShareLedger` (`shareledger`); every debit can be credited back
exactly (gang roll-back).

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
agent group, the levels and sizes offered (on existing hosts and new ones) and the most share hosts per
agent; draining hosts are not indexed. The GPUs it keeps for share hosts (`sharekeep.KeptGpus`) are out of
whole-GPU placement; a new host goes first to an agent with a kept GPU (then as above), and a host
opened on an agent with one takes a kept GPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import reasons
from mesos_gpu.core.placement.capabilities import caps_of, smallest_instance
from mesos_gpu.core.placement.demand import Needs, TaskDemand
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, first_failure
from mesos_gpu.core.placement.fragmentation import FragmentationTable
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.sharekeep import KeptGpus, explain_kept
from mesos_gpu.core.placement.shareledger import NEW_HOST_PREFIX, WHOLE, Device, ShareLedger
from mesos_gpu.core.placement.stack import OrderedCounts, PlacementStack
from mesos_gpu.core.placement.state import AgentState, CapacityLedger, Debit, JobContext
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import SHARE_HOST_RESOURCES, ShareGrant, ShareHostView, ShareNeed

__all__ = [
    "CANDIDATES", "NEW_HOST_PREFIX", "WHOLE", "Device", "ShareChoice", "ShareDebit", "ShareLedger",
    "ShareStack", "device_sizes", "granted_memory", "host_resources",
]

CANDIDATES = 16  # feasible devices (or agents, for a new host) scored per share
PER_BUCKET = 2  # agents scored per count of whole GPUs free (cpu-rich and cpu-poor agents both seen)
SCAN_BUDGET = 32  # devices (agents) visited after the first feasible one, at most


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
    kept: bool = False      # the host opened with a GPU the profile kept for share hosts (`sharekeep`)


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
        #: The GPUs the profile in force keeps for share hosts (None: none), out of whole-GPU placement.
        self.kept = KeptGpus.of(capacity, self.ledger.gate)
        if self.kept is not None:
            explain_kept(stack, self.kept)      # whole-GPU tasks' reasons name the kept GPUs
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

    def openable(self) -> Iterator[AgentState]:
        """The agents where a new host could open: those whose only whole GPUs free are kept for share
        hosts (`KeptGpus.starved`), then every agent with a whole GPU free, fewest first."""
        if self.kept is not None:
            yield from self.kept.starved()
        for bucket in self.capacity.gpu_buckets[1:]:
            yield from bucket.values()

    def _kept_agent(self, opener: TaskDemand, need: ShareNeed, job: JobContext) -> AgentState | None:
        """Among the agents with a GPU kept for share hosts, the one that fits whose placement fragments
        least (`_score`; ties: fewest whole GPUs free); None when none fits (or none is kept)."""
        if self.kept is None:
            return None
        needs = opener.needs
        best: tuple[float, int, AgentState] | None = None
        for agent in self.kept.agents():
            if self._fits(agent, needs, job):
                score = self._score(agent, None, need.gpus, needs.cpus)
                if best is None or (score, agent.gpus) < best[:2]:
                    best = (score, agent.gpus, agent)
        return None if best is None else best[2]

    def _new_agent(self, opener: TaskDemand, need: ShareNeed, job: JobContext) -> AgentState | None:
        """The agent to open a new host on: one with a kept GPU (`_kept_agent`), else among `CANDIDATES`
        agents that fit, at most `PER_BUCKET` of each count of whole GPUs free, fewest free first (GPU
        best fit), the one whose placement fragments least (`_score`; ties: fewest whole GPUs free, so
        whole agents stay free for whole-GPU tasks)."""
        kept = self._kept_agent(opener, need, job)
        if kept is not None:
            return kept
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
        """The agent to open a new host on with `share_hosts="spread"`: one with a kept GPU
        (`_kept_agent`), else among `CANDIDATES` agents that fit, visited most whole GPUs free first,
        the one with the highest Tetris alignment (the dot product of the task's (cpus, GPU) with the
        agent's free (cpus, GPU), each normalised by the largest agent's capacity; ties: the first
        visited). After `4 * SCAN_BUDGET` agents that do not
        fit, the search ends (the caller then asks the stack). Measured on the openb trace (CPU
        fallback): 16, 32 or 64 candidates place 99.30, 99.31 and 99.36 % of the tasks, the more the
        slower."""
        kept = self._kept_agent(opener, need, job)
        if kept is not None:
            return kept
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
        kept = False
        if device is None:
            kept = self.kept is not None and self.kept.release(choice.agent)   # a kept GPU first
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
        return ShareDebit(debit, device, grant, opened, kept)

    def credit(self, share: ShareDebit) -> None:
        """Give back exactly what `debit` took (gang roll-back)."""
        grant = share.grant
        self.ledger.give_back(share.device, grant.gpus, grant.memory, grant.mig_index)
        if share.opened:
            self.ledger.close(share.device)
        self.capacity.credit(share.debit)
        if share.kept:
            self.kept.keep_again(share.debit.agent)  # type: ignore[union-attr]  # kept: a KeptGpus released it


def device_sizes(task: TaskDemand) -> list[tuple[int, int, int]]:
    """A member as `TaskSizes.observe` counts it: (thousandths per device, devices, cpus), none for a
    CPU task."""
    if task.share is not None:
        return [(task.share.gpus, 1, task.needs.cpus)]
    if task.needs.gpus:
        return [(WHOLE, task.needs.gpus // WHOLE, task.needs.cpus)]
    return []


