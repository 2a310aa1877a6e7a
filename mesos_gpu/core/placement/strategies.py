"""Named placement strategies (pure): which feasible agent (and device, for a GPU share) a task goes to.

`PlacementPolicy.strategy` names one of `policy.STRATEGIES`; `stacks_for` gives the pair of stacks the
planner uses for it: a `PlacementStack` (whole-GPU and CPU tasks) and a `ShareStack` (GPU shares).
"default" is mesos-gpu's own pair; the published policies subclass it and replace the choice only, so
filters, failure reasons, gangs, the share ledger and its roll-back are the product's, for every policy.
FGD lives in `placement.fgd`.

Common rules of the heuristics below (`HEURISTICS`):
- Candidates come from the ledgers' indexes, as the default's do: a GPU task visits the healthy,
  unheld agents with enough whole GPUs free (`CapacityLedger.gpu_buckets`); a CPU task visits the CPU
  agents, then, only when none fits and the policy allows it (`cpu_tasks_on_gpu_agents`), the GPU
  agents, then the unhealthy ones (the product's "fallback"); a share visits the existing share hosts
  with room (`ShareLedger.index`) and the agents where a new host can open (`ShareStack.openable`: a
  whole GPU free, or one the GPU profile in force keeps for share hosts). Each candidate passes the
  product's filters (`filters.first_failure`, `ShareStack._fits`, the device's memory, and on an
  existing host the level and size the profile offers there) before it can be chosen, so held and
  unhealthy agents, and the profile, are treated exactly as the default treats them. The search is
  exhaustive: whenever a feasible placement exists, one is found.
- GPUs the profile in force keeps for share hosts (`sharekeep`) are out of every whole-GPU choice, and
  a whole-GPU task's reasons name them (`sharekeep.explain_kept`). While some agent has one, a share's
  new host goes only to such an agent (the heuristic's choice among them; "random": drawn among them),
  and takes the kept GPU; when none of them fits, as the heuristic chooses among all.
- When none fits, the answer is the default stack's (its reason counts; an elastic share may still get
  its smallest fraction there, as the default gives it).
- Ties go to the agent earlier in the node list (lower index), or the older device.
- "The largest agent" normalises cpus and GPUs: the most cpus and the most GPUs any agent of the cycle
  offers (on the openb trace 128 cpus and 8 GPUs, the constants `MaxSpecCpu`/`MaxSpecGpu` of the FGD
  paper's simulator, github.com/hkust-adsl/kubernetes-scheduler-simulator, `pkg/type/open-gpu-share`).
- An agent's GPU left counts its whole GPUs free plus the free parts of its share hosts (the
  simulator's "total milli GPU left").
- MIG shares are placed as the default places them, by every heuristic (smallest free instance of an
  existing MIG host, else a new host where the default opens one).

The heuristics (sources: Q. Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", USENIX ATC '23, section 6, and its simulator's score plugins,
`pkg/simulator/plugin/*_score.go`; R. Grandl et al., "Multi-Resource Packing for Cluster Schedulers",
SIGCOMM '14):

- "random" (the paper's Random-fit; the simulator's `RandomScore`): a feasible agent drawn uniformly
  at random; for a share, then one of its feasible devices (an existing host with room, or a new host)
  drawn uniformly. One `random.Random(policy.seed)` per planner (`GangPlanner.rng`, handed to the
  stacks of each cycle by `use_rng`): the sequence runs on across cycles, deterministic for a seed.
- "first-fit" (the simulator's `FirstFitScore`: the node list order): the first feasible agent in the
  node list; a share goes to the first agent where it fits, on it to the oldest existing host with
  room, else a new host.
- "best-fit" (the paper's BestFit; `BestFitScore`): the feasible agent with the least left after
  placement, measured as the simulator does: 0.5 * cpus left / the largest agent's cpus + 0.5 * GPU
  left / the largest agent's GPUs. A share goes to the existing host with the least free that holds it,
  over the whole cluster (defined here: the simulator scores nodes only), else to a new host on the
  agent with the fewest whole GPUs free (then the least left).
- "worst-fit" (spread): the opposite, the feasible agent with the most left by the same measure (the
  simulator's `WorstFitScore` weighs cpus 1 and GPUs 100, unnormalised; it is not among the paper's
  baselines, so the measure is best-fit's, reversed). A share opens a new host on the agent with the
  most whole GPUs free (then the most left); only when none can open, the existing host with the most
  free that holds it.
- "tetris" (Grandl et al.'s alignment score): the agent with the highest dot product of the task's
  (cpus, GPU) demand and the agent's free (cpus, GPU), each dimension divided by the largest agent's
  (as the simulator's "max" normalisation). A share: among agents and their devices, the agent first,
  then on it the device by the same rule, i.e. the most free (a new host counts 1000; an existing host
  first when equal). Note: the FGD paper's "DotProd" baseline (`DotProductScore`, merged GPU dimension,
  "max" normalisation) scores 1 - dot / 2 and so takes the *smallest* dot product; this strategy is
  Tetris as published (the largest).
- "gpu-packing" (the paper's GpuPacking; `GpuPackingScore`): a share goes first to a GPU already in use
  (an existing host with room, the least free first, as the plugin's score `100 - free% / 10`), then
  to an idle GPU of an agent already in use (some GPU taken), then to an idle agent; among agents the
  fewest whole GPUs free first (the plugin ties agents in use, and ranks idle ones by fewer GPUs). A
  whole-GPU task prefers agents in use, then the fewest whole GPUs free that fit. CPU tasks (the plugin
  gives every node the same score) go first-fit (defined here).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement.demand import Needs, TaskDemand
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, FILTERS, SIMPLE_CHECK, Filter, first_failure
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.shares import WHOLE, Device, ShareChoice, ShareStack, granted_memory
from mesos_gpu.core.placement.stack import OrderedCounts, PlacementStack
from mesos_gpu.core.placement.state import AgentState, CapacityLedger, JobContext
from mesos_gpu.core.sharing import ShareNeed

Stacks = tuple[type[PlacementStack], type[ShareStack]]
#: An agent's rank for a task (lower is better), given the task's needs.
AgentKey = Callable[[AgentState], Any]
DeviceKey = Callable[[Device], Any]

_DEFAULT: Stacks = (PlacementStack, ShareStack)
#: The published heuristics by name (filled in below).
HEURISTICS: dict[str, Stacks] = {}


def stacks_for(policy: PlacementPolicy) -> Stacks:
    """The (whole-task stack, share stack) classes of `policy.strategy`."""
    name = policy.strategy
    if name == "default":
        return _DEFAULT
    if name == "fgd":
        from mesos_gpu.core.placement import fgd  # late: fgd imports the stacks this module does
        return fgd.STACKS
    found = HEURISTICS.get(name)
    if found is None:
        raise ValueError(f"placement strategy {name!r} is not implemented")
    return found


def use_rng(stacks: Iterable[object], rng: random.Random) -> None:
    """Hand `rng` to those of a cycle's `stacks` that draw at random, so that the sequence runs on across
    the cycles of one planner (a generator per stack would restart it every cycle and pick the same spot)."""
    for stack in stacks:
        if isinstance(stack, (_HeuristicStack, _HeuristicShares)):
            stack.rng = rng


def largest_agent(ledger: CapacityLedger) -> tuple[float, float]:
    """The most cpus and the most GPUs (thousandths) any agent of the cycle has (its total when known,
    else its offer at the start of the cycle); at least 1 each."""
    cpus = gpus = 1
    for agent in ledger.agents:
        slot = agent.slot
        offered = slot.available.scalar_milli("cpus")
        total = slot.total.scalar_milli("cpus") if slot.total is not None else 0
        cpus = max(cpus, offered, total)
        gpus = max(gpus, agent.gpu_capacity)
    return float(cpus), float(gpus)


def _tiers(ledger: CapacityLedger, needs: Needs,
           policy: PlacementPolicy) -> Iterator[tuple[list[AgentState], tuple[Filter, ...]]]:
    """The candidate agents of a whole-GPU or CPU task, tier by tier (a later tier only when no agent of
    the earlier ones fits), with the filters they must pass: the default stack's order."""
    after = SIMPLE_CHECK if needs.is_simple else AFTER_GPU_FILTERS
    if needs.gpus:
        yield [agent for bucket in ledger.gpu_buckets[needs.gpu_slots:] for agent in bucket.values()], after
        return
    yield list(ledger.cpu_agents.values()), after
    if policy.cpu_tasks_on_gpu_agents:
        yield [agent for bucket in ledger.gpu_buckets for agent in bucket.values()], FILTERS
        yield list(ledger.unhealthy.values()), FILTERS


