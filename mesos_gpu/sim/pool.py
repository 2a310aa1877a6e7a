"""Worker processes for the simulator's runs that Ctrl-C stops at once.

The workers ignore SIGINT (a Ctrl-C at a terminal reaches the whole process group): only the parent
handles it. When the parent leaves the pool on an exception (KeyboardInterrupt among them), the runs not
started are cancelled and the workers still running are terminated, instead of waiting for every queued
run as `ProcessPoolExecutor`'s own exit does.

Example::

    with worker_pool(2) as pool:
        results = list(pool.map(run, work))
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any


def _start(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def worker_pool(workers: int, initializer: Callable[..., None] | None = None,
                initargs: tuple[Any, ...] = ()) -> Iterator[ProcessPoolExecutor]:
    """A process pool of `workers` whose workers ignore SIGINT; on an exception inside the block its
    pending runs are cancelled and its workers terminated before the exception goes on."""
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(workers, initializer=_start, initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in set(multiprocessing.active_children()) - before:
            child.terminate()
        raise
    pool.shutdown()
