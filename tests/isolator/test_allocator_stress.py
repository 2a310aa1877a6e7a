"""Eight processes allocate and release GPUs at random on one state file; two are SIGKILLed midway.
No GPU is ever held by two owners (checked live by the workers' O_EXCL ledger), and at the end the
state holds nothing but what the killed workers left, which reconcile() frees."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from isolator.allocator import ExclusiveGpuAllocator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPUS = [f"GPU-{i:04d}" for i in range(6)]
WORKERS = 8
SECONDS = 3.0


def test_eight_processes_never_share_a_gpu_even_when_killed(tmp_path):
    state = str(tmp_path / "gpus.json")
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    logs = [open(tmp_path / f"w{i}.log", "w+") for i in range(WORKERS)]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.isolator.allocator_worker",
                state,
                str(ledger),
                f"w{i}",
                str(SECONDS),
                str(i),
                *GPUS,
            ],
            cwd=REPO,
            stdout=logs[i],
            stderr=subprocess.STDOUT,
        )
        for i in range(WORKERS)
    ]
    victims = random.Random(7).sample(range(WORKERS), 2)
    try:
        for victim in victims:
            # Kill while it works: after its first grant, at a random moment (maybe inside the lock).
            _wait_for(lambda v=victim: "holding" in _text(logs[v]), timeout=20)
            time.sleep(random.random() * 0.3)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
        for i, proc in enumerate(procs):
            proc.wait(SECONDS + 30)
            if i not in victims:
                assert proc.returncode == 0, f"worker {i} failed:\n{_text(logs[i])[-2000:]}"
        for victim in victims:
            assert procs[victim].returncode == -signal.SIGKILL
            assert "DOUBLE ALLOCATION" not in _text(logs[victim])
        survivors = [_text(logs[i]) for i in range(WORKERS) if i not in victims]
        granted = sum(int(t.rsplit("granted=", 1)[1].split()[0]) for t in survivors)
        assert granted >= 50, f"only {granted} grants: the test did not exercise the allocator"
        with open(state) as handle:
            data = json.load(handle)  # never torn
        leftover_owners = set(data["allocations"])
        victim_names = {f"w{v}" for v in victims}
        assert {owner.split(":")[0] for owner in leftover_owners} <= victim_names
        allocator = ExclusiveGpuAllocator(state, GPUS)
        released = allocator.reconcile().released
        assert set(released) == leftover_owners
        assert allocator.allocations() == {}
        assert allocator.available() == GPUS
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def _text(log) -> str:
    log.flush()
    with open(log.name) as handle:
        return handle.read()


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")
