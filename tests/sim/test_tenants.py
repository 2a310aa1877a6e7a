"""The multi-tenant replay (`sim.tenants`): the synthetic tenants' draw, the quotas, what the product's
tenant admission changes, and `mesos-gpu simulate tenants`, on small hand-made traces."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mesos_gpu import cli
from mesos_gpu.core.tenancy import milli_gpus
from mesos_gpu.sim.policies import BY_NAME
from mesos_gpu.sim.tenants import BURST_EVERY, BURST_LENGTH, TEAMS, draw_tenants, quota_config, replay_tenants
from mesos_gpu.sim.trace import TraceTask
from tests.sim.tracefiles import node, write_nodes, write_tasks


def task(job_id: str, submit: float, *, gpus: int = 1, milli: int = 1000, tenant: str = "",
         duration: float = 100.0) -> TraceTask:
    return TraceTask(job_id, submit, duration, gpus, milli if gpus else 0, 1000, 1024, tenant, "LS")


def mixed(count: int) -> list[TraceTask]:
    """Every kind of task, submitted a minute apart over `count` minutes."""
    kinds = [dict(gpus=1, milli=500), dict(gpus=1), dict(gpus=4), dict(gpus=0)]
    return [task(f"t{i}", 60.0 * i, **kinds[i % len(kinds)]) for i in range(count)]  # type: ignore[arg-type]


def test_the_draw_is_the_same_for_a_seed_and_differs_between_seeds() -> None:
    tasks = mixed(400)
    first = [t.tenant for t in draw_tenants(tasks, 3)]
    assert first == [t.tenant for t in draw_tenants(tasks, 3)]
    assert first != [t.tenant for t in draw_tenants(tasks, 4)]
    assert set(first) == set(TEAMS)


def test_the_trace_s_own_tenant_is_kept() -> None:
    drawn = draw_tenants([task("a", 0, tenant="ops"), task("b", 0)], 0)
    assert drawn[0].tenant == "ops"
    assert drawn[1].tenant in TEAMS


def test_each_team_has_its_sizes_and_arrival_pattern() -> None:
    drawn = draw_tenants(mixed(4000), 0)
    shares = Counter(t.tenant for t in drawn if t.is_share)
    multi = Counter(t.tenant for t in drawn if t.gpus >= 2)
    assert shares.most_common(1)[0][0] == "inference"
    assert multi.most_common(1)[0][0] == "training"
    research = [t for t in drawn if t.tenant == "research"]
    in_burst = sum(1 for t in research if t.submit % BURST_EVERY < BURST_LENGTH)
    # A quarter of the time is burst: well over half of research's jobs arrive in it.
    assert in_burst > 0.6 * len(research)


@pytest.mark.parametrize("capacity", [1.0, 10.0, 394.0, 6212.0])
def test_quotas_never_guarantee_more_than_the_cluster(capacity: float) -> None:
    config = quota_config(capacity)
    assert config.guaranteed + config.unassigned == milli_gpus(capacity)
    assert "interns" not in config.tenants
    assert all(terms.may_borrow for terms in config.tenants.values())


def test_quotas_keep_a_team_s_guarantee_from_a_flood_submitted_before_it() -> None:
    # 10 GPUs: training is guaranteed 4. Research submits 10 one-GPU jobs just before training's 4, at
    # the same instant.
    # Without quotas research takes every GPU and training waits for its jobs to end (100 s); with them,
    # research borrows only what training's waiting jobs do not need, and training starts at once.
    nodes = [node("a", 8), node("b", 2)]
    tasks = [task(f"r{i}", 0, tenant="research") for i in range(10)]
    tasks += [task(f"t{i}", 0, tenant="training") for i in range(4)]
    result = replay_tenants(nodes, tasks, BY_NAME["default"], workers=1, dense_window=False)
    without, with_quotas = result.runs["without quotas"], result.runs["with quotas"]
    assert not result.synthetic
    assert without["training"].delay_p50 >= 99
    assert with_quotas["training"].delay_p99 < 5
    assert with_quotas["research"].placed == without["research"].placed == 10
    assert with_quotas["training"].quota_gpus == 4
    assert without["training"].quota_gpus is None


def test_the_result_does_not_depend_on_the_workers() -> None:
    nodes = [node("a", 4), node("b", 2)]
    tasks = draw_tenants(mixed(40), 1)
    one = replay_tenants(nodes, tasks, BY_NAME["default"], workers=1, seed=1, dense_window=False).to_json()
    two = replay_tenants(nodes, tasks, BY_NAME["default"], workers=2, seed=1, dense_window=False).to_json()
    assert one["jobs"] == 40
    one.pop("seconds"), two.pop("seconds")
    assert one == two


def test_the_command_writes_the_table_json_and_plot(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    nodes = write_nodes(tmp_path / "nodes.csv", [("a", 16_000, 65_536, 8), ("b", 8_000, 32_768, 2)])
    tasks = write_tasks(tmp_path / "tasks.csv", [
        (f"j{i}", 10 * i, 200, 1 + i % 2, 1000 if i % 3 else 500, 1000, 512) for i in range(30)])
    out = tmp_path / "out"
    code = cli.main(["simulate", "tenants", "--nodes", str(nodes), "--tasks", str(tasks), "--whole-trace",
                     "--speedup", "2", "--tenant-seed", "7", "--jobs", "1", "--out", str(out), "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    document = json.loads(printed.out)["tenants"]
    assert document["synthetic"] is True and document["seed"] == 7
    assert set(document["runs"]) == {"without quotas", "with quotas"}
    assert sum(t["jobs"] for t in document["runs"]["with quotas"].values()) == 30
    for name in ("tenants.txt", "tenants.json", "tenants.png"):
        assert (out / name).stat().st_size > 0
    assert "Multi-tenant replay" in (out / "tenants.txt").read_text()


def test_the_command_takes_one_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = write_nodes(tmp_path / "nodes.csv", [("a", 16_000, 65_536, 8)])
    tasks = write_tasks(tmp_path / "tasks.csv", [("j", 0, 10, 1, 1000, 1000, 512)])
    code = cli.main(["simulate", "tenants", "--nodes", str(nodes), "--tasks", str(tasks), "--policies",
                     "default,fgd", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "one policy" in capsys.readouterr().err
