"""FGD's properties on small random clusters: never over capacity; exhaustive (a task waits only when no
agent, device or new share host could take it, checked against every one of them by the filters); and
each placement is one whose growth of F_n(M) (the definition, `node_fragmentation`) is least."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.placement import GangPlanner, JobDemand, PlacementPolicy, Plan, TaskDemand
from mesos_gpu.core.placement.fgd import node_fragmentation
from mesos_gpu.core.placement.filters import AFTER_GPU_FILTERS, first_failure
from mesos_gpu.core.placement.planner import PlacementCycle
from mesos_gpu.core.placement.state import JobContext
from tests.placement.builders import agent, task, view

agents_st = st.lists(st.tuples(st.integers(0, 4), st.integers(1, 16)), min_size=1, max_size=4)
tasks_st = st.lists(st.tuples(st.sampled_from(["cpu", "whole", "share"]), st.integers(1, 3),
                              st.integers(1, 99), st.integers(1, 8)), min_size=1, max_size=25)


def build(kind: str, n: int, gpus: int, share: int, cpus: int) -> TaskDemand:
    builder = task(f"t{n}", f"t{n}").cpus(cpus)
    if kind == "whole":
        builder.gpus(gpus)
    elif kind == "share":
        builder.share(share / 100)
    return builder.build()


def could_fit(cycle: PlacementCycle, member: TaskDemand, policy: PlacementPolicy) -> bool:
    """Whether any agent (or, for a share, any device with room or any agent with a whole GPU) passes
    every filter for `member`: the reference FGD's search must agree with."""
    context = JobContext(JobDemand.of([member]), policy)
    ledger = cycle.ledger
    if member.share is None:
        return any(first_failure(a, member.needs, context, policy) is None for a in ledger.agents)
    shares = cycle.shares
    for devices in shares.ledger.index.get(member.share.isolation, {}).values():
        for device in devices.values():
            if device.free >= member.share.gpus and not device.agent.held and \
                    first_failure(device.agent, member.needs, context, policy, AFTER_GPU_FILTERS) is None:
                return True
    opener = shares.opener(member).needs
    return any(a.gpus >= 1000 and first_failure(a, opener, context, policy) is None for a in ledger.agents)


@settings(max_examples=120, deadline=None)
@given(agents=agents_st, tasks=tasks_st, fallback=st.booleans())
def test_fgd_never_exceeds_capacity_and_misses_nothing(agents, tasks, fallback):
    policy = PlacementPolicy(strategy="fgd", cpu_tasks_on_gpu_agents=fallback)
    builders = [agent(f"a{i}").gpus(gpus).cpus(cpus) for i, (gpus, cpus) in enumerate(agents)]
    cycle = GangPlanner(policy).start(view(*builders))
    for n, (kind, gpus, share, cpus) in enumerate(tasks):
        member = build(kind, n, gpus, share, cpus)
        possible = could_fit(cycle, member, policy)
        outcome = cycle.place(JobDemand.of([member]))
        assert isinstance(outcome, Plan) == possible, (member, outcome)
        for state in cycle.ledger.agents:
            assert state.cpus >= 0 and state.mem >= 0 and state.gpus >= 0
        for device in cycle.shares.ledger.devices.values():
            assert 0 <= device.used <= 1000


Option = tuple[tuple[int, tuple[int, ...]], tuple[int, tuple[int, ...]]]


def options(cycle: PlacementCycle, member: TaskDemand,
            policy: PlacementPolicy) -> dict[tuple[str, str], Option]:
    """Every feasible placement of `member` as (agent id, host id or "new" or "") -> the node state before
    and after it, as FGD's measure sees nodes (cpus free, sorted per-GPU free)."""
    context = JobContext(JobDemand.of([member]), policy)
    shares = cycle.shares
    found: dict[tuple[str, str], Option] = {}

    def state(agent):
        devices = shares.ledger.on_agent.get(agent.index, {}).values()
        return agent.cpus, tuple(sorted([d.free for d in devices] + [1000] * (agent.gpus // 1000)))

    if member.share is None:
        for a in cycle.ledger.agents:
            if first_failure(a, member.needs, context, policy) is None:
                cpus, frees = state(a)
                take = member.needs.gpus // 1000
                after = frees[:len(frees) - take]
                found[(a.agent_id, "")] = ((cpus, frees), (cpus - member.needs.cpus, after))
        return found
    size = member.share.gpus
    for devices in shares.ledger.index.get(member.share.isolation, {}).values():
        for d in devices.values():
            fits = first_failure(d.agent, member.needs, context, policy, AFTER_GPU_FILTERS) is None
            if d.free >= size and fits:
                cpus, frees = state(d.agent)
                cut = list(frees)
                cut[cut.index(d.free)] -= size
                after = tuple(sorted(cut))
                found[(d.agent_id, d.host_id)] = ((cpus, frees), (cpus - member.needs.cpus, after))
    opener = shares.opener(member).needs
    for a in cycle.ledger.agents:
        if a.gpus >= 1000 and first_failure(a, opener, context, policy) is None:
            cpus, frees = state(a)
            opened = tuple(sorted((*frees[:-1], 1000 - size)))
            found[(a.agent_id, "new")] = ((cpus, frees), (cpus - opener.cpus, opened))
    return found


@settings(max_examples=120, deadline=None)
@given(agents=agents_st, tasks=tasks_st, fallback=st.booleans())
def test_fgd_takes_a_placement_of_least_fragmentation_growth(agents, tasks, fallback):
    policy = PlacementPolicy(strategy="fgd", cpu_tasks_on_gpu_agents=fallback)
    builders = [agent(f"a{i}").gpus(gpus).cpus(cpus) for i, (gpus, cpus) in enumerate(agents)]
    cycle = GangPlanner(policy).start(view(*builders))
    for n, (kind, gpus, share, cpus) in enumerate(tasks):
        member = build(kind, n, gpus, share, cpus)
        choices = options(cycle, member, policy)
        outcome = cycle.place(JobDemand.of([member]))
        if not isinstance(outcome, Plan):
            continue
        workload = cycle.shares.gradient.workload     # what the strategy measured against
        growth = {key: node_fragmentation(*after, workload) - node_fragmentation(*before, workload)
                  for key, (before, after) in choices.items()}
        placement = outcome.placements[0]
        grant = placement.share
        key = (placement.agent_id, "" if grant is None else grant.host_id)
        if key not in choices:      # a host opened by this placement (its id is new)
            key = (placement.agent_id, "new")
        assert growth[key] <= min(growth.values()) + 1e-6, (member, key, growth)
