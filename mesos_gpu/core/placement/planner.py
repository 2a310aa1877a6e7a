"""The gang planner (pure): all members of a job on the offers at hand, or none, with the reason why.

Example::

    cycle = GangPlanner(PlacementPolicy()).start(OfferView.from_mesos_offers(offers), share_hosts)
    for job in pending_jobs_by_priority:
        outcome = cycle.place(job)          # Plan | WaitReason | NeverFits | InvalidDemand
    result = cycle.finish()                 # one launch per agent, declines, outcomes by job
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mesos_gpu.core.placement.demand import JobDemand, TaskDemand
from mesos_gpu.core.placement.fragmentation import FragmentationTable, TaskSizes
from mesos_gpu.core.placement.offers import AgentSlot, OfferView
from mesos_gpu.core.placement.outcomes import (
    AgentLaunch,
    CyclePlan,
    InvalidDemand,
    NeverFits,
    Outcome,
    Plan,
    TaskPlacement,
    WaitReason,
)
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.placement.sharekeep import ONE_GPU
from mesos_gpu.core.placement.shares import ShareDebit, ShareStack, device_sizes
from mesos_gpu.core.placement.stack import OrderedCounts, PlacementStack
from mesos_gpu.core.placement.state import AgentState, CapacityLedger, Debit, JobContext
from mesos_gpu.core.placement.strategies import stacks_for, use_rng
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import ShareGrant, ShareHostView

JobLike = JobDemand | Sequence[TaskDemand]
#: What placing one member took: its agent's debit, and for a share the device's (None otherwise).
Taken = tuple[TaskDemand, Debit, ShareDebit | None]


class Miss(NamedTuple):
    """How far a gang got before a member failed: the agent of each member placed before it (then rolled
    back), and the GPUs (thousandths) the failing member needed beyond the most any agent had free."""

    placed: tuple[str, ...] = ()
    short: int = 0


_NO_MISS = Miss()


def placement_order(members: Iterable[TaskDemand]) -> list[TaskDemand]:
    """Largest members first (whole GPUs, GPU shares, then cpus, then mem), the rest in the job's order:
    decreasing first fit packs a gang better than its declared order."""
    if isinstance(members, (list, tuple)) and len(members) == 1:
        return list(members)
    return sorted(members, key=lambda m: (-m.needs.gpus, -(m.share.gpus if m.share else 0), -m.needs.cpus,
                                          -m.needs.mem))


class _Gang:
    """Places one job's members on a ledger, member by member, and undoes it all on failure."""

    def __init__(self, ledger: CapacityLedger, stack: PlacementStack, policy: PlacementPolicy,
                 share_hosts: Sequence[ShareHostView] = (), table: FragmentationTable | None = None, *,
                 share_stack: type[ShareStack] = ShareStack) -> None:
        self.ledger = ledger
        self.stack = stack
        self.policy = policy
        # The strategy's share stack for a cycle; the default one for the catalog check and `reserve`.
        self.shares = share_stack(ledger, stack, policy, share_hosts, table)
        # The context of a lone task: nothing of its job is placed (shared, never changed).
        self.empty = JobContext(JobDemand("", ()), policy)

    def take(self, member: TaskDemand, context: JobContext) -> tuple[Taken | None, OrderedCounts]:
        """Place one member (a whole-GPU or CPU task through the stack, a share through the share stack)
        and debit it, or None and the reason counts."""
        if member.share is None:
            agent, counts = self.stack.select(member, context)
            if agent is None:
                return None, counts
            return (member, self.ledger.debit(agent, member.needs), None), ()
        choice, counts = self.shares.select(member, context)
        if choice is None:
            return None, counts
        share = self.shares.debit(member, choice)
        return (member, share.debit, share), ()

    def place(self, job: JobDemand) -> tuple[list[Taken], TaskDemand | None, OrderedCounts, Miss]:
        """Debits for every member (all placed) or ([], the member that did not fit, reason counts, how
        far the gang got: see `Miss`)."""
        if len(job.members) == 1 and not job.running:
            # A lone task: nothing of its job is placed, so an empty context serves (and is not changed).
            member = job.members[0]
            taken, counts = self.take(member, self.empty)
            return ([], member, counts, _NO_MISS) if taken is None else ([taken], None, (), _NO_MISS)
        context = JobContext(job, self.policy)
        debits: list[Taken] = []
        for member in placement_order(job.members):
            taken, counts = self.take(member, context)
            if taken is None:
                miss = Miss(tuple(debit.agent.agent_id for _, debit, _ in debits), self.shortfall(member))
                self.undo(debits, context)
                return [], member, counts, miss
            debits.append(taken)
            context.add(taken[1].agent, member.role)
        return debits, None, (), _NO_MISS

    def shortfall(self, member: TaskDemand) -> int:
        """The GPUs (thousandths) `member` needs beyond the most any agent has free now (0 if none)."""
        needs = member.needs.gpus
        if not needs or member.share is not None:
            return 0
        most = max((agent.gpus for agent in self.ledger.agents), default=0)
        return max(needs - most, 0)

    def undo(self, debits: list[Taken], context: JobContext | None = None) -> None:
        """Credit back every debit, last first (idempotent: the list is emptied)."""
        while debits:
            member, debit, share = debits.pop()
            if share is None:
                self.ledger.credit(debit)
            else:
                self.shares.credit(share)
            if context is not None:
                context.remove(debit.agent, member.role)


