"""Every feasibility filter, as named table cases over agents and tasks built fluently."""

from __future__ import annotations

import pytest

from mesos_gpu.core.placement import PlacementPolicy, reasons
from mesos_gpu.core.placement.filters import (
    FILTERS,
    constraints_met,
    enough_cpus,
    enough_disk,
    enough_gpus,
    enough_mem,
    enough_named,
    enough_ports,
    first_failure,
    gpu_agent_reserved,
    healthy_gpus,
    not_held,
    share_capable,
)
from tests.placement.builders import agent, agent_state, context, task

DEFAULT = PlacementPolicy()
LENIENT = PlacementPolicy(cpu_tasks_on_gpu_agents=True)

# (name, filter, agent builder, task builder, policy, expected reason or None)
CASES = [
    ("reserved: cpu task on gpu agent", gpu_agent_reserved, agent("a").gpus(2), task(), DEFAULT,
     reasons.GPU_AGENT_RESERVED),
    ("reserved: allowed by operator", gpu_agent_reserved, agent("a").gpus(2), task(), LENIENT, None),
    ("reserved: gpu agent by model, all gpus taken", gpu_agent_reserved,
     agent("a").attr("gpu_model", "T4"), task(), DEFAULT, reasons.GPU_AGENT_RESERVED),
    ("reserved: gpu task on gpu agent", gpu_agent_reserved, agent("a").gpus(2), task().gpus(1), DEFAULT,
     None),
    ("reserved: cpu task on cpu agent", gpu_agent_reserved, agent("a"), task(), DEFAULT, None),
    ("healthy: unhealthy gpus", healthy_gpus, agent("a").gpus(2).unhealthy(), task().gpus(1), DEFAULT,
     reasons.UNHEALTHY_GPUS),
    ("healthy: unhealthy count attribute", healthy_gpus, agent("a").gpus(2).attr("unhealthy_gpus", "1"),
     task().gpus(1), DEFAULT, reasons.UNHEALTHY_GPUS),
    ("healthy: zero unhealthy", healthy_gpus, agent("a").gpus(2).attr("unhealthy_gpus", "0"),
     task().gpus(1), DEFAULT, None),
    ("healthy: cpu task ignores gpu health", healthy_gpus, agent("a").gpus(2).unhealthy(), task(), LENIENT,
     None),
    ("gpus: enough", enough_gpus, agent("a").gpus(2), task().gpus(2), DEFAULT, None),
    ("gpus: short", enough_gpus, agent("a").gpus(1), task().gpus(2), DEFAULT, reasons.INSUFFICIENT_GPUS),
    ("gpus: none on cpu agent", enough_gpus, agent("a"), task().gpus(1), DEFAULT, reasons.INSUFFICIENT_GPUS),
    ("cpus: exact fit", enough_cpus, agent("a").cpus(2.5), task().cpus(2.5), DEFAULT, None),
    ("cpus: short by a thousandth", enough_cpus, agent("a").cpus(2.499), task().cpus(2.5), DEFAULT,
     reasons.INSUFFICIENT_CPUS),
    ("mem: short", enough_mem, agent("a").mem(1000), task().mem(1024), DEFAULT, reasons.INSUFFICIENT_MEM),
    ("mem: enough", enough_mem, agent("a").mem(1024), task().mem(1024), DEFAULT, None),
    ("disk: short", enough_disk, agent("a").disk(10), task().disk(20), DEFAULT, reasons.INSUFFICIENT_DISK),
    ("disk: enough", enough_disk, agent("a").disk(20), task().disk(20), DEFAULT, None),
    ("ports: enough", enough_ports, agent("a").ports((31000, 31001)), task().ports(2), DEFAULT, None),
    ("ports: short", enough_ports, agent("a").ports((31000, 31001)), task().ports(3), DEFAULT,
     reasons.INSUFFICIENT_PORTS),
    ("ports: none offered", enough_ports, agent("a").ports(), task().ports(1), DEFAULT,
     reasons.INSUFFICIENT_PORTS),
    ("ports: fixed port offered", enough_ports, agent("a").ports((80, 80)), task().fixed_ports((80, 80)),
     DEFAULT, None),
    ("ports: fixed port absent", enough_ports, agent("a").ports((81, 90)), task().fixed_ports((80, 80)),
     DEFAULT, reasons.INSUFFICIENT_PORTS),
    ("ports: fixed plus count short", enough_ports, agent("a").ports((80, 81)),
     task().fixed_ports((80, 80)).ports(2), DEFAULT, reasons.INSUFFICIENT_PORTS),
    ("named: enough fpgas", enough_named, agent("a").scalar("fpgas", 2), task().scalar("fpgas", 2), DEFAULT,
     None),
    ("named: short fpgas", enough_named, agent("a").scalar("fpgas", 1), task().scalar("fpgas", 2), DEFAULT,
     "insufficient fpgas"),
    ("named: absent", enough_named, agent("a"), task().scalar("fpgas", 1), DEFAULT, "insufficient fpgas"),
    ("share: capped on any gpu agent", share_capable, agent("a").gpus(1), task().share(0.5).opening(),
     DEFAULT, None),
    ("share: mps needs gpu_mps", share_capable, agent("a").gpus(1), task().share(0.5, "mps").opening(),
     DEFAULT, reasons.NO_MPS),
    ("share: mps offered", share_capable, agent("a").gpus(1).attr("gpu_mps", "true"),
     task().share(0.5, "mps").opening(), DEFAULT, None),
    ("share: mig without a layout", share_capable, agent("a").gpus(1), task().share(0.25, "mig").opening(),
     DEFAULT, "no mig instance of 0.25 gpu"),
    ("share: mig instance too small", share_capable, agent("a").gpus(1).attr("gpu_mig", "1g.10gb/1g.10gb"),
     task().share(0.25, "mig").opening(), DEFAULT, "no mig instance of 0.25 gpu"),
    ("share: mig instance fits", share_capable, agent("a").gpus(1).attr("gpu_mig", "2g.20gb/1g.10gb"),
     task().share(0.25, "mig").opening(), DEFAULT, None),
    ("share: capped refused on a MIG-mode gpu", share_capable,
     agent("a").gpus(1).attr("gpu_mig", "3g.20gb/2g.10gb"), task().share(0.5).opening(), DEFAULT,
     reasons.MIG_MODE),
    ("share: mps refused on a MIG-mode gpu", share_capable,
     agent("a").gpus(1).attr("gpu_mig", "3g.20gb").attr("gpu_mps", "true"),
     task().share(0.5, "mps").opening(), DEFAULT, reasons.MIG_MODE),
    ("share: shared refused on a MIG-mode gpu", share_capable,
     agent("a").gpus(1).attr("gpu_mig", "1g.5gb"), task().share(0.1, "shared").opening(), DEFAULT,
     reasons.MIG_MODE),
    ("share: stated memory over the device's", share_capable,
     agent("a").gpus(1).attr("gpu_memory_mb", "16384"),
     task().share(0.5, memory=20000).opening(), DEFAULT, "gpu memory under 20000 mb"),
    ("share: memory unknown, not checked", share_capable, agent("a").gpus(1),
     task().share(0.5, memory=20000).opening(), DEFAULT, None),
    ("share: not a share", share_capable, agent("a"), task(), DEFAULT, None),
    ("constraint: like gpu model", constraints_met, agent("a").gpus(1, "A100-80GB"),
     task().gpus(1).constraint("gpu_model", "LIKE", "A100.*"), DEFAULT, None),
    ("constraint: like gpu model fails", constraints_met, agent("a").gpus(1, "T4"),
     task().gpus(1).constraint("gpu_model", "LIKE", "A100.*"), DEFAULT, "constraint LIKE gpu_model"),
    ("constraint: unlike", constraints_met, agent("a").rack("r1"), task().constraint("rack", "UNLIKE", "r1"),
     DEFAULT, "constraint UNLIKE rack"),
    ("constraint: cluster with value", constraints_met, agent("a").rack("r2"),
     task().constraint("rack", "CLUSTER", "r1"), DEFAULT, "constraint CLUSTER rack"),
    ("constraint: hostname is", constraints_met, agent("a").hostname("gpu-1"),
     task().constraint("hostname", "IS", "gpu-1"), DEFAULT, None),
    ("constraint: first failing constraint named", constraints_met, agent("a").rack("r1"),
     task().constraint("rack", "LIKE", "r.*").constraint("zone", "LIKE", "z1"), DEFAULT,
     "constraint LIKE zone"),
]


