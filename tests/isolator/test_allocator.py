"""ExclusiveGpuAllocator: exact errors, crash safety, reconciliation with injected probes, and a
Hypothesis state machine that drives several allocator instances on one state file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from isolator.allocator import (
    AllocationError,
    AllocatorLockTimeout,
    AllocatorStateError,
    ContainerProbe,
    ExclusiveGpuAllocator,
    Holder,
    ProcessProbe,
    process_alive,
    process_start_time,
)

GPUS = [f"GPU-{i:04d}" for i in range(4)]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(path):
    with open(path) as handle:
        return handle.read()


class FakeHolderProbe:
    """Holders by pid: alive unless the pid is in `dead`."""

    def __init__(self):
        self.dead = set()

    def alive(self, holder):
        if holder.pid is None:
            return None
        return holder.pid not in self.dead


@pytest.fixture
def state_path(tmp_path):
    return str(tmp_path / "state" / "gpus.json")


def test_allocate_release_in_device_order(state_path):
    allocator = ExclusiveGpuAllocator(state_path, GPUS)
    assert allocator.allocate(2, "a") == ["GPU-0000", "GPU-0001"]
    assert allocator.allocate(1, "b") == ["GPU-0002"]
    assert allocator.available() == ["GPU-0003"]
    assert allocator.release("a") == ["GPU-0000", "GPU-0001"]
    assert allocator.allocate(3, "c") == ["GPU-0000", "GPU-0001", "GPU-0003"]
    assert allocator.allocations() == {"b": ["GPU-0002"], "c": ["GPU-0000", "GPU-0001", "GPU-0003"]}


def test_exact_errors(state_path):
    allocator = ExclusiveGpuAllocator(state_path, GPUS)
    allocator.allocate(3, "a")
    with pytest.raises(AllocationError) as caught:
        allocator.allocate(2, "b")
    assert str(caught.value) == "Requested 2 gpus but only 1 available"
    assert caught.value.http_status == 409
    with pytest.raises(AllocationError, match=r"^'a' already holds 3 gpus \(GPU-0000, GPU-0001, GPU-0002\)$"):
        allocator.allocate(1, "a")
    for bad in (-1, 1.5, True):
        with pytest.raises(AllocationError, match=r"^The 'gpus' resource must be an non-negative integer$"):
            allocator.allocate(bad, "x")
    with pytest.raises(AllocationError, match=r"^GPU-0001 are not available$"):
        allocator.claim(["GPU-0001", "GPU-0003"], "c")
    with pytest.raises(AllocationError, match=r"^GPU-9999 are not available$"):
        allocator.claim(["GPU-9999"], "c")
    with pytest.raises(AllocationError, match=r"^'nobody' holds no gpus$"):
        allocator.attach("nobody", "cid")
    assert allocator.allocations() == {"a": ["GPU-0000", "GPU-0001", "GPU-0002"]}


def test_same_request_again_is_idempotent_and_release_twice_is_fine(state_path):
    allocator = ExclusiveGpuAllocator(state_path, GPUS)
    first = allocator.allocate(2, "a")
    assert allocator.allocate(2, "a") == first
    assert allocator.claim(first, "a") == first
    assert allocator.allocate(0, "b") == []
    assert allocator.release("a") == first
    assert allocator.release("a") == []
    assert allocator.release("never") == []


def test_state_is_shared_between_instances_and_survives_restart(state_path):
    one = ExclusiveGpuAllocator(state_path, GPUS)
    two = ExclusiveGpuAllocator(state_path)  # devices from the file
    one.allocate(2, "a")
    assert two.allocate(2, "b") == ["GPU-0002", "GPU-0003"]
    with pytest.raises(AllocationError, match="Requested 1 gpus but only 0 available"):
        one.allocate(1, "c")
    data = json.loads(_read(state_path))
    assert data["version"] == 1
    assert data["devices"] == GPUS
    assert data["allocations"]["a"]["devices"] == ["GPU-0000", "GPU-0001"]
    assert data["allocations"]["a"]["holder"]["pid"] == os.getpid()


def test_reconcile_frees_dead_holders_and_keeps_live_ones(state_path):
    probe = FakeHolderProbe()
    allocator = ExclusiveGpuAllocator(state_path, GPUS, holder_probes=[probe])
    allocator.allocate(1, "alive", Holder(pid=100))
    allocator.allocate(1, "dead", Holder(pid=200))
    allocator.allocate(1, "unknown", Holder())  # nobody can tell: kept
    probe.dead.add(200)
    report = allocator.reconcile()
    assert report.released == {"dead": ("GPU-0001",)}
    assert report.adopted == {}
    assert allocator.allocations() == {"alive": ["GPU-0000"], "unknown": ["GPU-0002"]}


def test_a_running_container_keeps_a_dead_executors_gpus(state_path):
    running = {"c1": ["GPU-0000"]}
    containers = ContainerProbe(lambda: list(running.items()))
    probe = FakeHolderProbe()
    allocator = ExclusiveGpuAllocator(state_path, GPUS, holder_probes=[probe, containers])
    allocator.allocate(1, "t1", Holder(pid=300))
    allocator.attach("t1", "c1")
    probe.dead.add(300)
    assert allocator.reconcile().released == {}
    running.clear()
    assert allocator.reconcile().released == {"t1": ("GPU-0000",)}


def test_reconcile_adopts_devices_of_unknown_running_containers(state_path):
    running = {"orphan": ["GPU-0002", "GPU-0003"], "elsewhere": ["GPU-other"]}
    containers = ContainerProbe(lambda: list(running.items()))
    allocator = ExclusiveGpuAllocator(
        state_path, GPUS, holder_probes=[ProcessProbe(), containers], usage_probes=[containers]
    )
    allocator.allocate(1, "t1")
    report = allocator.reconcile()
    assert report.adopted == {"adopted:orphan": ("GPU-0002", "GPU-0003")}
    assert allocator.available() == ["GPU-0001"]
    running.pop("orphan")
    assert allocator.reconcile().released == {"adopted:orphan": ("GPU-0002", "GPU-0003")}
    assert allocator.available() == ["GPU-0001", "GPU-0002", "GPU-0003"]


def test_process_probe_detects_exit_and_pid_reuse():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = process_start_time(child.pid)
        assert start is not None
        assert ProcessProbe().alive(Holder(pid=child.pid, pid_start=start)) is True
        assert ProcessProbe().alive(Holder(pid=child.pid, pid_start=start + 1)) is False  # reused pid
        child.kill()
        child.wait()
        assert process_alive(child.pid) is False
        assert ProcessProbe().alive(Holder(pid=child.pid, pid_start=start)) is False
        assert ProcessProbe().alive(Holder()) is None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_zombie_counts_as_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):
            with open(f"/proc/{child.pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert process_alive(child.pid) is False  # exited, not yet reaped
    finally:
        child.wait()


def test_corrupt_state_is_a_clear_error(state_path):
    os.makedirs(os.path.dirname(state_path))
    with open(state_path, "w") as handle:
        handle.write('{"version": 1, "devices": [], "allocations": {"a": {"devices": ["X"]}, ')
    with pytest.raises(AllocatorStateError, match=r"is unreadable .*delete the file"):
        ExclusiveGpuAllocator(state_path, GPUS).allocate(1, "a")
    with open(state_path, "w") as handle:
        allocations = {"a": {"devices": ["X"]}, "b": {"devices": ["X"]}}
        json.dump({"version": 1, "devices": ["X"], "allocations": allocations}, handle)
    with pytest.raises(AllocatorStateError, match="X is held by both 'a' and 'b'"):
        ExclusiveGpuAllocator(state_path).allocations()


def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AllocatorStateError, match="cannot open the GPU allocator lock"):
        ExclusiveGpuAllocator(str(blocker / "gpus.json"), GPUS).allocate(1, "a")


def _run_child(code, state_path):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), state_path],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_lock_timeout_while_another_process_holds_the_lock(state_path):
    child = _run_child(
        """
        import sys, time
        from isolator.allocator import ExclusiveGpuAllocator
        allocator = ExclusiveGpuAllocator(sys.argv[1], ["GPU-0"])
        with allocator._locked():
            print("locked", flush=True)
            time.sleep(30)
        """,
        state_path,
    )
    try:
        assert child.stdout.readline() == b"locked\n"
        with pytest.raises(AllocatorLockTimeout, match=r"held for more than 0\.3s"):
            ExclusiveGpuAllocator(state_path, GPUS, lock_timeout=0.3).allocate(1, "a")
        child.send_signal(signal.SIGKILL)  # the kernel drops the lock with the process
        child.wait()
        assert ExclusiveGpuAllocator(state_path, GPUS, lock_timeout=5).allocate(1, "a") == ["GPU-0000"]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


def test_sigkill_between_write_and_rename_leaves_the_old_state(state_path):
    ExclusiveGpuAllocator(state_path, GPUS).allocate(1, "before")
    before = _read(state_path)
    child = _run_child(
        """
        import os, signal, sys
        from isolator.allocator import ExclusiveGpuAllocator
        allocator = ExclusiveGpuAllocator(sys.argv[1], ["GPU-0000", "GPU-0001", "GPU-0002", "GPU-0003"])
        allocator._before_replace = lambda: os.kill(os.getpid(), signal.SIGKILL)
        allocator.allocate(2, "crashing")
        """,
        state_path,
    )
    child.wait(30)
    child.stdout.close()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert _read(state_path) == before
    leftovers = [n for n in os.listdir(os.path.dirname(state_path)) if n.endswith(".tmp")]
    assert len(leftovers) == 1  # the killed writer's temp file...
    allocator = ExclusiveGpuAllocator(state_path, GPUS, lock_timeout=5)
    assert allocator.allocate(2, "after") == ["GPU-0001", "GPU-0002"]
    assert [n for n in os.listdir(os.path.dirname(state_path)) if n.endswith(".tmp")] == []  # ...is swept


def test_sigkill_after_allocating_is_reclaimed_by_reconcile(state_path):
    child = _run_child(
        """
        import os, signal, sys
        from isolator.allocator import ExclusiveGpuAllocator
        allocator = ExclusiveGpuAllocator(sys.argv[1], ["GPU-0000", "GPU-0001", "GPU-0002", "GPU-0003"])
        allocator.allocate(3, "victim")
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        state_path,
    )
    child.wait(30)
    child.stdout.close()
    child.stderr.close()
    allocator = ExclusiveGpuAllocator(state_path, GPUS)
    assert allocator.allocations() == {"victim": ["GPU-0000", "GPU-0001", "GPU-0002"]}
    assert allocator.reconcile().released == {"victim": ("GPU-0000", "GPU-0001", "GPU-0002")}
    assert allocator.available() == GPUS