class _CatalogCheck:
    """Decides "can never fit" by placing a job on the catalog (every agent, empty) and rolling it back.
    The ledger is always restored, so one check can serve many cycles over the same catalog."""

    def __init__(self, catalog: tuple[AgentSlot, ...], policy: PlacementPolicy) -> None:
        self.catalog = catalog
        self.policy = policy
        self._gang: _Gang | None = None
        # Verdicts by demand shape: (position of the member that does not fit, agents, counts, how far
        # the gang got) or None.
        self._memo: dict[tuple[object, ...], tuple[int, int, OrderedCounts, Miss] | None] = {}

    def never_fits(self, job: JobDemand) -> NeverFits | None:
        key: tuple[object, ...] | None = None
        if not job.running:
            members = job.members
            key = (members[0].needs, members[0].role, members[0].share) if len(members) == 1 else \
                tuple((m.needs, m.role, m.share) for m in members)
            if key in self._memo:
                cached = self._memo[key]
                if cached is None:
                    return None
                position, agents, counts, miss = cached     # the same shape fails at the same member
                return _never(job, job.members[position].task_id, agents, counts, miss)
        if self._gang is None:
            ledger = CapacityLedger(self.catalog, self.policy)
            self._gang = _Gang(ledger, PlacementStack(ledger, self.policy), self.policy)
        gang = self._gang
        debits, failed, counts, miss = gang.place(job)
        gang.undo(debits)
        if failed is None:
            if key is not None:
                self._memo[key] = None
            return None
        position = next(i for i, member in enumerate(job.members) if member is failed)
        if key is not None:
            self._memo[key] = (position, len(gang.ledger.agents), counts, miss)
        return _never(job, failed.task_id, len(gang.ledger.agents), counts, miss)


def _never(job: JobDemand, task_id: str, agents: int, counts: OrderedCounts, miss: Miss) -> NeverFits:
    if len(job.members) == 1:
        return NeverFits(job.job_id, task_id, agents, counts)
    return NeverFits(job.job_id, task_id, agents, counts, members=len(job.members), placed=miss.placed,
                     short=miss.short)


