"""Worker processes for the simulator's runs that Ctrl-C stops at once.

The workers ignore SIGINT (a Ctrl-C at a terminal reaches the whole process group): only the parent
handles it. When the parent leaves the pool on an exception (KeyboardInterrupt among them), the workers
still running are terminated and the runs not started cancelled, instead of waiting for every queued run
as `ProcessPoolExecutor`'s own exit does; then the pool's manager thread is joined before the exception
goes on.

That join matters: with `shutdown(wait=False)` the manager thread was still closing the pool's pipes
(it sees the terminated workers and tears the pool down) while the parent printed "interrupted" and
exited, and at exit `concurrent.futures` wakes every manager thread by writing to its wake-up pipe
without the pool's lock (CPython 3.11 `_python_exit`): when the manager thread closed that pipe between
the check and the write, the exit printed `OSError: [Errno 9] Bad file descriptor` after
"interrupted". The workers are already dead when the thread is joined, so the join is short.

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
    workers are terminated, its pending runs cancelled and its manager thread joined (nothing of the
    pool runs any more) before the exception goes on."""
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(workers, initializer=_start, initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        for child in set(multiprocessing.active_children()) - before:
            child.terminate()
        # The workers are gone: the manager thread marks the pool broken, closes its queues and pipes
        # and ends; wait for it, so that nothing of the pool writes or closes after this.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
