"""The trace loader: rows as agents and tasks, and errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesos_gpu.core.placement.fgd import TaskShape
from mesos_gpu.sim.trace import TraceError, load_nodes, load_tasks
from tests.sim.tracefiles import write_nodes, write_tasks


def test_nodes_become_agents_with_their_whole_capacity(tmp_path: Path) -> None:
    nodes = load_nodes(write_nodes(tmp_path / "n.csv", [("a", 8000, 1024, 2), ("cpu", 4000, 512, 0)]))
    assert [slot.agent_id for slot in nodes] == ["a", "cpu"]
    assert nodes[0].available.scalar_milli("gpus") == 2000
    assert nodes[0].available.scalar_milli("cpus") == 8000
    assert nodes[0].attributes == {"gpu_model": "T4"}
    assert nodes[1].attributes == {}
    assert nodes[0].total == nodes[0].available


def test_tasks_keep_shares_whole_gpus_and_cpu_tasks_apart(tmp_path: Path) -> None:
    tasks = load_tasks(write_tasks(tmp_path / "t.csv", [
        ("share", 0, 60, 1, 450, 2000, 100), ("whole", 5, None, 2, 1000, 4000, 100),
        ("cpu", 7, 1, 0, 0, 1000, 100)]))
    share, whole, cpu = tasks
    assert (share.is_share, share.gpu_demand, share.shape()) == (True, 450, TaskShape(2000, 450, 1))
    assert (whole.is_share, whole.gpu_demand, whole.shape()) == (False, 2000, TaskShape(4000, 1000, 2))
    assert (cpu.gpu_demand, cpu.shape()) == (0, TaskShape(1000, 0, 0))
    assert whole.duration is None and share.duration == 60
    member = share.demand("x@1").members[0]
    assert member.share is not None and member.share.gpus == 450 and member.needs.gpus == 0
    assert member.task_id == "x@1"
    assert whole.demand().members[0].needs.gpus == 2000
    assert share.demand(sharing=False).members[0].needs.gpus == 1000


def test_a_missing_column_names_the_file_and_the_column(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("sn,cpu_milli,gpu,model\na,1000,1,T4\n")
    with pytest.raises(TraceError) as raised:
        load_nodes(path)
    assert str(raised.value) == f"{path}: missing column(s) memory_mib"


def test_a_bad_number_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write_tasks(tmp_path / "t.csv", [("ok", 0, 1, 1, 1000, 1000, 10),
                                            ("bad", 1, 1, 1, 1000, 1000, 10)])
    path.write_text(path.read_text().replace("bad,1,1,1,", "bad,1,1,one,"))
    with pytest.raises(TraceError, match=rf"^{path}:3: .*'one'"):
        load_tasks(path)
    nodes = write_nodes(tmp_path / "n.csv", [("a", 1000, 10, 1)])
    nodes.write_text(nodes.read_text().replace("a,1000", "a,lots"))
    with pytest.raises(TraceError, match=rf"^{nodes}:2: "):
        load_nodes(nodes)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=rf"^{tmp_path / 'none.csv'}: No such file or directory$"):
        load_tasks(tmp_path / "none.csv")


TASK_HEADER = ("job_id,submit_time_s,duration_s,num_gpus,num_tasks,gpu_type,user_or_group,status,gpu_milli,"
               "cpu_milli,memory_mib,qos")
GOOD_TASK = "ok,0,10,1,1,,,Running,1000,1000,10,LS"


@pytest.mark.parametrize(("row", "message"), [
    ("t,nan,10,1,1,,,Running,1000,1000,10,LS", "submit_time_s: not a finite number: 'nan'"),
    ("t,inf,10,1,1,,,Running,1000,1000,10,LS", "submit_time_s: not a finite number: 'inf'"),
    ("t,-1,10,1,1,,,Running,1000,1000,10,LS", "submit_time_s: negative: '-1'"),
    ("t,,10,1,1,,,Running,1000,1000,10,LS", "submit_time_s: not a number: ''"),
    ("t,0,-5,1,1,,,Running,1000,1000,10,LS", "duration_s: negative: '-5'"),
    ("t,0,nan,1,1,,,Running,1000,1000,10,LS", "duration_s: not a finite number: 'nan'"),
    ("t,0,10,-1,1,,,Running,1000,1000,10,LS", "num_gpus: negative: '-1'"),
    ("t,0,10,1.5,1,,,Running,1000,1000,10,LS", "num_gpus: not a whole number: '1.5'"),
    ("t,0,10,1,1,,,Running,-300,1000,10,LS", "gpu_milli: negative: '-300'"),
    ("t,0,10,1,1,,,Running,1500,1000,10,LS",
     "gpu_milli: above 1000 (a whole GPU; more GPUs: num_gpus): '1500'"),
    ("t,0,10,0,1,,,Running,0,-1000,10,LS", "cpu_milli: negative: '-1000'"),
    ("t,0,10,0,1,,,Running,0,1000,-10,LS", "memory_mib: negative: '-10'"),
    ("t,0,10,0,1,,,Running,0,nan,10,LS", "cpu_milli: not a whole number: 'nan'"),
    (",0,10,0,1,,,Running,0,1000,10,LS", "job_id: empty: ''"),
    ("ok,5,10,1,1,,,Running,1000,1000,10,LS", "job_id: repeats the one of line 2: 'ok'"),
])
def test_a_bad_task_row_names_the_file_line_and_column(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{TASK_HEADER}\n{GOOD_TASK}\n{row}\n")
    with pytest.raises(TraceError) as raised:
        load_tasks(path)
    assert str(raised.value) == f"{path}:3: {message}"


@pytest.mark.parametrize(("row", "message"), [
    ("b,-1000,10,1,T4", "cpu_milli: negative: '-1000'"),
    ("b,1000,-10,1,T4", "memory_mib: negative: '-10'"),
    ("b,1000,10,-1,T4", "gpu: negative: '-1'"),
    ("b,1000,10,nan,T4", "gpu: not a whole number: 'nan'"),
    ("a,1000,10,1,T4", "sn: repeats the one of line 2: 'a'"),
    (",1000,10,1,T4", "sn: empty: ''"),
])
def test_a_bad_node_row_names_the_file_line_and_column(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "n.csv"
    path.write_text(f"sn,cpu_milli,memory_mib,gpu,model\na,1000,10,1,T4\n{row}\n")
    with pytest.raises(TraceError) as raised:
        load_nodes(path)
    assert str(raised.value) == f"{path}:3: {message}"


def test_edge_values_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{TASK_HEADER}\nz,0,0,1,1,,,Running,1000,0,0,LS\nn,1.5,,0,1,,,Pending,,1000,10,BE\n")
    zero, never = load_tasks(path)
    assert (zero.submit, zero.duration, zero.gpu_demand) == (0.0, 0.0, 1000)
    assert (never.submit, never.duration, never.gpu_milli) == (1.5, None, 0)
