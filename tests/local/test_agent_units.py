"""Unit tests of the agent's pure-ish parts: status update streams (clock given), GPU slots (Hypothesis),
sandbox file reads, wait-status texts, command argv."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.wire import kill_grace_seconds
from mesos_gpu.local.agent.command_executor import command_argv, describe_wait_status
from mesos_gpu.local.agent.gpus import GpuAllocationError, GpuSlots, simulated_devices, visible_devices_env
from mesos_gpu.local.agent.runners import wait_status_from_returncode
from mesos_gpu.local.agent.sandbox import FileReadError, SandboxFiles, create_sandbox
from mesos_gpu.local.agent.status_updates import StatusUpdateStreams


class ManualClock:
    """Timers driven by hand: `advance(dt)` runs what falls due, in order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: dict[int, tuple[float, object, tuple]] = {}
        self._next = 0

    def call_later(self, delay, callback, *args):
        self._next += 1
        self._timers[self._next] = (self.now + delay, callback, args)
        return self._next

    def remove_timeout(self, handle) -> None:
        self._timers.pop(handle, None)

    def advance(self, dt: float) -> None:
        end = self.now + dt
        while True:
            due = [(t, h) for h, (t, _, _) in self._timers.items() if t <= end]
            if not due:
                break
            when, handle = min(due)
            _, callback, args = self._timers.pop(handle)
            self.now = when
            callback(*args)
        self.now = end


def status(task: str, state: str, uid: str) -> dict:
    return {"task_id": {"value": task}, "state": state, "uuid": uid}


def make_streams(initial=10.0, maximum=600.0):
    clock = ManualClock()
    sent: list[tuple[float, str, str]] = []
    streams = StatusUpdateStreams(
        lambda fw, st: sent.append((clock.now, st["task_id"]["value"], st["uuid"])), clock, initial, maximum
    )
    return streams, clock, sent


def test_item32_retry_backoff_doubles_and_caps_until_ack() -> None:
    streams, clock, sent = make_streams(initial=10.0, maximum=40.0)
    streams.update("F", status("t", "TASK_RUNNING", "u1"))
    clock.advance(200)
    assert [t for t, _, _ in sent] == [0, 10, 30, 70, 110, 150, 190]  # 10, 20, 40, 40, ...
    assert {u for _, _, u in sent} == {"u1"}
    assert streams.acknowledge("F", "t", "u1")
    clock.advance(1000)
    assert len(sent) == 7


def test_item25_per_task_stream_order_and_independent_tasks() -> None:
    streams, clock, sent = make_streams()
    streams.update("F", status("a", "TASK_STARTING", "a1"))
    streams.update("F", status("a", "TASK_RUNNING", "a2"))
    streams.update("F", status("a", "TASK_FINISHED", "a3"))
    streams.update("F", status("b", "TASK_STARTING", "b1"))
    assert [u for _, _, u in sent] == ["a1", "b1"]
    assert not streams.acknowledge("F", "a", "a2")  # not the head: ignored
    assert streams.acknowledge("F", "a", "a1")
    assert [u for _, _, u in sent] == ["a1", "b1", "a2"]
    clock.advance(5)
    assert streams.acknowledge("F", "a", "a2")
    clock.advance(9.9)  # a3 was sent at t=5 (first retry due at 15); b1's first retry at 10
    assert [(t, u) for t, _, u in sent][3:] == [(5, "a3"), (10, "b1")]
    clock.advance(0.2)
    assert [(t, u) for t, _, u in sent][5:] == [(15, "a3")]
    assert streams.acknowledge("F", "a", "a3")
    assert streams.pending("F", "a") == []
    streams.drop_framework("F")
    clock.advance(10_000)
    assert len(sent) == 6


def test_paused_streams_send_on_resume() -> None:
    streams, clock, sent = make_streams()
    streams.set_paused(True)
    streams.update("F", status("a", "TASK_RUNNING", "a1"))
    clock.advance(100)
    assert sent == []
    streams.set_paused(False)
    assert [u for _, _, u in sent] == ["a1"]


def test_a_failing_master_never_breaks_the_stream() -> None:
    clock = ManualClock()
    calls = []

    def send(fw, st):
        calls.append(st["uuid"])
        raise RuntimeError("master down")

    streams = StatusUpdateStreams(send, clock, 1.0, 1.0)
    streams.update("F", status("a", "TASK_RUNNING", "a1"))
    clock.advance(3)
    assert calls == ["a1"] * 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 4)), max_size=40))
