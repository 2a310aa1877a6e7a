"""`mesos-gpu simulate`'s inputs and messages: the default trace missing, bad rows, node lists without GPUs,
the node sample's default, --jobs for the replay, the CPU-task setting said once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesos_gpu import cli
from mesos_gpu.sim import replay, trace
from mesos_gpu.sim.trace import NO_GPU
from tests.sim.tracefiles import write_nodes, write_tasks

TASKS = [("w1", 0, 100, 1, 1000, 2000, 1024), ("s1", 20, 30, 1, 400, 1000, 512),
         ("c", 30, 10, 0, 0, 3000, 512)]


@pytest.fixture
def openb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small trace standing in for the openb one at the default place: 32 GPU nodes."""
    folder = tmp_path / "traces"
    folder.mkdir()
    write_nodes(folder / trace.NODES_FILE, [(f"n{i:02}", 16_000, 65_536, 2) for i in range(32)])
    write_tasks(folder / trace.TASKS_FILE, TASKS)
    monkeypatch.setattr(trace, "DEFAULT_TRACES", folder)
    return folder


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["simulate", *argv])
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def test_the_default_trace_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(trace, "DEFAULT_TRACES", tmp_path / "nowhere")
    code, _, err = run(["fill", "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    missing = tmp_path / "nowhere" / trace.NODES_FILE
    assert err == f"mesos-gpu simulate: the openb trace is not found at {missing}: give --nodes and --tasks\n"


@pytest.mark.parametrize(("row", "message"), [
    ("x,nan,10,1,1,,,Running,1000,1000,10,LS", "3: submit_time_s: not a finite number: 'nan'"),
    ("w1,5,10,1,1,,,Running,1000,1000,10,LS", "3: job_id: repeats the one of line 2: 'w1'"),
])
def test_a_bad_task_row_exits_2_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   row: str, message: str) -> None:
    nodes = write_nodes(tmp_path / "n.csv", [("a", 8000, 1024, 1)])
    tasks = write_tasks(tmp_path / "t.csv", TASKS[:1])
    tasks.write_text(tasks.read_text() + row + "\n")
    for experiment in ("fill", "replay"):
        code, _, err = run([experiment, "--nodes", str(nodes), "--tasks", str(tasks), "--out", str(tmp_path)],
                           capsys)
        assert (code, err) == (2, f"mesos-gpu simulate: {tasks}:{message}\n")


def test_repeated_node_names_exit_2_in_both_experiments(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    nodes = write_nodes(tmp_path / "n.csv", [("a", 8000, 1024, 1), ("b", 8000, 1024, 1),
                                             ("a", 8000, 1024, 2)])
    tasks = write_tasks(tmp_path / "t.csv", TASKS)
    for experiment in ("fill", "replay"):
        code, _, err = run([experiment, "--nodes", str(nodes), "--tasks", str(tasks), "--out", str(tmp_path)],
                           capsys)
        assert (code, err) == (2, f"mesos-gpu simulate: {nodes}:4: sn: repeats the one of line 2: 'a'\n")


def test_a_node_list_without_gpus_is_refused_by_both_experiments(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    nodes = write_nodes(tmp_path / "n.csv", [("a", 8000, 1024, 0), ("b", 8000, 1024, 0)])
    tasks = write_tasks(tmp_path / "t.csv", TASKS)
    for experiment in ("fill", "replay"):
        code, _, err = run([experiment, "--nodes", str(nodes), "--tasks", str(tasks), "--whole-trace",
                            "--out", str(tmp_path)], capsys)
        assert (code, err) == (2, f"mesos-gpu simulate: {NO_GPU}\n")


def test_the_node_sample_default_is_for_the_openb_list_only(openb: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["replay", "--whole-trace", "--policies", "default", "--out", str(tmp_path / "o")]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "replay: 2 of 32 nodes (one in 16)" in out
    code, out, err = run([*argv, "--nodes", str(openb / trace.NODES_FILE)], capsys)
    assert code == 0, err
    assert "replay: 32 of 32 nodes (one in 1)" in out
    code, out, err = run([*argv, "--nodes", str(openb / trace.NODES_FILE), "--node-sample", "4"], capsys)
    assert "replay: 8 of 32 nodes (one in 4)" in out


def test_a_node_sample_without_gpus_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = write_nodes(tmp_path / "n.csv", [("a", 8000, 1024, 0), ("b", 8000, 1024, 2)])
    tasks = write_tasks(tmp_path / "t.csv", TASKS)
    code, _, err = run(["replay", "--nodes", str(nodes), "--tasks", str(tasks), "--node-sample", "2",
                        "--out", str(tmp_path)], capsys)
    assert (code, err) == (2, "mesos-gpu simulate: the node sample (one in 2) has no GPU: give a smaller "
                              "--node-sample\n")


@pytest.mark.parametrize(("argv", "workers"), [([], None), (["--jobs", "1"], 1), (["--jobs", "3"], 3)])
@pytest.mark.usefixtures("openb")
def test_jobs_bounds_the_replays_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str], argv: list[str],
                                         workers: int | None) -> None:
    seen: list[Any] = []
    real = replay.replay

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["workers"])
        return real(*args, **{**kwargs, "workers": 1})

    monkeypatch.setattr(replay, "replay", spy)
    code, _, err = run(["replay", "--whole-trace", "--policies", "default", *argv, "--out", str(tmp_path)],
                       capsys)
    assert code == 0, err
    assert seen == [workers]


def test_the_cpu_task_setting_is_said_once_per_table(openb: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for experiment in ("fill", "replay"):
        code, out, err = run([experiment, "--seeds", "1", "--max-arrived", "20", "--whole-trace",
                              "--policies", "default", "--jobs", "1", "--out", str(tmp_path)], capsys)
        assert code == 0, err
        assert out.count("CPU tasks on GPU agents") == 1, out
        assert "because the trace's production cluster let CPU pods run on GPU nodes" in out