@pytest.mark.parametrize(("held", "expected"), [(True, reasons.HELD), (False, None)], ids=["held", "free"])
def test_not_held(held, expected):
    demand = task().gpus(1).build()
    state = agent_state(agent("a").gpus(2))
    state.held = held
    assert not_held(state, demand.needs, context(demand), DEFAULT) == expected
    if held:  # held comes before every other reason, even on an agent that would not fit anyway
        state.gpus = 0
        assert first_failure(state, demand.needs, context(demand), DEFAULT) == reasons.HELD


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_filter(case):
    _, check, agent_b, task_b, policy, expected = case
    demand = task_b.build()
    assert check(agent_state(agent_b, policy), demand.needs, context(demand), policy) == expected


# Constraints that look at where the job already is.
def test_unique_hostname_against_placed_members():
    demand = task().constraint("hostname", "UNIQUE").build()
    taken = agent_state(agent("a"))
    assert constraints_met(taken, demand.needs, context(demand, placed_on=((taken, "worker"),)), DEFAULT) \
        == "constraint UNIQUE hostname"
    other = agent_state(agent("b"))
    assert constraints_met(other, demand.needs, context(demand, placed_on=((taken, "worker"),)), DEFAULT) \
        is None


def test_max_per_rack_against_placed_members():
    demand = task().constraint("rack", "MAX_PER", "2").build()
    r1a, r1b, r1c = (agent_state(agent(n).rack("r1")) for n in "abc")
    ctx = context(demand, placed_on=((r1a, "worker"), (r1b, "worker")))
    assert constraints_met(r1c, demand.needs, ctx, DEFAULT) == "constraint MAX_PER rack"