class PlacementCycle:
    """One cycle over one offer snapshot: jobs are placed in the order given, each debiting the snapshot,
    so nothing is given twice. `finish()` merges every job's tasks into one launch per agent."""

    def __init__(self, view: OfferView, policy: PlacementPolicy, catalog: _CatalogCheck | None = None,
                 share_hosts: Sequence[ShareHostView] = (), sizes: TaskSizes | None = None, *,
                 rng: random.Random | None = None) -> None:
        self.view = view
        self.policy = policy
        self.ledger = CapacityLedger(view.slots, policy)
        self._sizes = sizes if sizes is not None else TaskSizes()
        whole_stack, share_stack = stacks_for(policy)
        self._gang = _Gang(self.ledger, whole_stack(self.ledger, policy), policy, share_hosts,
                           FragmentationTable(self._sizes), share_stack=share_stack)
        self.shares = self._gang.shares
        if rng is not None:
            use_rng((self._gang.stack, self.shares), rng)
        self._placed: dict[int, list[TaskPlacement]] = {}
        self._held: set[str] = set()
        self.outcomes: dict[str, Outcome] = {}
        if catalog is None and view.catalog is not None:
            catalog = _CatalogCheck(view.catalog, policy)
        self._catalog = catalog

    def place(self, job: JobLike) -> Outcome:
        """Place every member of `job` or none; the outcome is also kept for `finish()`."""
        demand = job if isinstance(job, JobDemand) else JobDemand.of(job)
        members = demand.members
        sizes = self._sizes
        # A job's GPU sizes are counted once, when first seen (a job waits through many cycles).
        if len(members) == 1:
            first = members[0]
            if (first.share is not None or first.needs.gpus) and not sizes.knows(demand.job_id):
                sizes.observe(demand.job_id, device_sizes(first))    # (CPU tasks are not GPU sizes)
            if not demand.running:
                outcome = self.outcomes[demand.job_id] = self._place_alone(demand, first)
                return outcome
        elif not sizes.knows(demand.job_id):
            sizes.observe(demand.job_id, [size for member in members for size in device_sizes(member)])
        outcome = self.outcomes[demand.job_id] = self._place(demand)
        return outcome

    def _place_alone(self, job: JobDemand, member: TaskDemand) -> Outcome:
        """`_place` for the most common job, one task with nothing of its job running: the same checks
        and outcome without the gang's bookkeeping (a cycle decides thousands of these)."""
        job_id = job.job_id
        problem = self._problem(job)
        if problem is not None:
            return InvalidDemand(job_id, problem)
        gang = self._gang
        if member.share is None:    # the common case, without the share bookkeeping
            agent, counts = gang.stack.select(member, gang.empty)
            if agent is not None:
                debit = self.ledger.debit(agent, member.needs)
                placement = _placement(member, agent, debit.ports)
        else:
            taken, counts = gang.take(member, gang.empty)
            agent = None
            if taken is not None:
                _, debit, share = taken
                agent = debit.agent
                placement = _placement(member, agent, debit.ports, share.grant if share is not None else None)
        if agent is None:
            never = self._never_fits(job)
            if never is not None:
                return never
            return WaitReason(job_id, member.task_id, len(self.ledger.agents), counts)
        placed = self._placed.get(agent.index)
        if placed is None:
            self._placed[agent.index] = [placement]
        else:
            placed.append(placement)
        launch = AgentLaunch(agent.agent_id, agent.hostname, agent.slot.offer_ids, (placement,))
        return Plan(job_id, (launch,))

    def _problem(self, job: JobDemand) -> str | None:
        """What is wrong with the demand, or with planning it in this cycle (again), or None."""
        problem = job.problem
        if problem is None and job.job_id in self.outcomes:
            problem = f"job {job.job_id} was already planned in this cycle"
        return problem

    def _place(self, job: JobDemand) -> Outcome:
        problem = self._problem(job)
        if problem is not None:
            return InvalidDemand(job.job_id, problem)
        debits, failed, counts, miss = self._gang.place(job)
        if failed is not None:
            never = self._never_fits(job)
            if never is not None:
                return never
            return WaitReason(job.job_id, failed.task_id, len(self.ledger.agents), counts,
                              members=len(job.members), placed=miss.placed, short=miss.short)
        return self._plan(job.job_id, debits)

    def _plan(self, job_id: str, debits: list[Taken]) -> Plan:
        by_agent: dict[int, list[TaskPlacement]] = {}
        for member, debit, share in debits:
            grant = share.grant if share is not None else None
            placement = _placement(member, debit.agent, debit.ports, grant)
            by_agent.setdefault(debit.agent.index, []).append(placement)
            self._placed.setdefault(debit.agent.index, []).append(placement)
        agents = self.ledger.agents
        return Plan(job_id, tuple(
            AgentLaunch(agents[i].agent_id, agents[i].hostname, agents[i].slot.offer_ids, tuple(tasks))
            for i, tasks in by_agent.items()
        ))

    def _never_fits(self, job: JobDemand) -> NeverFits | None:
        """Whether the job would fail even on the empty cluster of the view's catalog."""
        if self._catalog is None:
            return None
        return self._catalog.never_fits(job)

    def reserve(self, job: JobLike, among: Sequence[AgentSlot] | None = None) -> tuple[str, ...]:
        """Hold, for the rest of this cycle, the agents where `job` would fit once they are free, so
        that jobs placed after it cannot take what frees up there and starve it (Volcano's reserve).

        The agents are those of a placement of the job on the catalog (every agent, empty), visiting
        first, among agents alike, those with the most GPUs free now. Needs the view's catalog;
        returns the held agent ids (none without a catalog, or when the job can never fit). The job's
        `WaitReason` in this cycle's outcomes names them. `among`: plan on these catalog slots only
        (e.g. the agents held for the job in the last cycle) instead of the whole catalog."""
        if self._catalog is None:
            return ()
        demand = job if isinstance(job, JobDemand) else JobDemand.of(job)
        free_now = {agent.agent_id: agent.gpus for agent in self.ledger.agents
                    if agent.agent_id not in self._held}
        candidates = sorted(
            (slot for slot in (self._catalog.catalog if among is None else among)
             if slot.agent_id not in self._held),
            key=lambda slot: -free_now.get(slot.agent_id, -1),
        )
        ledger = CapacityLedger(candidates, self.policy)
        self._keep_for_shares(ledger)
        debits, failed, _, _ = _Gang(ledger, PlacementStack(ledger, self.policy), self.policy).place(demand)
        if failed is not None:
            return ()
        held = tuple(sorted({debit.agent.agent_id for _, debit, _ in debits}))
        self._held.update(held)
        outcome = self.outcomes.get(demand.job_id)
        if isinstance(outcome, WaitReason):
            self.outcomes[demand.job_id] = outcome._replace(held=held)
        for agent_id in held:
            if agent_id in self.ledger.by_id:
                self.ledger.hold(agent_id)
        return held

    def _keep_for_shares(self, ledger: CapacityLedger) -> None:
        """Take out of `ledger` (the empty catalog `reserve` plans on) the whole GPUs the profile in force
        keeps for share hosts on each agent of its groups: holding an agent for a job that could only
        use those frees nothing for it until the profile changes, and keeps shares off the agent."""
        shares = self.shares.ledger
        if shares.gate is None:
            return
        for agent in ledger.agents:    # offered or not (a busy agent is often not offered)
            group = shares.group_of(agent.agent_id, agent.attributes) if agent.is_gpu else None
            if group is not None and group.share_gpus:
                for _ in range(min(group.share_gpus, agent.gpus // ONE_GPU.gpus)):
                    ledger.debit(agent, ONE_GPU)

    def remaining(self, agent_id: str) -> Resources:
        """What is left of an agent's offers after this cycle's placements."""
        return self.ledger.by_id[agent_id].free()

    def finish(self) -> CyclePlan:
        """Outcomes by job, one launch per agent (every job's tasks on it), offers to decline."""
        accepts: list[AgentLaunch] = []
        declines: list[str] = []
        for agent in self.ledger.agents:
            tasks = self._placed.get(agent.index)
            if tasks:
                slot = agent.slot
                accepts.append(AgentLaunch(agent.agent_id, agent.hostname, slot.offer_ids, tuple(tasks)))
            else:
                declines.extend(agent.slot.offer_ids)
        return CyclePlan(dict(self.outcomes), tuple(accepts), tuple(declines))


def _placement(member: TaskDemand, agent: AgentState, ports: tuple[int, ...],
               share: ShareGrant | None = None) -> TaskPlacement:
    return TaskPlacement(member.task_id, member.job_id, member.role, member.index, agent.agent_id,
                         agent.hostname, ports, member.resources, agent.labels, share)


class GangPlanner:
    """Places jobs all-or-nothing over offer snapshots with one policy."""

    def __init__(self, policy: PlacementPolicy | None = None) -> None:
        self.policy = policy or PlacementPolicy()
        self._catalog: _CatalogCheck | None = None
        #: The per-device GPU needs of the jobs seen, across cycles: what shares' fragmentation is
        #: measured against (`fragmentation`).
        self.sizes = TaskSizes()
        #: The draws of a random strategy, across cycles (one sequence per planner, from `policy.seed`).
        self.rng = random.Random(self.policy.seed)

    def start(self, view: OfferView, share_hosts: Sequence[ShareHostView] = ()) -> PlacementCycle:
        """A cycle over `view` and the scheduler's share hosts, to place several jobs one after the other."""
        catalog = None
        if view.catalog is not None:
            if self._catalog is None or self._catalog.catalog is not view.catalog:
                self._catalog = _CatalogCheck(view.catalog, self.policy)
            catalog = self._catalog
        return PlacementCycle(view, self.policy, catalog, share_hosts, self.sizes, rng=self.rng)

    def plan(self, job: JobLike, view: OfferView, share_hosts: Sequence[ShareHostView] = ()) -> Outcome:
        """Place one job on a fresh snapshot."""
        return self.start(view, share_hosts).place(job)

    def plan_cycle(self, jobs: Iterable[JobLike], view: OfferView,
                   share_hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
        """Place `jobs` (highest priority first) on one snapshot, debiting it as it goes."""
        cycle = self.start(view, share_hosts)
        for job in jobs:
            cycle.place(job)
        return cycle.finish()


def plan_cycle(jobs: Iterable[JobLike], view: OfferView, policy: PlacementPolicy | None = None,
               share_hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
    """Place pending jobs (in priority order) on one offer snapshot: see `GangPlanner.plan_cycle`."""
    return GangPlanner(policy).plan_cycle(jobs, view, share_hosts)
