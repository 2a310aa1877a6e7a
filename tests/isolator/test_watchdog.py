"""The GPU memory watchdog of capped shares, against the fake NVML's per-process memory declared by
real processes: a task's whole process tree counts, a task within its cap is left alone, one over it is
reported once with used and allowed MiB; the loop calls back on its own."""

from __future__ import annotations

import subprocess
import threading

import pytest

from isolator.fakenvml import parse_fake_spec
from isolator.watchdog import MemoryWatchdog, over_message, process_tree
from tests.waiting import wait_until


@pytest.fixture
def fake(tmp_path):
    nvml = parse_fake_spec(f"1xSimulated-GPU@16384M;processes={tmp_path}")
    nvml.init()
    nvml.declare = lambda pid, mib: (tmp_path / str(pid)).write_text(f"{nvml.gpus[0].uuid} {mib}\n")
    return nvml


@pytest.fixture
def task_tree():
    """A task as the share host starts it: a session leader whose child runs on."""
    leader = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & echo $!; wait"], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)  # fmt: skip
    child = int(leader.stdout.readline())
    yield leader.pid, child
    leader.kill()
    subprocess.run(["kill", "-9", str(child)], check=False)
    leader.wait()
    leader.stdout.close()


def test_process_tree_has_descendants_and_the_process_group():
    table = {10: (1, 10), 11: (10, 10), 12: (11, 10), 13: (1, 10), 20: (1, 20), 21: (20, 20)}
    assert process_tree(10, table) == {10, 11, 12, 13}  # 13 was reparented but kept the group
    assert process_tree(20, table) == {20, 21}


def test_a_task_over_its_cap_is_reported_once_with_used_and_allowed(fake, task_tree):
    leader, child = task_tree
    dog = MemoryWatchdog(fake, 0, on_over=lambda *a: None)
    dog.watch("t", leader, 8192)
    fake.declare(child, 5000)
    fake.declare(leader, 3000)
    assert dog.usage() == {"t": 8000} and dog.check_once() == []
    fake.declare(leader, 4000)  # the tree now holds 9000 MiB
    assert dog.check_once() == [("t", 9000, 8192)]
    assert dog.check_once() == []  # reported once: it is being killed
    assert over_message(9000, 8192) == "GPU memory 9000 MiB used, 8192 MiB allowed (capped share)"


def test_other_processes_do_not_count(fake, task_tree):
    leader, _ = task_tree
    dog = MemoryWatchdog(fake, 0, on_over=lambda *a: None)
    dog.watch("t", leader, 100)
    fake.declare(1, 50000)  # pid 1 is not in the task's tree
    assert dog.check_once() == []


def test_the_loop_calls_back_within_its_interval(fake, task_tree):
    leader, child = task_tree
    seen: list[tuple[str, int, int]] = []
    called = threading.Event()
    dog = MemoryWatchdog(fake, 0, on_over=lambda *a: (seen.append(a), called.set()), interval=0.05)
    dog.watch("t", leader, 1000)
    dog.start()
    try:
        fake.declare(child, 1001)
        wait_until(called.is_set, timeout=5)
        assert seen == [("t", 1001, 1000)]
    finally:
        dog.stop()