def test_context_remove_undoes_add():
    demand = task().constraint("rack", "CLUSTER").build()
    r1, r2 = agent_state(agent("a").rack("r1")), agent_state(agent("b").rack("r2"))
    ctx = context(demand, placed_on=((r1, "worker"),))
    assert constraints_met(r2, demand.needs, ctx, DEFAULT) == "constraint CLUSTER rack"
    ctx.remove(r1, "worker")
    assert constraints_met(r2, demand.needs, ctx, DEFAULT) is None
    assert ctx.members_on == {} and ctx.counts == {"rack": {}}


# The chain: an agent is counted under its first failing reason, in FILTERS order.
CHAIN = [
    ("reserved before resources", agent("a").gpus(1).cpus(0.5), task().cpus(1), reasons.GPU_AGENT_RESERVED),
    ("unhealthy before gpus", agent("a").gpus(1).unhealthy(), task().gpus(2), reasons.UNHEALTHY_GPUS),
    ("gpus before constraints", agent("a").gpus(1, "T4"),
     task().gpus(2).constraint("gpu_model", "LIKE", "A100"), reasons.INSUFFICIENT_GPUS),
    ("constraints before cpus", agent("a").gpus(1, "T4").cpus(0),
     task().gpus(1).constraint("gpu_model", "LIKE", "A100"), "constraint LIKE gpu_model"),
    ("cpus before mem", agent("a").cpus(0).mem(0), task(), reasons.INSUFFICIENT_CPUS),
    ("mem before disk", agent("a").mem(0).disk(0), task().disk(1), reasons.INSUFFICIENT_MEM),
    ("disk before ports", agent("a").disk(0).ports(), task().disk(1).ports(1), reasons.INSUFFICIENT_DISK),
    ("ports before named", agent("a").ports(), task().ports(1).scalar("fpgas", 1),
     reasons.INSUFFICIENT_PORTS),
    ("fits", agent("a").gpus(2), task().gpus(2).ports(1), None),
]


@pytest.mark.parametrize(("name", "agent_b", "task_b", "expected"), CHAIN, ids=[case[0] for case in CHAIN])
def test_first_failure_follows_filter_order(name, agent_b, task_b, expected):
    demand = task_b.build()
    assert first_failure(agent_state(agent_b), demand.needs, context(demand), DEFAULT) == expected


def test_every_filter_has_a_table_case():
    tested = {case[1] for case in CASES} | {not_held}    # not_held: its own test above
    assert tested == set(FILTERS)
