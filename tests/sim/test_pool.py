"""`sim.pool.worker_pool`: when the block raises, nothing of the pool runs any more once the exception
leaves it (the manager thread that closed the pool's pipes while the parent was exiting printed
`OSError: [Errno 9] Bad file descriptor` after "interrupted": tests/sim/test_interrupt.py)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures.process import _ExecutorManagerThread

import pytest

from mesos_gpu.sim.pool import worker_pool


def _slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _managers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, _ExecutorManagerThread) and t.is_alive()]


def test_an_exception_in_the_block_leaves_no_worker_and_no_manager_thread() -> None:
    before = set(multiprocessing.active_children())
    with pytest.raises(KeyboardInterrupt), worker_pool(2) as pool:
        futures = [pool.submit(_slow, 30.0) for _ in range(6)]
        deadline = time.monotonic() + 30
        while len(set(multiprocessing.active_children()) - before) < 2:   # the workers are up
            assert time.monotonic() < deadline
            time.sleep(0.01)
        raise KeyboardInterrupt
    assert _managers() == []
    assert set(multiprocessing.active_children()) - before == set()
    assert all(future.cancelled() or future.done() for future in futures)


def test_a_block_that_ends_normally_gets_its_results() -> None:
    with worker_pool(2) as pool:
        assert list(pool.map(_slow, [0.0, 0.01, 0.0])) == [0.0, 0.01, 0.0]
    assert _managers() == []
