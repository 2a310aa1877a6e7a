"""Group commit: concurrent callers' items written together, one batch at a time, by one thread.

Each `submit(item)` queues the item and returns a `Future`. The writer thread takes everything queued
(up to `max_batch`), calls `commit(batch)` once, and completes each future with its own answer. While a
batch is being written, new items queue up and form the next batch, so under load a batch carries as
many items as arrived during one write, and with one caller a batch is that caller's item alone (no
waiting for company: the latency of a lone submit is unchanged).

The runtime uses it for submits: 32 clients posting jobs share one ZooKeeper transaction and one
event to the state machine per batch instead of one each.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")


class GroupCommitClosedError(RuntimeError):
    """Submitted after `close()`."""


class GroupCommit(Generic[I, R]):
    """See the module docstring. `commit(batch)` returns one answer per item, in order: a result, or
    an exception to raise to that item's caller. If `commit` itself raises, every item of the batch
    gets that exception: so a failure that belongs to one item (a record that cannot be encoded, an id
    taken) must be that item's answer, never raised, or one bad item fails every caller of its batch
    (`JobStore.create_many` answers so, whatever one item raises). A batch is not retried item by item:
    a commit that raised may have written some of it (the runtime's commit writes, then posts)."""

    def __init__(self, commit: Callable[[list[I]], Sequence[R | BaseException]], *, max_batch: int = 128,
                 name: str = "group-commit") -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._commit = commit
        self._max_batch = max_batch
        self._queue: deque[tuple[I, Future[R]]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self.batches = 0  # batches written (for tests and metrics)
        self.items = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: I) -> Future[R]:
        """Queue `item`; the future completes once its batch was committed."""
        future: Future[R] = Future()
        with self._ready:
            if self._closed:
                raise GroupCommitClosedError("the group commit is closed")
            self._queue.append((item, future))
            self._ready.notify()
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread; later submits raise GroupCommitClosedError."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout)

    def _take(self) -> list[tuple[I, Future[R]]] | None:
        """The next batch: what is queued (up to `max_batch`), without the items whose callers gave up
        (a cancelled future is never written); None once closed and drained."""
        while True:
            with self._ready:
                while not self._queue:
                    if self._closed:
                        return None
                    self._ready.wait()
                count = min(len(self._queue), self._max_batch)
                taken = [self._queue.popleft() for _ in range(count)]
            batch = [(item, future) for item, future in taken if future.set_running_or_notify_cancel()]
            if batch:
                return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._commit_batch(batch)
            except BaseException:  # never let the writer die: every later submit would wait for ever
                log.exception("group commit writer: unexpected error")
                for _, future in batch:
                    _settle(future, RuntimeError("the group commit failed; see the scheduler log"))

    def _commit_batch(self, batch: list[tuple[I, Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        answers: list[R | BaseException]
        try:
            answers = list(self._commit([item for item, _ in batch]))
            if len(answers) != len(batch):
                raise RuntimeError(f"commit answered {len(answers)} items of {len(batch)}")
        except Exception as exc:  # handed to every caller of the batch, each its own copy
            log.exception("group commit of %d item(s) failed", len(batch))
            answers = [_copy(exc) for _ in batch]
        for (_, future), answer in zip(batch, answers, strict=True):
            _settle(future, answer)


def _settle(future: Future[Any], answer: Any) -> None:
    """Complete `future` with `answer` (an exception or a result), unless it is already done."""
    if future.done():
        return
    try:
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
    except InvalidStateError:  # completed meanwhile
        pass


def _copy(exc: Exception) -> Exception:
    """A copy of `exc` for one caller (one instance raised in many threads grows one traceback)."""
    try:
        return copy.copy(exc)
    except Exception:
        return exc
