"""Properties of share placement across random submit/finish sequences, hosts fed back between cycles
as the state machine does (real ids, what their shares take), and of gang roll-back."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import AgentSlot, GangPlanner, JobDemand, OfferView, Plan, TaskDemand
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import SHARE_HOST_RESOURCES, ShareGrant, ShareHostView, ShareNeed

LEVELS = (Isolation.CAPPED, Isolation.SHARED, Isolation.MPS, Isolation.MIG)
MIG_LAYOUT = "3g.40gb/2g.20gb/1g.10gb/1g.10gb"


@dataclass
class Host:
    agent_id: str
    isolation: Isolation
    device_memory: int
    shares: dict[str, ShareGrant] = field(default_factory=dict)


@dataclass
class Cluster:
    """What the state machine would know: agents' capacity, running tasks, share hosts and their grants."""

    agents: dict[str, tuple[Resources, dict[str, str]]]
    tasks: dict[str, tuple[str, Resources]] = field(default_factory=dict)   # task -> agent, own resources
    hosts: dict[str, Host] = field(default_factory=dict)

    def offers(self) -> OfferView:
        slots = []
        for agent_id, (capacity, attributes) in self.agents.items():
            used = Resources.sum(r for a, r in self.tasks.values() if a == agent_id)
            for host in self.hosts.values():
                if host.agent_id == agent_id:
                    used = used + Resources.of(cpus=SHARE_HOST_RESOURCES["cpus"],
                                               mem=SHARE_HOST_RESOURCES["mem"], gpus=1)
            slots.append(AgentSlot(agent_id, agent_id, capacity - used, (f"{agent_id}-O",), attributes))
        return OfferView(tuple(slots))

    def views(self) -> list[ShareHostView]:
        out = []
        for host_id, host in self.hosts.items():
            grants = host.shares.values()
            mig_free = ()
            if host.isolation is Isolation.MIG:
                mig_free = tuple(sorted(set(range(4)) - {g.mig_index for g in grants}))
            out.append(ShareHostView(host_id, host.agent_id, host.isolation, host.device_memory,
                                     sum(g.gpus for g in grants), sum(g.memory for g in grants), True,
                                     mig_free))
        return out

    def launch(self, outcome: Plan) -> None:
        renamed: dict[str, str] = {}
        for placement in outcome.placements:
            self.tasks[placement.task_id] = (placement.agent_id, placement.request)
            grant = placement.share
            if grant is None:
                continue
            host_id = grant.host_id
            if grant.new_host and host_id.startswith("new:"):
                host_id = renamed.setdefault(host_id, f"sharehost.{placement.task_id}")
                self.hosts[host_id] = self.hosts.get(host_id) or Host(placement.agent_id, grant.isolation,
                                                                      grant.device_memory)
            self.hosts[host_id].shares[placement.task_id] = grant

    def finish(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)
        for host_id, host in list(self.hosts.items()):
            host.shares.pop(task_id, None)
            if not host.shares:
                del self.hosts[host_id]     # its executor exits (linger elapsed), its GPU goes back

    def check(self) -> None:
        for host_id, host in self.hosts.items():
            grants = list(host.shares.values())
            assert sum(g.gpus for g in grants) <= 1000, host_id
            if host.device_memory:
                assert sum(g.memory for g in grants) <= host.device_memory, host_id
            assert {g.isolation for g in grants} == {host.isolation}, host_id
            if host.isolation is Isolation.MIG:
                indexes = [g.mig_index for g in grants]
                assert len(indexes) == len(set(indexes)), host_id


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    agents = {}
    for i in range(draw(st.integers(1, 3))):
        attributes = {"gpu_memory_mb": draw(st.sampled_from(["0", "8000", "16384"]))}
        if draw(st.booleans()):
            attributes["gpu_mps"] = "true"
        if draw(st.booleans()):
            attributes["gpu_mig"] = MIG_LAYOUT
        capacity = Resources.of(cpus=draw(st.sampled_from([2, 16])), mem=65536, gpus=draw(st.integers(1, 3)))
        agents[f"a{i}"] = (capacity, attributes)
    return Cluster(agents)