class _HeuristicStack(PlacementStack):
    """A whole-GPU or CPU task: the strategy's choice among the feasible agents of the first tier that
    has one (`_tiers`); none: the default's answer (its reasons)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The generator a draw uses: the planner's (`use_rng`), else one of this stack's own.
        self.rng = random.Random(self.policy.seed)
        self._scale: tuple[float, float] | None = None
        self._none_at: dict[Needs, int] = {}    # needs -> ledger version at which nothing fitted

    def select(self, task: TaskDemand, job: JobContext) -> tuple[AgentState | None, OrderedCounts]:
        needs = task.needs
        cacheable = not needs.has_dynamic_constraints
        if not cacheable or self._none_at.get(needs) != self.ledger.version:
            for candidates, filters in _tiers(self.ledger, needs, self.policy):
                agent = self._pick(candidates, needs, job, filters)
                if agent is not None:
                    return agent, ()
            if cacheable:
                self._none_at[needs] = self.ledger.version
        return super().select(task, job)

    def _pick(self, candidates: list[AgentState], needs: Needs, job: JobContext,
              filters: tuple[Filter, ...]) -> AgentState | None:
        """The candidate with the least `_key` that passes `filters` (ties: the lower index). Only an
        agent that would be the best so far is filtered (cpus and mem, which every filter set checks,
        first)."""
        key, policy = self._key(needs), self.policy
        cpus, mem = needs.cpus, needs.mem
        best: AgentState | None = None
        best_key: Any = None
        for agent in candidates:
            if agent.cpus < cpus or agent.mem < mem:
                continue
            rank = key(agent)
            better = best is None or rank < best_key or (rank == best_key and agent.index < best.index)
            if better and first_failure(agent, needs, job, policy, filters) is None:
                best, best_key = agent, rank
        return best

    def _key(self, needs: Needs) -> AgentKey:
        raise NotImplementedError

    def _scales(self) -> tuple[float, float]:
        if self._scale is None:
            self._scale = largest_agent(self.ledger)
        return self._scale

    def _left(self) -> AgentKey:
        return _left(self._scales(), self._free_on)


def _by_index(agent: AgentState) -> int:
    return agent.index


class RandomStack(_HeuristicStack):
    """"random": a feasible agent drawn uniformly."""

    def _pick(self, candidates: list[AgentState], needs: Needs, job: JobContext,
              filters: tuple[Filter, ...]) -> AgentState | None:
        """A candidate that passes `filters`, drawn uniformly among those that do (candidates are drawn
        without replacement until one passes)."""
        rng, policy = self.rng, self.policy
        left = len(candidates)
        while left:
            i = rng.randrange(left)
            agent = candidates[i]
            if agent.cpus >= needs.cpus and first_failure(agent, needs, job, policy, filters) is None:
                return agent
            left -= 1
            candidates[i] = candidates[left]
        return None


class FirstFitStack(_HeuristicStack):
    """"first-fit": the first feasible agent in the node list."""

    def _key(self, needs: Needs) -> AgentKey:
        return _by_index


class BestFitStack(_HeuristicStack):
    """"best-fit": the feasible agent with the least left."""

    def _key(self, needs: Needs) -> AgentKey:
        return self._left()


class WorstFitStack(_HeuristicStack):
    """"worst-fit": the feasible agent with the most left."""

    def _key(self, needs: Needs) -> AgentKey:
        left = self._left()
        return lambda agent: -left(agent)


class TetrisStack(_HeuristicStack):
    """"tetris": the feasible agent with the highest alignment of demand and free resources."""

    def _key(self, needs: Needs) -> AgentKey:
        return _alignment(needs.cpus, needs.gpus, self._scales(), self._free_on)


def _alignment(cpus: int, gpus: int, scales: tuple[float, float], free_on: Any) -> AgentKey:
    """Minus Tetris' dot product of (cpus, gpus) with an agent's free (cpus, GPU), both normalised by
    the largest agent's."""
    cpu_scale, gpu_scale = scales
    weight_cpus, weight_gpus = cpus / (cpu_scale * cpu_scale), gpus / (gpu_scale * gpu_scale)
    return lambda agent: -(agent.cpus * weight_cpus
                           + (agent.gpus + free_on.get(agent.index, 0)) * weight_gpus)


