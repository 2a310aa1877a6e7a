"""Run a function on an event loop that another thread owns, and wait for its result (the loop threads
of the API server and of the local cluster; the function runs where the loop's state may be touched)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class CallbackLoop(Protocol):
    """What is needed of the loop: tornado's `IOLoop.add_callback` (thread-safe)."""

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None: ...


def call_in_loop(loop: CallbackLoop, fn: Callable[..., T], *args: Any, timeout: float | None = None,
                 **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` run on `loop`'s thread; its result, or its exception raised here.
    Call it from another thread (on the loop's own thread it would wait for itself)."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)

    loop.add_callback(run)
    return future.result(timeout)