share_needs = st.builds(
    lambda level, gpus, low, memory: ShareNeed(
        level, gpus, gpus if level is Isolation.MIG else min(low, gpus), memory),
    st.sampled_from(LEVELS), st.integers(1, 20).map(lambda n: n * 50),
    st.integers(1, 20).map(lambda n: n * 50),
    st.sampled_from([0, 0, 1000, 5000]),
)
steps = st.lists(st.one_of(st.tuples(st.just("submit"), st.lists(share_needs, min_size=1, max_size=3),
                                     st.integers(0, 1)),
                           st.tuples(st.just("finish"), st.integers(0, 1000), st.just(0))),
                 min_size=1, max_size=25)


def members(job_id: str, needs: list[ShareNeed], whole: int) -> list[TaskDemand]:
    out = [TaskDemand(f"{job_id}.s{i}", job_id, "worker", i, Resources.of(cpus=0.5, mem=256), share=need)
           for i, need in enumerate(needs)]
    if whole:
        out.append(TaskDemand(f"{job_id}.w", job_id, "worker", len(out),
                              Resources.of(cpus=0.5, mem=256, gpus=1)))
    return out


@settings(max_examples=150, deadline=None)
@given(clusters(), steps)
def test_no_device_is_ever_overcommitted_or_mixed(cluster, sequence):
    planner = GangPlanner()
    for number, (kind, what, whole) in enumerate(sequence):
        if kind == "finish":
            if cluster.tasks:
                cluster.finish(sorted(cluster.tasks)[what % len(cluster.tasks)])
        else:
            cycle = planner.start(cluster.offers(), cluster.views())
            outcome = cycle.place(JobDemand.of(members(f"j{number}", what, whole)))
            for device in cycle.shares.ledger.devices.values():
                assert 0 <= device.used <= 1000
                assert not device.device_memory or device.used_memory <= device.device_memory
            if isinstance(outcome, Plan):
                cluster.launch(outcome)
        cluster.check()


def snapshot(cycle) -> tuple:
    agents = tuple((a.agent_id, a.cpus, a.mem, a.disk, a.gpus, a.ports, a.gpus // 1000 in range(len(
        cycle.ledger.gpu_buckets)) and a.index in cycle.ledger.gpu_buckets[a.gpus // 1000])
        for a in cycle.ledger.agents)
    ledger = cycle.shares.ledger
    devices = tuple(sorted((d.host_id, d.used, d.used_memory, d.mig_free) for d in ledger.devices.values()))
    index = {level: {free: sorted(bucket) for free, bucket in by_free.items() if bucket}
             for level, by_free in ledger.index.items() if by_free}
    free_on = {k: v for k, v in ledger.free_on.items() if v}
    return agents, devices, index, sorted(ledger.mig), free_on, dict(ledger._opened)


@settings(max_examples=150, deadline=None)
@given(clusters(), st.lists(share_needs, min_size=1, max_size=3),
       st.lists(share_needs, min_size=1, max_size=4))
def test_a_failed_gang_restores_the_share_ledger_exactly(cluster, before, gang):
    planner = GangPlanner()
    cycle = planner.start(cluster.offers(), cluster.views())
    cycle.place(JobDemand.of(members("first", before, 0)))
    state = snapshot(cycle)
    # The gang's last member (by placement order) can never fit: every other member is rolled back.
    doomed = TaskDemand("gang.big", "gang", "ps", 99, Resources.of(cpus=10_000, mem=1))
    outcome = cycle.place(JobDemand.of([*members("gang", gang, 1), doomed]))
    assert not isinstance(outcome, Plan)
    assert snapshot(cycle) == state
