"""GPUs the GPU profile in force keeps for share hosts (pure), in one placement cycle.

A profile's agent group (`mesos_gpu.core.profiles.AgentGroup`) with `share_gpus: N` keeps N GPUs of each
of its agents for share hosts: the GPUs its share hosts already hold count toward N (draining and
lingering ones too: they still hold their GPU), and of the agent's whole GPUs free in the cycle's offers,
up to the rest are held back from whole-GPU placement (`KeptGpus`). They are debited from the agent in
the cycle's `CapacityLedger`, one whole GPU at a time, so that no whole-GPU task (by any strategy, gangs
included) can take them, and credited back to open a share host there (`release`; `keep_again` undoes
that on a gang's roll-back). A profile keeping 0 GPUs (night), or none (`share_gpus: null`: no cap, and
nothing kept), holds nothing back.

Only GPUs are kept: a CPU task on a GPU agent (`cpu_tasks_on_gpu_agents`) may still take cpus and memory
a share host there would need.

A whole-GPU task that does not fit says why (`explain_kept`: the cycle's share stack wraps the whole-GPU
stack's `select` while GPUs are kept, whatever the strategy; without kept GPUs nothing is wrapped and the
offer cycle pays nothing): the agents where it would fit but for the kept GPUs are counted under
`insufficient gpus (2 gpus kept for gpu shares by profile 'day')` instead of plain `insufficient gpus`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mesos_gpu.core.placement import reasons
from mesos_gpu.core.placement.demand import Needs, TaskDemand
from mesos_gpu.core.placement.stack import OrderedCounts, PlacementStack
from mesos_gpu.core.placement.state import AgentState, CapacityLedger, Debit, JobContext
from mesos_gpu.core.profilesapply import ProfileGate

__all__ = ["ONE_GPU", "KeptGpus", "explain_kept", "kept_reason"]

WHOLE = 1000
#: What keeping one GPU takes from an agent's offer in the cycle.
ONE_GPU = Needs(cpus=0, mem=0, disk=0, gpus=WHOLE, ports=0, scalars=(), ranges=(), constraints=())


_KEPT = "kept for gpu shares by profile"


def kept_reason(gpus: int, profile: str) -> str:
    """Insufficient gpus, where the profile keeps `gpus` whole GPUs of those agents for share hosts."""
    plural = "" if gpus == 1 else "s"
    return f"{reasons.INSUFFICIENT_GPUS} ({gpus} gpu{plural} {_KEPT} {profile!r})"


class KeptGpus:
    """The GPUs kept on each offered agent of the cycle: agent index -> one debit per kept GPU."""

    def __init__(self, capacity: CapacityLedger, gate: ProfileGate) -> None:
        self.capacity = capacity
        self.profile = gate.profile.name
        self.held: dict[int, list[Debit]] = {}
        self._memo: dict[int, tuple[int, tuple[int, int]]] = {}
        for agent in capacity.agents:
            if not agent.is_gpu or agent.unhealthy:
                continue
            group = gate.group_of(agent.agent_id)
            if group is None or not group.share_gpus:
                continue
            want = min(group.share_gpus - gate.hosts_on.get(agent.agent_id, 0), agent.gpus // WHOLE)
            if want > 0:
                self.held[agent.index] = [capacity.debit(agent, ONE_GPU) for _ in range(want)]

    @classmethod
    def of(cls, capacity: CapacityLedger, gate: ProfileGate | None) -> KeptGpus | None:
        """The GPUs `gate`'s profile keeps in this cycle (None: no profile, or it keeps none here)."""
        if gate is None or not any(group.share_gpus for group in gate.profile.groups):
            return None
        kept = cls(capacity, gate)
        return kept if kept.held else None

    def count(self, agent: AgentState) -> int:
        """Whole GPUs kept on `agent` now."""
        return len(self.held.get(agent.index, ()))

    def agents(self) -> list[AgentState]:
        """The agents with a kept GPU now, not held for a waiting job (where a new share host goes first)."""
        agents = self.capacity.agents
        return [agents[index] for index, debits in self.held.items() if debits and not agents[index].held]

    def starved(self) -> Iterator[AgentState]:
        """Agents with a kept GPU and no other whole GPU free (a share stack's index of whole GPUs free
        does not show them as able to open a host), not held for a waiting job."""
        agents = self.capacity.agents
        for index, debits in self.held.items():
            agent = agents[index]
            if debits and agent.gpus < WHOLE and not agent.held:
                yield agent

    def release(self, agent: AgentState) -> bool:
        """Give one kept GPU of `agent` back to the ledger, to open a share host with it (False: none)."""
        debits = self.held.get(agent.index)
        if not debits:
            return False
        self.capacity.credit(debits.pop())
        return True

    def keep_again(self, agent: AgentState) -> None:
        """Undo `release` (the host opened with it was rolled back)."""
        self.held[agent.index].append(self.capacity.debit(agent, ONE_GPU))

    def explain(self, gpus: int, counts: OrderedCounts) -> OrderedCounts:
        """`counts` of a whole-GPU task of `gpus` (thousandths) that did not fit, with the agents where it
        would fit but for the kept GPUs moved from `insufficient gpus` to `kept_reason`."""
        key = next((reason for reason, _ in counts if reason.startswith(reasons.INSUFFICIENT_GPUS)), None)
        if key is None:
            return counts
        version = self.capacity.version
        memo = self._memo.get(gpus)
        if memo is None or memo[0] != version:
            agents = self.capacity.agents
            moved = kept = 0
            for index, debits in self.held.items():
                agent = agents[index]
                if debits and not agent.held and agent.gpus < gpus <= agent.gpus + WHOLE * len(debits):
                    moved += 1
                    kept += len(debits)
            memo = (version, (moved, kept))
            self._memo[gpus] = memo
        moved, kept = memo[1]
        said = dict(counts)
        moved = min(moved, said[key])
        if not moved:
            return counts
        said[key] -= moved
        said[kept_reason(kept, self.profile)] = moved
        return reasons.ordered_counts(said)


Select = Callable[[TaskDemand, JobContext], tuple[AgentState | None, OrderedCounts]]


def explain_kept(stack: PlacementStack, kept: KeptGpus) -> None:
    """Make `stack` (a strategy's whole-GPU stack, for this cycle) name the kept GPUs in the reasons of a
    whole-GPU task that does not fit (`KeptGpus.explain`): its `select` is wrapped on the instance, so
    the strategy's own calls to its base class are not, and a cycle without kept GPUs is unchanged."""
    select: Select = stack.select

    def kept_select(task: TaskDemand, job: JobContext) -> tuple[AgentState | None, OrderedCounts]:
        agent, counts = select(task, job)
        needs = task.needs
        if agent is None and needs.gpus and needs.share is None:     # not a share host's opener
            counts = kept.explain(needs.gpus, counts)
        return agent, counts

    setattr(stack, "select", kept_select)   # noqa: B010 - an instance attribute: this cycle's stack only
