"""Placement of GPU shares: one table per rule (hosts, levels, memory, MIG, elastic, reasons, gangs)."""

from __future__ import annotations

import pytest

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement import GangPlanner, JobDemand, NeverFits, Plan, WaitReason
from mesos_gpu.core.placement.fragmentation import FragmentationTable, TaskSizes
from mesos_gpu.core.sharing import ShareGrant, ShareHostView
from tests.placement.builders import agent, task, view


def host(host_id: str, agent_id: str = "a", isolation: str = "capped", *, used: int = 0, used_memory: int = 0,
         device_memory: int = 0, accepting: bool = True, mig_free: tuple[int, ...] = ()) -> ShareHostView:
    return ShareHostView(host_id, agent_id, Isolation(isolation), device_memory, used, used_memory, accepting,
                         mig_free)


def place(*jobs, agents, hosts=(), catalog=None):
    """Place each job (a TaskBuilder or a list of them) in one cycle; the outcomes and the cycle."""
    cycle = GangPlanner().start(view(*agents, catalog=catalog), hosts)
    outcomes = []
    for job in jobs:
        builders = job if isinstance(job, list) else [job]
        members = [b.build() for b in builders]
        outcomes.append(cycle.place(JobDemand(members[0].job_id, tuple(members))))
    return outcomes, cycle


def grant_of(outcome) -> ShareGrant:
    assert isinstance(outcome, Plan), outcome
    grant = outcome.placements[0].share
    assert grant is not None
    return grant


def share(task_id: str, gpus: float, isolation: str = "capped", **kwargs):
    return task(task_id, task_id).share(gpus, isolation, **kwargs)


def test_a_share_opens_a_host_with_one_gpu_and_the_hosts_resources():
    (outcome,), cycle = place(share("t1", 0.25), agents=[agent("a").gpus(2).attr("gpu_memory_mb", "16384")])
    assert grant_of(outcome) == ShareGrant("new:a:1", True, Isolation.CAPPED, 250, 4096, 16384)
    left = cycle.remaining("a")
    assert left.scalar_milli("gpus") == 1000
    assert left.scalar_milli("cpus") == 16000 - 1000 - 100
    assert left.scalar_milli("mem") == (65536 - 1024 - 64) * 1000
    placement = outcome.placements[0]
    assert placement.request.scalar_milli("gpus") == 0      # the task's own resources: no GPU


def test_four_quarters_share_one_new_host_in_a_cycle():
    outcomes, cycle = place(*(share(f"t{i}", 0.25) for i in range(4)), agents=[agent("a").gpus(2)])
    assert {grant_of(o).host_id for o in outcomes} == {"new:a:1"}
    assert all(grant_of(o).new_host for o in outcomes)
    assert cycle.remaining("a").scalar_milli("gpus") == 1000
    outcomes, _ = place(*(share(f"t{i}", 0.5) for i in range(3)), agents=[agent("a").gpus(2)])
    assert [grant_of(o).host_id for o in outcomes] == ["new:a:1", "new:a:1", "new:a:2"]


# (name, hosts, share, expected host id)
EXISTING = [
    ("existing host with room first", [host("h1", used=500)], share("t", 0.5), "h1"),
    ("full host: a new one", [host("h1", used=600)], share("t", 0.5), "new:a:1"),
    ("other level: a new one", [host("h1", "shared", used=0)], share("t", 0.5), "new:a:1"),
    ("not accepting: a new one", [host("h1", used=0, accepting=False)], share("t", 0.5), "new:a:1"),
    ("host on an agent without offers: a new one", [host("h1", "b")], share("t", 0.5), "new:a:1"),
    ("memory full: a new one", [host("h1", used=100, used_memory=15000, device_memory=16384)],
     share("t", 0.5, memory=2000), "new:a:1"),
    ("memory room", [host("h1", used=100, used_memory=14000, device_memory=16384)],
     share("t", 0.5, memory=2000), "h1"),
]


@pytest.mark.parametrize(("name", "hosts", "builder", "expected"), EXISTING, ids=[c[0] for c in EXISTING])
def test_existing_hosts_before_new_ones(name, hosts, builder, expected):
    (outcome,), _ = place(builder, agents=[agent("a").gpus(1)], hosts=hosts)
    grant = grant_of(outcome)
    assert grant.host_id == expected
    assert grant.new_host == expected.startswith("new:")


