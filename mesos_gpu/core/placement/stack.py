"""The placement stack (pure), after Nomad's: candidates in GPU best-fit order -> filters -> limit ->
scorers -> best agent; or, when none fits, every agent counted under its first failing reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mesos_gpu.core.placement import reasons
from mesos_gpu.core.placement.demand import Needs, TaskDemand
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, FILTERS, SIMPLE_CHECK, Filter, first_failure
from mesos_gpu.core.placement.fragmentation import FragmentationTable
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.scorers import Scorer, applicable, best_agent
from mesos_gpu.core.placement.state import AgentState, CapacityLedger, JobContext

Counts = dict[str, int]
OrderedCounts = tuple[tuple[str, int], ...]
#: Feasible agents `_unstranded` visits for one that strands no GPU before it takes the best seen
#: (measured on the openb trace with sharing and CPU fallback: 16 place 97.4 % of the tasks, 64 97.8 %,
#: 256 and more 98.1 %).
UNSTRANDED_SCAN = 256


class PlacementStack:
    """Selects an agent for one task over a `CapacityLedger`.

    The first `candidate_limit` feasible agents are scored (after the first, at most `4 * limit` more
    are visited). Agents passed over before the first feasible one (or all of them, when none fits)
    move to the back of their bucket, so the next task does not visit them first again.

    Candidates come from the GPU index: a GPU task visits the buckets with enough free GPUs, fewest
    first (the best fit; a lone GPU task, once the planner's task sizes are known (`use_fragmentation`),
    skips agents whose GPU it would strand behind their cpus: `_unstranded`); a CPU task visits CPU
    agents, then, only if none fits and the policy allows it, GPU agents with the fewest free GPUs
    first. Agents the index rules out are counted in bulk.
    """

    def __init__(self, ledger: CapacityLedger, policy: PlacementPolicy) -> None:
        self.ledger = ledger
        self.policy = policy
        self._weights = dict(policy.weights)
        self._memo: dict[Needs, OrderedCounts] = {}
        self._memo_version = -1
        self._missed: list[AgentState] = []
        self._table: FragmentationTable | None = None
        self._free_on: Mapping[int, int] = {}
        self._empty_on: Mapping[int, int] = {}
        # `applicable` for a task with nothing of its job placed, not a ps (what `exact` says): one list.
        self._lone_scorers: list[tuple[float, Scorer]] | None = None

    def select(self, task: TaskDemand, job: JobContext) -> tuple[AgentState | None, OrderedCounts]:
        """The best agent for `task` (None if none fits) and, when none fits, the reason counts (largest
        first). Answers for demands without job-dependent constraints are cached until the next debit."""
        needs = task.needs
        cacheable = not needs.has_dynamic_constraints
        if cacheable:
            if self._memo_version != self.ledger.version:
                self._memo.clear()
                self._memo_version = self.ledger.version
            cached = self._memo.get(needs)
            if cached is not None:
                return None, cached
        counts: Counts = {}
        # When GPU packing is the only scorer that applies (no member of the job placed, not a ps), an
        # agent left with no free GPU is a perfect score: the first one found in the exact-fit bucket
        # ends the search; and agents without GPUs all score alike, so the first that fits wins.
        exact = not job.members_on and task.role != "ps"
        feasible = self._feasible(needs, job, counts, exact)
        if self._missed:
            self._to_back()
        if not feasible:
            ordered = reasons.ordered_counts(counts)
            if cacheable:
                self._memo[needs] = ordered
            return None, ordered
        if len(feasible) == 1:
            return feasible[0], ()
        if exact:   # a lone task (not a ps, nothing of its job placed): the same scorers for every such task
            lone = self._lone_scorers
            if lone is None:
                lone = self._lone_scorers = applicable(task, job, self._weights)
            return best_agent(feasible, task, job, self._weights, lone), ()
        return best_agent(feasible, task, job, self._weights), ()

    def _to_back(self) -> None:
        """Move the agents a scan passed over to the back of their bucket, so agents short of cpus or mem
        stop being visited first (the GPU best fit is unchanged: same bucket)."""
        buckets, cpu_agents = self.ledger.gpu_buckets, self.ledger.cpu_agents
        for agent in self._missed:
            bucket = buckets[agent.gpus // 1000] if agent.is_gpu else cpu_agents
            del bucket[agent.index]
            bucket[agent.index] = agent
        self._missed.clear()

    def _feasible(self, needs: Needs, job: JobContext, counts: Counts, exact: bool) -> list[AgentState]:
        ledger, policy = self.ledger, self.policy
        if needs.gpus:
            whole = needs.gpu_slots
            buckets = ledger.gpu_buckets
            feasible: list[AgentState] = []
            table = self._table if exact and policy.cpu_aware_gpu_fit else None
            if table is not None:
                table.refresh()     # the tasks' GPU per cpu, as the jobs seen so far have moved it
            if table is not None and table.gpu_per_cpu > 0:
                feasible = self._unstranded(buckets[whole:], needs, job, counts)
            else:
                if exact and whole < len(buckets) and needs.gpus == whole * 1000:
                    exact_fit = iter(buckets[whole].values())
                    feasible = self._scan(exact_fit, needs, job, AFTER_GPU_FILTERS, counts, limit=1)
                    whole += 1
                if not feasible:
                    feasible = self._scan(
                        (agent for bucket in buckets[whole:] for agent in bucket.values()),
                        needs, job, AFTER_GPU_FILTERS, counts,
                    )
                    whole = needs.gpu_slots
            if not feasible:
                short = len(ledger.cpu_agents) + sum(len(bucket) for bucket in buckets[:whole])
                _add(counts, reasons.HELD, len(ledger.held))
                _add(counts, reasons.INSUFFICIENT_GPUS, short)
                _add(counts, reasons.UNHEALTHY_GPUS, len(ledger.unhealthy))
                if short and self._empty_on and needs.share is None:
                    self._note_empty_hosts(counts, whole)
            return feasible
        feasible = self._scan(iter(ledger.cpu_agents.values()), needs, job, AFTER_GPU_FILTERS, counts,
                              limit=1 if exact else 0)
        if feasible:
            return feasible
        _add(counts, reasons.HELD, len(ledger.held))
        if not policy.cpu_tasks_on_gpu_agents:
            held_gpu_agents = sum(1 for agent in ledger.held.values() if agent.is_gpu)
            _add(counts, reasons.GPU_AGENT_RESERVED, ledger.gpu_agent_count - held_gpu_agents)
            return feasible
        gpu_agents = (agent for bucket in ledger.gpu_buckets for agent in bucket.values())
        feasible = self._scan(gpu_agents, needs, job, FILTERS, counts)
        if feasible:
            return feasible
        return self._scan(iter(ledger.unhealthy.values()), needs, job, FILTERS, counts)

    def _scan(self, candidates: Iterable[AgentState], needs: Needs, job: JobContext,
              filters: tuple[Filter, ...], counts: Counts, *, limit: int = 0) -> list[AgentState]:
        """Up to `limit` (default `candidate_limit`) agents that pass `filters`; while none passes, count
        first failing reasons into `counts`."""
        policy = self.policy
        limit = limit or policy.candidate_limit
        budget = limit * 4      # once one agent fits, visit at most this many more (Nomad's max skip)
        missed = self._missed
        feasible: list[AgentState] = []
        if filters is AFTER_GPU_FILTERS and needs.is_simple:
            filters = SIMPLE_CHECK      # the others pass a simple demand whatever the agent
        for agent in candidates:
            for check in filters:
                reason = check(agent, needs, job, policy)
                if reason is not None:
                    break
            else:
                feasible.append(agent)
                if len(feasible) >= limit:
                    break
                continue
            if not feasible:
                counts[reason] = counts.get(reason, 0) + 1
                if not agent.unhealthy:
                    missed.append(agent)
            else:
                budget -= 1
                if not budget:
                    break
        return feasible

    def use_fragmentation(self, table: FragmentationTable, free_on: Mapping[int, int]) -> None:
        """Place lone GPU tasks cpu-aware (`_unstranded`), measuring against `table`'s tasks and counting
        `free_on` (an agent's thousandths free on its share hosts) as GPU the agent has free."""
        self._table = table
        self._free_on = free_on

    def use_empty_hosts(self, empty_on: Mapping[int, int]) -> None:
        """Name, in a whole-GPU task's reasons, the GPUs that `empty_on` (an agent's empty share hosts,
        each holding one GPU until its linger ends) hold on the agents short of GPUs."""
        self._empty_on = empty_on

    def _note_empty_hosts(self, counts: Counts, whole: int) -> None:
        """Say, in the "insufficient gpus" reason, how many GPUs empty share hosts hold on those agents
        (costs O(agents with an empty share host))."""
        agents = self.ledger.agents
        held = sum(n for index, n in self._empty_on.items()
                   if n and agents[index].gpus // 1000 < whole and not agents[index].held
                   and not agents[index].unhealthy)
        if held:
            counts[reasons.insufficient_gpus_held(held)] = counts.pop(reasons.INSUFFICIENT_GPUS)

    def _unstranded(self, buckets: Sequence[Mapping[int, AgentState]], needs: Needs, job: JobContext,
                    counts: Counts) -> list[AgentState]:
        """GPU best fit that does not strand GPUs behind cpus (after FGD's cpu-aware fragmentation).

        An agent *strands* GPU when its free GPU outgrows what its cpus left can serve at the tasks'
        GPU per cpu `r` (the excess: free GPU - cpus * r). The candidates are the agents of `buckets`, in
        best-fit order, that pass the filters and whose stranded GPU the task does not grow: the first one
        left with no whole GPU free (a perfect fit), else up to `candidate_limit` of them (once one is
        found, at most `4 * limit` more visited) for the scorers. When none of the first `UNSTRANDED_SCAN`
        feasible agents is such, the one whose stranded GPU grows least."""
        r = self._table.gpu_per_cpu  # type: ignore[union-attr]  # only called with a table
        free_on = self._free_on
        policy, missed = self.policy, self._missed
        simple = needs.is_simple
        filters = SIMPLE_CHECK if simple else AFTER_GPU_FILTERS
        gpus, cpus, mem, disk, ports = needs.gpus, needs.cpus, needs.mem, needs.disk, needs.ports
        limit = policy.candidate_limit
        budget = limit * 4
        found: list[AgentState] = []
        best: AgentState | None = None
        best_growth = 0.0
        visited = 0
        for bucket in buckets:      # (nested loops, not a generator: a cycle visits thousands of agents)
            for agent in bucket.values():
                reason: str | None = None
                # A simple demand that fits is told so without the call (`simple_failure`'s own test):
                # most agents visited fit.
                if not (simple and agent.cpus >= cpus and agent.mem >= mem and agent.disk >= disk
                        and agent.port_count >= ports):
                    for check in filters:
                        reason = check(agent, needs, job, policy)
                        if reason is not None:
                            break
                if reason is None:
                    free = agent.gpus + free_on.get(agent.index, 0)
                    after = free - gpus - (agent.cpus - cpus) * r
                    growth = after - max(free - agent.cpus * r, 0.0) if after > 0 else 0.0
                    if growth <= 0:
                        if agent.gpus == gpus:
                            return [agent]
                        found.append(agent)
                        if len(found) >= limit:
                            return found
                        continue
                    if best is None or growth < best_growth:
                        best, best_growth = agent, growth
                    visited += 1
                    if visited >= UNSTRANDED_SCAN and not found:
                        return [best]
                if found:
                    budget -= 1
                    if not budget:
                        return found
                elif best is None and reason is not None:
                    counts[reason] = counts.get(reason, 0) + 1
                    if not agent.unhealthy:
                        missed.append(agent)
        if found:
            return found
        return [best] if best is not None else []

    def explain(self, needs: Needs, job: JobContext) -> Counts:
        """Every agent's first failing reason for `needs`, agent by agent (the reference the bulk counts
        of `select` must agree with; used by tests)."""
        counts: Counts = {}
        for agent in self.ledger.agents:
            _add(counts, first_failure(agent, needs, job, self.policy) or "fits", 1)
        return counts


def _add(counts: Counts, reason: str, n: int) -> None:
    if n:
        counts[reason] = counts.get(reason, 0) + n