# ---- the state machine -----------------------------------------------------------------------------

OWNERS = st.sampled_from([f"owner-{i}" for i in range(6)])


class AllocatorMachine(RuleBasedStateMachine):
    """Two allocator instances (as two processes would) on one file, against a plain model."""

    def __init__(self):
        super().__init__()
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="alloc-sm-")
        self.path = os.path.join(self.dir, "gpus.json")
        self.probe = FakeHolderProbe()
        self.instances = [
            ExclusiveGpuAllocator(self.path, GPUS, holder_probes=[self.probe]),
            ExclusiveGpuAllocator(self.path, GPUS, holder_probes=[self.probe]),
        ]
        self.model = {}  # owner -> list of uuids
        self.pids = {}  # owner -> pid
        self.next_pid = 1000

    def teardown(self):
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def _free(self):
        taken = {u for devices in self.model.values() for u in devices}
        return [u for u in GPUS if u not in taken]

    @rule(which=st.integers(0, 1), owner=OWNERS, count=st.integers(0, 5))
    def allocate(self, which, owner, count):
        self.next_pid += 1
        holder = Holder(pid=self.next_pid)
        free = self._free()
        try:
            got = self.instances[which].allocate(count, owner, holder)
        except AllocationError as exc:
            if owner in self.model:
                assert len(self.model[owner]) != count
                assert "already holds" in str(exc)
            else:
                assert count > len(free)
                assert str(exc) == f"Requested {count} gpus but only {len(free)} available"
            return
        if owner in self.model:
            assert got == self.model[owner]
        else:
            assert count <= len(free)
            assert got == free[:count]
            if count:
                self.model[owner] = got
        if owner in self.model:
            self.pids[owner] = self.next_pid  # the holder moves to the latest process

    @rule(which=st.integers(0, 1), owner=OWNERS)
    def release(self, which, owner):
        assert self.instances[which].release(owner) == self.model.pop(owner, [])
        self.pids.pop(owner, None)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def kill_holder(self, data):
        owner = data.draw(st.sampled_from(sorted(self.model)))
        self.probe.dead.add(self.pids[owner])

    @rule(which=st.integers(0, 1))
    def reconcile(self, which):
        report = self.instances[which].reconcile()
        expected = {o: tuple(d) for o, d in self.model.items() if self.pids[o] in self.probe.dead}
        assert dict(report.released) == expected
        for owner in expected:
            del self.model[owner]
            del self.pids[owner]

    @invariant()
    def matches_model_and_never_shares(self):
        allocations = self.instances[0].allocations()
        assert allocations == self.model
        flat = [u for devices in allocations.values() for u in devices]
        assert len(flat) == len(set(flat))
        assert sorted(self.instances[1].available() + flat) == sorted(GPUS)


TestAllocatorMachine = AllocatorMachine.TestCase
TestAllocatorMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