def test_granted_memory_is_stated_or_the_fraction_of_the_device():
    agents = [agent("a").gpus(1).attr("gpu_memory_mb", "10000")]
    (stated,), _ = place(share("t", 0.5, memory=3000), agents=agents)
    (derived,), _ = place(share("t", 0.33), agents=agents)
    (unknown,), _ = place(share("t", 0.33), agents=[agent("a").gpus(1)])
    assert (grant_of(stated).memory, grant_of(derived).memory, grant_of(unknown).memory) == (3000, 3300, 0)


MIG = "3g.40gb/2g.20gb/1g.10gb/1g.10gb"
# (name, share, mig_free of an existing host or None, expected (index, profile, gpus, memory))
MIG_CASES = [
    ("smallest instance that holds it", share("t", 0.14, "mig"), None, (2, "1g.10gb", 142, 10240)),
    ("compute rounds up to a larger instance", share("t", 0.2, "mig"), None, (1, "2g.20gb", 285, 20480)),
    ("memory picks a larger instance", share("t", 0.1, "mig", memory=30000), None,
     (0, "3g.40gb", 428, 40960)),
    ("only free instances of a host", share("t", 0.1, "mig"), (0, 3), (3, "1g.10gb", 142, 10240)),
]


@pytest.mark.parametrize(("name", "builder", "free", "expected"), MIG_CASES, ids=[c[0] for c in MIG_CASES])
def test_mig_takes_the_smallest_free_instance(name, builder, free, expected):
    hosts = [host("h1", isolation="mig", mig_free=free)] if free is not None else []
    (outcome,), _ = place(builder, agents=[agent("a").gpus(1).attr("gpu_mig", MIG)], hosts=hosts)
    grant = grant_of(outcome)
    assert (grant.mig_index, grant.mig_profile, grant.gpus, grant.memory) == expected
    assert grant.host_id == ("h1" if free is not None else "new:a:1")


def test_mig_instances_are_given_once():
    outcomes, _ = place(*(share(f"t{i}", 0.14, "mig") for i in range(3)),
                        agents=[agent("a").gpus(1).attr("gpu_mig", "1g.10gb/1g.10gb")])
    assert [grant_of(o).mig_index for o in outcomes[:2]] == [0, 1]
    assert isinstance(outcomes[2], WaitReason)


# (name, hosts, agent gpus, expected gpus, expected host)
ELASTIC = [
    ("max on an existing host", [host("h1", used=100)], 0, 800, "h1"),
    ("max on a new host before less on an existing one", [host("h1", used=700)], 1, 800, "new:a:1"),
    ("the largest part that fits, at least min", [host("h1", used=700), host("h2", used=600)], 0, 400, "h2"),
]


@pytest.mark.parametrize(("name", "hosts", "gpus", "expected", "host_id"), ELASTIC,
                         ids=[c[0] for c in ELASTIC])
def test_elastic_gets_the_largest_fraction_that_fits(name, hosts, gpus, expected, host_id):
    builder = share("t", 0.8, gpus_min=0.2)
    (outcome,), _ = place(builder, agents=[agent("a").gpus(gpus) if gpus else agent("a").gpu_agent(True)],
                          hosts=hosts)
    assert (grant_of(outcome).gpus, grant_of(outcome).host_id) == (expected, host_id)


def test_elastic_below_min_waits():
    (outcome,), _ = place(share("t", 0.8, gpus_min=0.5), agents=[agent("a").gpu_agent(True)],
                          hosts=[host("h1", used=600)])
    assert isinstance(outcome, WaitReason)


# (name, agents, share, catalog?, expected summary)
REASONS = [
    ("no room and no whole gpu", [agent("a").gpu_agent(True), agent("b").gpu_agent(True)], share("t", 0.5),
     False,
     "0/2 agents fit: 2 no whole gpu or share host with 0.5 gpu free"),
    ("no agent offers mps", [agent("a").gpus(1)], share("t", 0.5, "mps"), True,
     "can never fit: 0/1 agents fit: 1 no gpu mps"),
    ("no agent offers the mig instance", [agent("a").gpus(1).attr("gpu_mig", "1g.10gb")],
     share("t", 0.6, "mig"), True, "can never fit: 0/1 agents fit: 1 no mig instance of 0.6 gpu"),
    ("cpus short for the host", [agent("a").gpus(1).cpus(1)], share("t", 0.5), False,
     "0/1 agents fit: 1 insufficient cpus"),
]


