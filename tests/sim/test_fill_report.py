"""The fill experiment's report: headline figures, ratios against FGD and the best simple heuristic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesos_gpu.sim.fill import FillResult, Sample, SeedRun, fill
from mesos_gpu.sim.policies import BY_NAME
from mesos_gpu.sim.report import best_simple, fill_json, summaries
from tests.sim.tracefiles import node, task


def runs(name: str, unallocated: list[float]) -> tuple[SeedRun, ...]:
    """One run per seed whose sample at 100 % has the given unallocated %, fragmented half of it."""
    made = []
    for seed, value in enumerate(unallocated):
        samples = tuple(Sample(pct, max(value, 100.0 - pct), value / 2, pct, pct - seed, seed)
                        for pct in range(101))
        made.append(SeedRun(name, seed, samples, 2.0 + seed, 0.5))
    return tuple(made)


@pytest.fixture
def result() -> FillResult:
    figures = {"first-fit": [8.0, 6.0, 7.0], "random": [9.0, 9.5, 8.5], "fgd": [5.0, 4.0, 6.0],
               "default": [4.0, 4.5, 3.5]}
    return FillResult(tuple(BY_NAME[name] for name in figures), (0, 1, 2), 100.0, 10, 50, 4, 100, True,
                      {name: runs(name, values) for name, values in figures.items()}, 12.0, 2)


def test_summaries_are_medians_over_the_seeds(result: FillResult) -> None:
    rows = {row.policy: row for row in summaries(result)}
    assert rows["first-fit"][1:] == (7.0, 6.0, 8.0, 3.5, 1, 3.0)
    assert rows["default"].unallocated == 4.0 and rows["default"].fragmented == 2.0
    best = best_simple(list(rows.values()))
    assert best is not None and best.policy == "first-fit"   # fgd and default are not simple heuristics


def test_the_table_and_json_give_the_ratios(result: FillResult) -> None:
    table = result.table()
    default = next(line for line in table.splitlines() if line.startswith("default"))
    assert default.split() == ["default", "4.00", "%", "3.50-4.50", "2.00", "%", "1", "3.0", "0.800", "0.571"]
    assert "vs best simple (first-fit)" in table and "seeds 0..2" in table
    document = json.loads(json.dumps(fill_json(result)))
    assert document["best_simple"] == "first-fit"
    by_name = {policy["name"]: policy for policy in document["policies"]}
    assert by_name["default"]["summary"]["ratio_vs_fgd"] == pytest.approx(0.8)
    assert by_name["random"]["summary"]["ratio_vs_best_simple"] == pytest.approx(9.0 / 7.0)
    assert len(by_name["fgd"]["runs"]) == 3 and by_name["fgd"]["runs"][0]["samples"]["arrived_pct"][-1] == 100
    assert document["fragmentation_share"] == pytest.approx(12 * 0.5 / (4 * (2.0 + 3.0 + 4.0)))  # 12 runs


def test_the_plot_of_a_run_that_stops_early(tmp_path: Path) -> None:
    from mesos_gpu.sim.plot import plot_fill
    short = fill([node("a", 8), node("b", 2)], [task("x", 1), task("s", 1, 300)], [BY_NAME["default"]],
                 seeds=[0], max_arrived=0.05, jobs=1)
    assert short.headline_pct == 5 and "unalloc@5% med" in short.table()
    plot_fill(short, tmp_path / "fill.png")
    assert (tmp_path / "fill.png").read_bytes()[:4] == b"\x89PNG"