def _packing(agent: AgentState) -> tuple[bool, int, int]:
    """GPU packing's rank: agents with a GPU in use first, then the fewest whole GPUs free."""
    return agent.gpus >= agent.gpu_capacity, agent.gpus, agent.index


class GpuPackingStack(_HeuristicStack):
    """"gpu-packing": agents in use first, fewest whole GPUs free; CPU tasks first fit."""

    def _key(self, needs: Needs) -> AgentKey:
        return _packing if needs.gpus else _by_index


class _HeuristicShares(ShareStack):
    """A GPU share: the strategy's choice among existing hosts with room and new hosts (`_choose`); none:
    the default's answer. MIG shares: the default's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The generator a draw uses: the planner's (`use_rng`), else one of this stack's own.
        self.rng = random.Random(self.policy.seed)
        self._scale: tuple[float, float] | None = None
        self._none_at: dict[tuple[Needs, ShareNeed], tuple[int, int]] = {}

    def select(self, task: TaskDemand, job: JobContext) -> tuple[ShareChoice | None, OrderedCounts]:
        need = task.share
        assert need is not None
        needs = task.needs
        if need.isolation is not Isolation.MIG:
            versions = (self.capacity.version, self.ledger.version)
            cacheable = not needs.has_dynamic_constraints
            if not cacheable or self._none_at.get((needs, need)) != versions:
                choice = self._choose(task, need, job)
                if choice is not None:
                    return choice, ()
                if cacheable:
                    self._none_at[(needs, need)] = versions
        return super().select(task, job)

    def _choose(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        raise NotImplementedError

    def _scales(self) -> tuple[float, float]:
        if self._scale is None:
            self._scale = largest_agent(self.capacity)
        return self._scale

    def _rooms(self, need: ShareNeed) -> list[Device]:
        """The existing hosts of the share's level with room for all of it, the least free first."""
        by_free = self.ledger.index.get(need.isolation)
        if not by_free:
            return []
        want = need.gpus
        return [device for free in sorted(by_free) if free >= want for device in by_free[free].values()]

    def _room_fits(self, device: Device, task: TaskDemand, need: ShareNeed, job: JobContext) -> bool:
        """The share fits on existing `device`: its memory, the task's own resources on the agent, and
        the GPU profile in force offers its level and size there."""
        memory = granted_memory(need, need.gpus, device.device_memory)
        if device.device_memory and device.used_memory + memory > device.device_memory:
            return False
        return self._fits(device.agent, task.needs, job) and \
            self.ledger.profile_allows(device.agent, need, False)  # type: ignore[arg-type]  # indexed: has one

    def _open_pools(self) -> list[Iterable[AgentState]]:
        """The agents where a new host may open, in turn: those with a GPU the profile keeps for share
        hosts (when one of them fits, a new host goes there), then every agent that can open one."""
        if self.kept is None:
            return [self.openable()]
        return [self.kept.agents(), self.openable()]

    @staticmethod
    def _grant(device: Device, need: ShareNeed) -> ShareChoice:
        """All of the share on existing `device`."""
        memory = granted_memory(need, need.gpus, device.device_memory)
        return ShareChoice(device.agent, device, need.gpus, memory,  # type: ignore[arg-type]
                           device.device_memory, None, None)

    def _least(self, task: TaskDemand, need: ShareNeed, job: JobContext, device_key: DeviceKey | None,
               agent_key: AgentKey | None) -> ShareChoice | None:
        """The feasible option with the least key: existing hosts with room ranked by `device_key`, new
        hosts (on agents with a whole GPU free) by `agent_key` (None: not considered). Only an option
        that would be the best so far is filtered."""
        best: tuple[Any, AgentState, Device | None] | None = None
        if device_key is not None:
            cpus = task.needs.cpus
            for device in self._rooms(need):
                agent = device.agent
                if agent is None or agent.cpus < cpus:
                    continue
                rank = device_key(device)
                if (best is None or rank < best[0]) and self._room_fits(device, task, need, job):
                    best = (rank, agent, device)
        if agent_key is not None:
            opener = self.opener(task).needs
            cpus, mem = opener.cpus, opener.mem
            for pool in self._open_pools():
                fits = False
                for agent in pool:
                    if agent.cpus < cpus or agent.mem < mem:
                        continue
                    rank = agent_key(agent)
                    better = best is None or rank < best[0]
                    if (better or not fits) and self._fits(agent, opener, job):
                        fits = True
                        if better:
                            best = (rank, agent, None)
                if fits:
                    break
        if best is None:
            return None
        _, agent, room = best
        return self._new(agent, need) if room is None else self._grant(room, need)