@pytest.mark.parametrize(("name", "agents", "builder", "catalog", "expected"), REASONS,
                         ids=[c[0] for c in REASONS])
def test_why_a_share_waits(name, agents, builder, catalog, expected):
    (outcome,), _ = place(builder, agents=agents, hosts=[host("h1", used=600)],
                          catalog=agents if catalog else None)
    assert isinstance(outcome, NeverFits if catalog else WaitReason)
    assert outcome.summary == expected


def test_a_mixed_gang_places_all_or_nothing():
    gang = [task("w0", "j").gpus(1), task("s0", "j").role("worker", 1).share(0.5)]
    (outcome,), cycle = place(gang, agents=[agent("a").gpus(2)])
    assert isinstance(outcome, Plan)
    assert {p.task_id: p.share is not None for p in outcome.placements} == {"w0": False, "s0": True}
    assert cycle.remaining("a").scalar_milli("gpus") == 0
    (failed,), cycle = place([*gang, task("big", "j").role("ps").cpus(1000)], agents=[agent("a").gpus(2)])
    assert isinstance(failed, WaitReason)
    assert cycle.remaining("a").scalar_milli("gpus") == 2000 and not cycle.shares.ledger.devices


def test_the_share_goes_where_fragmentation_grows_least():
    sizes = TaskSizes()
    for _ in range(50):
        sizes.add(300)
    table = FragmentationTable(sizes)
    # 300 on a device with 320 free leaves a sliver no task uses; on one with 600 free, room for another.
    assert table.gradient(600, 300) < table.gradient(320, 300)
    planner = GangPlanner()
    planner.sizes = sizes
    cycle = planner.start(view(agent("a").gpu_agent(True)), [host("h1", used=680), host("h2", used=400)])
    outcome = cycle.place(JobDemand.of([share("t", 0.3).build()]))
    assert grant_of(outcome).host_id == "h2"


def test_sizes_count_each_job_once():
    sizes = TaskSizes()
    sizes.observe("j1", [(500, 1, 1000)])
    sizes.observe("j1", [(500, 1, 1000)])
    sizes.observe("j2", [(1000, 2, 4000)])
    assert sizes.probabilities() == pytest.approx({500: 0.5, 1000: 0.5}, rel=1e-3)
    assert sizes.mean_gpus() == pytest.approx(1250, rel=1e-3)     # a 0.5 share and a 2-GPU task


def test_a_cpu_heavy_share_avoids_the_node_whose_cpus_it_would_exhaust():
    sizes = TaskSizes()
    for _ in range(20):
        sizes.add(1000, 1, 10_000)      # the tasks seen: one GPU and 10 cpus each
    table = FragmentationTable(sizes)
    assert table.stranded(1000, 1_000_000) == pytest.approx(0, abs=1e-6)   # cpus ample
    assert table.stranded(1000, 100_000) < table.stranded(1000, 20_000) < table.stranded(1000, 5_000)
    assert table.stranded(40_000, 0) == pytest.approx(40_000, rel=1e-3)    # no cpus: all of it stranded
    # Two agents, each with one whole GPU: one with 12 cpus, one with 64. A share with 10 cpus opens
    # its host where the GPUs left stay usable (the best fit alone would take the first).
    planner = GangPlanner()
    planner.sizes = sizes
    cycle = planner.start(view(agent("tight").gpus(2).cpus(12), agent("ample").gpus(2).cpus(64)))
    outcome = cycle.place(JobDemand.of([share("t", 0.5).cpus(10).build()]))
    assert grant_of(outcome).host_id == "new:ample:1"


def test_a_share_with_gpus_is_invalid():
    demand = task("t", "t").gpus(1).share(0.5).build()
    assert "takes no whole gpus" in (demand.needs.problem or "")
