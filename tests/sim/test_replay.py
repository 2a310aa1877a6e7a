"""The replay in time (mesos_gpu.sim.replay): hand-checked queueing on tiny traces, the accounting as
Hypothesis properties, determinism."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.placement import AgentSlot
from mesos_gpu.core.resources import Resources
from mesos_gpu.sim.policies import BY_NAME, FIFO_FIRST_FIT, PolicyCase
from mesos_gpu.sim.replay import plot_replay, replay, replay_jobs, sample_nodes
from mesos_gpu.sim.replay_run import CaseRun
from mesos_gpu.sim.trace import TraceTask

DEFAULT = BY_NAME["default"]
FIFO = FIFO_FIRST_FIT      # strict FIFO first fit, no backfill


def node(name: str, gpus: int, cpus: float = 16, mem: int = 65536) -> AgentSlot:
    capacity = Resources.of(cpus=cpus, mem=mem, disk=1_000_000, gpus=gpus)
    return AgentSlot(name, name, capacity, (f"offer-{name}",), {"gpu_model": "G"}, total=capacity)


def task(name: str, submit: float, duration: float | None, gpus: int = 1, *, milli: int = 1000,
         cpus: int = 1000) -> TraceTask:
    return TraceTask(name, submit, duration, gpus, milli if gpus else 0, cpus, 1024, "", "LS")


def delays(case: PolicyCase, nodes: list[AgentSlot], tasks: list[TraceTask]) -> dict[str, float]:
    jobs, _ = replay_jobs(tasks, dense_window=False)
    run = CaseRun(nodes, jobs, case.policy()).run()
    return {job.job_id: run.launch[job.job_id] - job.submit for job in jobs}


def test_backfill_places_a_small_job_that_strict_fifo_keeps_behind_a_waiting_one() -> None:
    nodes = [node("N1", 2), node("N2", 1)]
    tasks = [task("a", 0, 100, gpus=2), task("b", 10, 50, gpus=2), task("c", 20, 30, gpus=1)]
    # a takes N1; b waits for N1 until a ends at 100; c fits N2 at once, unless it must wait behind b.
    assert delays(DEFAULT, nodes, tasks) == {"a": 0, "b": 90, "c": 0}
    assert delays(FIFO, nodes, tasks) == {"a": 0, "b": 90, "c": 80}


def test_a_whole_gpu_job_waits_for_an_empty_share_host_to_linger_out() -> None:
    nodes = [node("N1", 1)]
    tasks = [task("share", 0, 10, milli=500), task("whole", 1, 10)]
    # the share ends at 10; its host keeps the GPU for its 30 s linger, exits at 40; "whole" runs then
    assert delays(DEFAULT, nodes, tasks) == {"share": 0, "whole": 39}


def test_rows_without_duration_and_before_the_dense_window_are_left_out_and_counted() -> None:
    tasks = [task("early", 5, 10), task("never", 9_700_000, None), task("x", 9_700_000, 10),
             task("y", 9_700_100, 10)]
    jobs, left_out = replay_jobs(tasks, speedup=10)
    assert [(job.job_id, job.submit) for job in jobs] == [("x", 0.0), ("y", 10.0)]
    assert sorted(left_out.values()) == [1, 1]
    with pytest.raises(ValueError):
        replay_jobs(tasks, speedup=0)


def test_a_node_sample_keeps_every_kth_node_by_model() -> None:
    nodes = [node(f"N{i}", 8 if i % 2 else 2) for i in range(10)]
    assert len(sample_nodes(nodes, 2)) == 5 and len(sample_nodes(nodes, 1)) == 10


# ------------------------------------------------------------------------------------- properties
NODES = st.lists(st.tuples(st.integers(0, 4), st.sampled_from([4, 8, 16])), min_size=1, max_size=3)
TASKS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 60), st.sampled_from([0, 1, 1, 2, 4]),
              st.sampled_from([250, 500, 750, 1000, 1000]), st.sampled_from([1000, 2000, 6000])),
    min_size=1, max_size=12)


def _scenario(shapes: list[tuple[int, int]], rows: list[tuple[int, int, int, int, int]]):
    nodes = [node(f"N{i}", gpus, cpus) for i, (gpus, cpus) in enumerate(shapes)]
    tasks = [task(f"t{i:02d}", submit, duration, gpus, milli=milli if gpus == 1 else 1000, cpus=cpus)
             for i, (submit, duration, gpus, milli, cpus) in enumerate(rows)]
    return nodes, replay_jobs(tasks, dense_window=False)[0]


@settings(max_examples=40, deadline=None)
@given(NODES, TASKS, st.sampled_from([DEFAULT, FIFO]))
def test_the_accounting_holds_on_small_random_clusters(shapes, rows, case) -> None:
    nodes, jobs = _scenario(shapes, rows)
    run = CaseRun(nodes, jobs, case.policy()).run(drain=True)
    by_id = {job.job_id: job for job in jobs}
    assert all(count == 1 for count in run.launches.values())           # launched at most once
    for job_id, launched in run.launch.items():
        job = by_id[job_id]
        assert launched >= job.submit
        assert run.finished[job_id] == launched + job.duration          # released at its end time
    # GPUs allocated (the running tasks' demand) never above any agent's GPUs, nor the cluster's
    changes = sorted((at, sign * by_id[job_id].task.gpu_demand, run.agent_of[job_id])
                     for job_id, launched in run.launch.items()
                     for at, sign in ((launched, 1), (run.finished[job_id], -1)))
    level = [0] * len(nodes)
    for _, delta, agent in changes:             # ends before starts at one instant (negative first)
        level[agent] += delta
        assert level[agent] <= nodes[agent].total.gpus * 1000
    assert sum(level) == 0
    # every job fits the empty cluster or fails as never fitting; all is released once drained
    assert set(run.launch) | set(run.failed) == set(by_id)
    assert all(agent.free == agent.slot.total for agent in run.master.agents)
    assert run.guard.violations == []


def test_the_same_seed_gives_the_same_result() -> None:
    nodes, jobs = _scenario([(2, 16), (1, 8)], [(0, 30, 1, 500, 1000), (1, 50, 2, 1000, 2000),
                                                 (2, 10, 1, 1000, 1000), (3, 20, 1, 250, 1000)])
    tasks = [job.task for job in jobs]

    def document(workers: int) -> str:
        result = replay(nodes, tasks, [DEFAULT, FIFO], speedup=1.0, dense_window=False, seed=3,
                        workers=workers)
        data = result.to_json()
        for case in data["cases"]:
            case.pop("seconds")
            case.pop("cpu_seconds")
        return json.dumps(data, sort_keys=True)

    assert document(1) == document(1) == document(2)      # in parallel processes too


def test_the_report_table_json_and_plot(tmp_path) -> None:
    nodes = [node("N1", 2), node("N2", 1)]
    tasks = [task("a", 0, 100, gpus=2), task("b", 10, 50, gpus=2), task("c", 20, 30), task("d", 30, None)]
    seen: list[tuple[int, int]] = []
    result = replay(nodes, tasks, [DEFAULT, FIFO], dense_window=False,
                    progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (6, 6)
    assert result.case(FIFO.name).delay_mean == pytest.approx(170 / 3)
    assert result.case("default").delay_mean == pytest.approx(30)
    table = result.table()
    assert "the trace names no tenant" in table and "1 no duration" in table
    json.dumps(result.to_json())
    plot_replay(result, tmp_path / "replay.png")
    assert (tmp_path / "replay.png").read_bytes()[:4] == b"\x89PNG"


def _launch(agent: str, *jobs: str):
    from mesos_gpu.core.placement import AgentLaunch, TaskPlacement

    tasks = tuple(TaskPlacement(f"{job}.task-0", job, "task", 0, agent, agent, (), Resources.of(gpus=1))
                  for job in jobs)
    return AgentLaunch(agent, agent, (f"o-{agent}",), tasks)


def test_the_guard_counts_later_jobs_launched_on_agents_held_now_or_in_the_last_cycle() -> None:
    from mesos_gpu.core.placement import CyclePlan, WaitReason
    from mesos_gpu.sim.replay_run import StarvationGuard

    guard = StarvationGuard({"early": 0, "big": 1, "late": 2})
    waiting = WaitReason("big", "big.task-0", 2, (("insufficient gpus", 2),), held=("S1",))
    guard.observe(CyclePlan({"big": waiting}, (), ()))
    moved = waiting._replace(held=("S2",))
    # the hold moved to S2: "late" on S1 (held in the last cycle) counts, "early" (submitted first) not
    guard.observe(CyclePlan({"big": moved}, (_launch("S1", "early", "late"),), ()))
    assert guard.violations == [("big", "late", "S1")] and guard.held_jobs == {"big"}
    guard.observe(CyclePlan({"big": moved._replace(held=())}, (_launch("S1", "late"),), ()))
    assert len(guard.violations) == 1       # S1 is no longer held for it


def test_per_tenant_figures_add_up_to_the_case_and_are_reported() -> None:
    nodes = [node("N1", 2), node("N2", 1)]
    tasks = [TraceTask(name, submit, 60.0, gpus, 1000, 1000, 1024, tenant, "LS")
             for name, submit, gpus, tenant in (("a", 0, 2, "red"), ("b", 5, 2, "blue"), ("c", 10, 1, "blue"),
                                                ("d", 15, 1, "red"), ("e", 20, 2, "blue"))]
    result = replay(nodes, tasks, [DEFAULT, FIFO], dense_window=False)
    table = result.table()
    for case in result.cases:
        assert set(case.tenants) == {"red", "blue"}
        assert (case.tenants["red"]["jobs"], case.tenants["blue"]["jobs"]) == (2, 3)
        placed = sum(figures["placed"] for figures in case.tenants.values())
        assert placed == case.placed
        total = sum(figures["delay_mean"] * figures["placed"] for figures in case.tenants.values())
        assert total / placed == pytest.approx(case.delay_mean)
        for tenant, figures in case.tenants.items():
            assert f"{case.name} / {tenant}: {figures['placed']:.0f} of {figures['jobs']:.0f} placed" in table
    assert "names no tenant" not in table
