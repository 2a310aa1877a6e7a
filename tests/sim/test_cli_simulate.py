"""`mesos-gpu simulate` end to end on a tiny trace: exit status, files, JSON, one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesos_gpu import cli
from mesos_gpu.commands.simulate import FALLBACK_REASON
from mesos_gpu.sim.progress import ProgressBar
from tests.sim.tracefiles import write_nodes, write_tasks


@pytest.fixture
def trace(tmp_path: Path) -> list[str]:
    nodes = write_nodes(tmp_path / "nodes.csv", [("a", 16_000, 65_536, 8), ("b", 8_000, 32_768, 2),
                                                  ("cpu", 32_000, 65_536, 0)])
    tasks = write_tasks(tmp_path / "tasks.csv", [
        ("w1", 0, 100, 1, 1000, 2000, 1024), ("w2", 10, 50, 2, 1000, 4000, 1024),
        ("s1", 20, 30, 1, 400, 1000, 512), ("s2", 25, None, 1, 700, 1000, 512),
        ("c", 30, 10, 0, 0, 3000, 512)])
    return ["--nodes", str(nodes), "--tasks", str(tasks)]


def test_fill_writes_the_table_json_and_plot(trace: list[str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = cli.main(["simulate", "fill", *trace, "--seeds", "2", "--policies", "default,best-fit",
                     "--out", str(out), "--jobs", "1"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert FALLBACK_REASON in printed.out
    assert "default" in printed.out and "best-fit" in printed.out and "unalloc@100% med" in printed.out
    for name in ("fill.txt", "fill.json", "fill.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "fill.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"fill: wrote {out / 'fill.txt'}, {out / 'fill.json'}, {out / 'fill.png'}" in printed.out
    document = json.loads((out / "fill.json").read_text())
    assert [policy["name"] for policy in document["policies"]] == ["default", "best-fit"]
    assert document["seeds"] == [0, 1] and document["cpu_tasks_on_gpu_agents"] == "fallback"
    assert printed.err == ""   # no progress bar: stderr is not a terminal


def test_json_on_stdout_parses(trace: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["simulate", "fill", *trace, "--seeds", "1", "--policies", "first-fit", "--json",
                     "--max-arrived", "110", "--cpu-tasks-on-gpu-agents", "restricted", "--progress",
                     "--out", str(tmp_path / "o")])
    printed = capsys.readouterr()
    assert code == 0
    document = json.loads(printed.out)
    fill = document["fill"]
    assert fill["max_arrived_pct"] == 110 and fill["cpu_tasks_on_gpu_agents"] == "restricted"
    samples = fill["policies"][0]["runs"][0]["samples"]
    assert samples["arrived_pct"] == list(range(111))
    assert "fill [" in printed.err and "1/1 100%" in printed.err   # --progress: drawn although not a tty


@pytest.mark.parametrize(("argv", "message"), [
    (["--nodes", "/nonexistent/nodes.csv"],
     "mesos-gpu simulate: /nonexistent/nodes.csv: No such file or directory"),
    (["--policies", "default,bogus"], "mesos-gpu simulate: unknown policy bogus: choose from random,"),
])
def test_bad_inputs_exit_2_with_one_line(trace: list[str], tmp_path: Path, argv: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["simulate", "fill", *trace, *argv, "--out", str(tmp_path / "o")])
    printed = capsys.readouterr()
    assert code == 2
    assert printed.err.startswith(message) and printed.err.count("\n") == 1
    assert "Traceback" not in printed.err and not (tmp_path / "o").exists()


def test_a_task_list_without_gpu_demand_is_one_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    nodes = write_nodes(tmp_path / "n.csv", [("a", 8000, 1024, 1)])
    tasks = write_tasks(tmp_path / "t.csv", [("c", 0, 1, 0, 0, 1000, 10)])
    code = cli.main(["simulate", "fill", "--nodes", str(nodes), "--tasks", str(tasks),
                     "--out", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err == ("mesos-gpu simulate: the task list asks for no GPU: the arrived "
                                       "demand would never grow\n")


def test_bad_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--seeds", "0"], ["--max-arrived", "0.5"], ["--speedup", "-1"], ["--jobs", "x"]):
        with pytest.raises(SystemExit) as raised:
            cli.main(["simulate", "fill", *argv])
        assert raised.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_the_same_seed_gives_the_same_numbers_in_any_process(trace: list[str], tmp_path: Path) -> None:
    """Hash randomisation must not leak into placement: two processes, two hash seeds, one answer."""
    runs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        done = subprocess.run(
            [sys.executable, "-m", "mesos_gpu.cli", "simulate", "fill", *trace, "--seeds", "2", "--json",
             "--jobs", "1", "--out", str(tmp_path / hash_seed)],
            capture_output=True, text=True, env=env, check=True, timeout=120)
        document = json.loads(done.stdout)["fill"]
        runs.append([[run["samples"] for run in policy["runs"]] for policy in document["policies"]])
    assert runs[0] == runs[1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar() -> None:
    times = iter([0.0, 10.0, 20.0])
    stream = Terminal()
    bar = ProgressBar("fill", stream=stream, clock=lambda: next(times))
    bar(1, 4)
    bar(4, 4)
    bar.close()
    assert stream.getvalue() == ("\rfill [" + "#" * 8 + "." * 22 + "] 1/4  25%  0:10  ~0:30 left"
                                 "\rfill [" + "#" * 30 + "] 4/4 100%  0:20\n")
    quiet, silent = Terminal(), io.StringIO()
    for bar in (ProgressBar("fill", stream=quiet, enabled=False), ProgressBar("fill", stream=silent)):
        bar(1, 2)
        bar.close()
    assert quiet.getvalue() == silent.getvalue() == ""   # switched off, or not a terminal


def test_replay_is_wired(trace: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = cli.main(["simulate", "replay", *trace, "--whole-trace", "--speedup", "2", "--policies",
                     "default,fifo-first-fit", "--node-sample", "1", "--out", str(out), "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert set(json.loads(printed.out)) == {"replay"}
    for name in ("replay.txt", "replay.json", "replay.png"):
        assert (out / name).stat().st_size > 0


def test_all_runs_both_experiments_and_says_which_nodes_the_replay_took(
        trace: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", *trace, "--seeds", "1", "--policies", "default", "--node-sample", "1",
            "--whole-trace", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "replay: 3 of 3 nodes (one in 1)" in printed
    for name in ("fill.json", "replay.json"):
        assert (tmp_path / name).stat().st_size > 0