def test_item37_gpu_slots_never_share_an_index(ops) -> None:
    slots = GpuSlots(simulated_devices(4))
    for allocate, holder, count in ops:
        if allocate:
            free = slots.available
            try:
                granted = slots.allocate(f"h{holder}", count)
            except GpuAllocationError as exc:
                assert count > free and str(exc) == f"Requested {count} gpus but only {free} available"
            else:
                assert len(granted) == len(set(granted)) == count
        else:
            slots.release(f"h{holder}")
        slots.check_invariants()
    for holder in range(6):
        slots.release(f"h{holder}")
    assert slots.available == 4


def test_gpu_fractional_request_refused_with_mesos_text() -> None:
    with pytest.raises(GpuAllocationError, match="The 'gpus' resource must be an unsigned integer"):
        GpuSlots(simulated_devices(2)).allocate("x", 0.5)
    assert visible_devices_env([1, 3], real=False) == {
        "CUDA_VISIBLE_DEVICES": "1,3",
        "NVIDIA_VISIBLE_DEVICES": "1,3",
    }
    assert visible_devices_env([], real=True)["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_release_container_frees_its_own_and_its_tasks_gpus_only() -> None:
    slots = GpuSlots(simulated_devices(4))
    slots.allocate("c1", 1)
    slots.allocate("c1/t1", 1)
    slots.allocate("c10", 1)
    slots.release_container("c1")
    assert slots.holders() == {"c10": [2]} and slots.available == 3
    slots.check_invariants()


def test_sandbox_read_offsets_lengths_and_escapes(tmp_path: Path) -> None:
    sandbox = create_sandbox(tmp_path / "agent", "F", "E", "C1")
    sandbox.stdout.write_bytes(b"x" * 70_000)
    (tmp_path / "secret").write_text("no")
    os.symlink(tmp_path / "secret", sandbox.directory / "link")
    files = SandboxFiles()
    files.attach(sandbox)
    virtual = "/frameworks/F/executors/E/runs/latest"
    assert files.read(f"{virtual}/stdout", "-1", None) == {"data": "", "offset": 70_000}
    assert files.read(f"{virtual}/stdout", None, None) == {
        "data": "",
        "offset": 70_000,
    }  # offset defaults to -1
    assert len(files.read(f"{virtual}/stdout", "0", None)["data"]) == 65536  # 16 pages at most
    assert len(files.read(f"{virtual}/stdout", "0", "100000")["data"]) == 65536
    assert files.read(f"{virtual}/stdout", "69998", "10") == {"data": "xx", "offset": 69998}
    assert files.read(f"{virtual}/stdout", "80000", "10") == {"data": "", "offset": 70_000}
    for bad in (f"{virtual}/link", f"{virtual}/../../../../../secret", str(tmp_path / "secret")):
        with pytest.raises(FileReadError) as err:
            files.read(bad, "0", None)
        assert err.value.status == 404
    with pytest.raises(FileReadError, match="Negative offset provided: -2"):
        files.read(f"{virtual}/stdout", "-2", None)
    files.detach(sandbox)
    with pytest.raises(FileReadError):
        files.read(f"{virtual}/stdout", "0", None)
    second = create_sandbox(tmp_path / "agent", "F", "E", "C2")
    assert sandbox.latest.resolve() == second.directory.resolve()


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (0, "exited with status 0"),
        (3 << 8, "exited with status 3"),
        (signal.SIGKILL, "terminated with signal Killed"),
        (signal.SIGTERM, "terminated with signal Terminated"),
        (wait_status_from_returncode(-signal.SIGSEGV), "terminated with signal Segmentation fault"),
        (wait_status_from_returncode(2), "exited with status 2"),
    ],
)
def test_item46_wait_status_texts(status: int, text: str) -> None:
    assert describe_wait_status(status) == text


def test_command_argv_and_grace() -> None:
    assert command_argv({"value": "echo hi"}) == (["/bin/sh", "-c", "echo hi"], None)
    assert command_argv({"value": "/bin/echo", "shell": False, "arguments": ["echo", "a"]}) == (
        ["echo", "a"],
        "/bin/echo",
    )
    assert kill_grace_seconds({"grace_period": {"nanoseconds": 1_500_000_000}}, 3.0) == 1.5
    assert kill_grace_seconds(None, 3.0) == 3.0
