"""Leadership bookkeeping shared by the election implementations (standard library only).

`Leadership` holds the is-leader flag and delivers `on_elected` / `on_lost` on one callback thread,
in order, so every `on_elected` is followed by exactly one `on_lost` whatever the backend.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Leadership:
    """The is-leader flag of one campaign, and the thread that runs its callbacks.

    `elected()` and `lost(reason)` flip the flag atomically and queue the matching callback; they
    return whether anything changed, so a backend may call them as often as it likes. Callbacks run
    on the thread `leader-callbacks-<identifier>`; an exception in one is logged and ignored.

    Example::

        leadership = Leadership("10.0.0.5:8080", on_elected, on_lost)
        leadership.elected()              # True: on_elected() is queued
        leadership.lost("resigned")       # True: on_lost("resigned") is queued
        leadership.close()                # runs what is queued, then stops the thread
    """

    def __init__(
        self, identifier: str, on_elected: Callable[[], None], on_lost: Callable[[str], None]
    ) -> None:
        self.identifier = identifier
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._leader = False
        self._closed = False
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"leader-callbacks-{identifier}", daemon=True
        )
        self._thread.start()

    @property
    def is_leader(self) -> bool:
        """True from `elected()` until `lost()`."""
        return self._leader

    def elected(self) -> bool:
        """Become leader (queue `on_elected`); False if already leader or closed."""
        with self._lock:
            if self._leader or self._closed:
                return False
            self._leader = True
            self._queue.put(self._on_elected)
        log.info("%s is now the leader", self.identifier)
        return True

    def lost(self, reason: str) -> bool:
        """Stop being leader (queue `on_lost(reason)`); False if not leader."""
        with self._lock:
            if not self._leader:
                return False
            self._leader = False
            on_lost = self._on_lost
            self._queue.put(lambda: on_lost(reason))
        log.warning("%s lost the leadership: %s", self.identifier, reason)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Lose leadership if held (reason "resigned"), run the queued callbacks, stop the thread.

        Waits up to `timeout` for the callbacks, unless called from a callback itself.
        """
        self.lost("resigned")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                item()
            except Exception:
                log.exception("leader election callback of %s raised; ignored", self.identifier)