class RandomShares(_HeuristicShares):
    def _choose(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        """An agent drawn uniformly among those where the share fits, then one of its feasible devices
        (existing hosts with room, and a new host) drawn uniformly."""
        rooms: dict[int, list[Device]] = {}
        agents: dict[int, AgentState] = {}
        for device in self._rooms(need):
            if device.agent is not None:
                rooms.setdefault(device.agent.index, []).append(device)
                agents[device.agent.index] = device.agent
        kept = self.kept.agents() if self.kept is not None else []   # new hosts there first, when any
        openable = {agent.index for agent in (kept or self.openable())}
        for index in openable:
            agents.setdefault(index, self.capacity.agents[index])
        pool = sorted(agents)
        left = len(pool)
        rng = self.rng
        opener = self.opener(task).needs
        while left:
            i = rng.randrange(left)
            agent = agents[pool[i]]
            options: list[Device | None] = []
            if agent.cpus >= task.needs.cpus and self._fits(agent, task.needs, job):
                options = [device for device in rooms.get(agent.index, ())
                           if self._room_fits(device, task, need, job)]
                if agent.index in openable and self._fits(agent, opener, job):
                    options.append(None)
            if options:
                drawn = options[rng.randrange(len(options))]
                return self._new(agent, need) if drawn is None else self._grant(drawn, need)
            left -= 1
            pool[i] = pool[left]
        return None


class FirstFitShares(_HeuristicShares):
    def _choose(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        """The first agent in the node list where the share fits: its oldest host with room, else new."""
        return self._least(task, need, job, lambda device: (device.agent.index, 0, device.seq),  # type: ignore[union-attr]
                           lambda agent: (agent.index, 1, 0))


class BestFitShares(_HeuristicShares):
    def _choose(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        """The existing host with the least free that holds the share, else a new host on the agent with
        the fewest whole GPUs free (then the least left)."""
        choice = self._least(task, need, job, lambda device: (device.free, device.seq), None)
        if choice is not None:
            return choice
        left = _left(self._scales(), self.ledger.free_on)
        return self._least(task, need, job, None, lambda agent: (agent.gpus, left(agent), agent.index))


class WorstFitShares(_HeuristicShares):
    def _choose(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        """A new host on the agent with the most whole GPUs free (then the most left), else the existing
        host with the most free that holds the share."""
        left = _left(self._scales(), self.ledger.free_on)
        choice = self._least(task, need, job, None, lambda agent: (-agent.gpus, -left(agent), agent.index))
        if choice is not None:
            return choice
        return self._least(task, need, job, lambda device: (-device.free, device.seq), None)


class TetrisShares(_HeuristicShares):
    def _choose(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        """The agent with the highest alignment of the share's (cpus, GPU) with its free ones, on it the
        device with the most free (a new host: 1000; existing hosts first when equal)."""
        align = _alignment(task.needs.cpus, need.gpus, self._scales(), self.ledger.free_on)
        return self._least(task, need, job,
                           lambda device: (align(device.agent), -device.free, 0, device.seq),  # type: ignore[arg-type]
                           lambda agent: (align(agent), -WHOLE, 1, agent.index))


class GpuPackingShares(_HeuristicShares):
    def _choose(self, task: TaskDemand, need: ShareNeed, job: JobContext) -> ShareChoice | None:
        """A GPU in use (the existing host with the least free that holds it), else an idle GPU of an
        agent in use, else an idle agent (fewest whole GPUs free first)."""
        choice = self._least(task, need, job, lambda device: (device.free, device.seq), None)
        if choice is not None:
            return choice
        return self._least(task, need, job, None, _packing)


def _left(scales: tuple[float, float], free_on: Any) -> AgentKey:
    """Best-fit's measure of what an agent has left (the task's own demand, the same for every agent,
    left out): 0.5 cpus / the largest agent's + 0.5 GPU (with its share hosts' free parts) / the largest's."""
    cpu_scale, gpu_scale = scales
    weight_cpus, weight_gpus = 0.5 / cpu_scale, 0.5 / gpu_scale
    return lambda agent: agent.cpus * weight_cpus + (agent.gpus + free_on.get(agent.index, 0)) * weight_gpus


HEURISTICS.update({
    "random": (RandomStack, RandomShares),
    "first-fit": (FirstFitStack, FirstFitShares),
    "best-fit": (BestFitStack, BestFitShares),
    "worst-fit": (WorstFitStack, WorstFitShares),
    "tetris": (TetrisStack, TetrisShares),
    "gpu-packing": (GpuPackingStack, GpuPackingShares),
})
