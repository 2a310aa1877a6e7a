"""Hypothesis strategies for Resources, agents and task demands, kept in one place."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from mesos_gpu.core.resources import Resources

NAMES = ("cpus", "mem", "disk", "gpus", "fpga")


@st.composite
def port_ranges(draw: st.DrawFn, low: int = 30000, high: int = 30400) -> list[tuple[int, int]]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        begin = draw(st.integers(low, high))
        out.append((begin, begin + draw(st.integers(0, 40))))
    return out


@st.composite
def resources(draw: st.DrawFn, max_milli: int = 10_000_000) -> Resources:
    scalars = {name: draw(st.integers(0, max_milli)) for name in draw(st.sets(st.sampled_from(NAMES)))}
    sets = {"zones": draw(st.sets(st.sampled_from("abcd")))} if draw(st.booleans()) else {}
    return Resources(scalars, {"ports": draw(port_ranges())}, sets)


def decimals(max_value: float = 1e6) -> st.SearchStrategy[float]:
    """Numbers with at most three decimals, as a user would write them."""
    return st.integers(0, int(max_value * 1000)).map(lambda milli: milli / 1000)


@st.composite
def agent_builders(draw: st.DrawFn, max_agents: int = 6) -> list[Any]:
    """Agents with a mix of GPU counts, racks, models, port ranges and the odd unhealthy GPU agent."""
    from tests.placement.builders import agent

    builders = []
    for i in range(draw(st.integers(1, max_agents))):
        builder = agent(f"a{i}").cpus(draw(st.sampled_from([1, 4, 16])))
        builder.mem(draw(st.sampled_from([2048, 65536])))
        gpus = draw(st.sampled_from([0, 0, 1, 2, 4, 8]))
        if gpus:
            builder.gpus(gpus, draw(st.sampled_from(["A100", "T4"])))
            if draw(st.integers(0, 9)) == 0:
                builder.unhealthy()
        builder.rack(draw(st.sampled_from(["r1", "r2", "r3"])))
        builder.ports(*draw(port_ranges(31000, 31010)))
        builders.append(builder)
    return builders


CONSTRAINTS = [
    ("hostname", "UNIQUE"), ("rack", "MAX_PER", "2"), ("rack", "GROUP_BY", "2"),
    ("gpu_model", "LIKE", "A1.*"), ("rack", "CLUSTER"), ("gpu_model", "UNLIKE", "T4"),
]


@st.composite
def jobs(draw: st.DrawFn, max_jobs: int = 5, max_members: int = 4) -> list[Any]:
    """Jobs of 1-4 members; each job may carry one Marathon constraint for all its members."""
    from mesos_gpu.core.placement import JobDemand
    from tests.placement.builders import task

    out = []
    for j in range(draw(st.integers(1, max_jobs))):
        constraint = draw(st.sampled_from([None, None, *CONSTRAINTS]))
        members = []
        for m in range(draw(st.integers(1, max_members))):
            role = draw(st.sampled_from(["chief", "worker", "ps"]))
            builder = task(f"j{j}-t{m}", f"j{j}").role(role, m).cpus(draw(st.sampled_from([0.5, 1, 3])))
            builder.mem(draw(st.sampled_from([512, 4096]))).ports(draw(st.integers(0, 3)))
            if role != "ps":
                builder.gpus(draw(st.sampled_from([0, 1, 2, 4])))
            if constraint is not None:
                builder.constraint(*constraint)
            members.append(builder.build())
        out.append(JobDemand.of(members))
    return out
