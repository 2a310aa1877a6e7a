"""Notices that this process did not run for a while (SIGSTOP, a paused VM, a long stall), so that a
leader asks ZooKeeper before its next call to the master.

A leader paused past its ZooKeeper session wakes still believing it leads: kazoo learns of the expiry
only when its own thread runs again, and the worker thread may act on a queued event first (the soak
saw a woken leader's ACKNOWLEDGE reach the master a few ms before kazoo's SUSPENDED). `StallGuard`
beats every `interval` seconds on its own thread; a gap above `threshold` between beats is a stall.
`in_doubt()` is true during a stall not yet verified, whichever thread runs first after the wake:
it reads the last beat before the stall count, and a beat counts a stall before it moves the last beat.

Example::

    guard = StallGuard(threshold=1.0).start()
    if guard.in_doubt():
        seen = guard.stalls
        if election.verify_leadership():
            guard.verified(seen)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

STALL_THRESHOLD_S = 1.0
BEAT_INTERVAL_S = 0.1


class StallGuard:
    """Counts stalls of this process (see the module docstring); `verified(n)` clears the first `n`."""

    def __init__(self, threshold: float = STALL_THRESHOLD_S, interval: float = BEAT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.interval = interval
        self._clock = clock
        self._last = clock()
        self.stalls = 0
        self._verified = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> StallGuard:
        self._thread = threading.Thread(target=self._run, name="scheduler-stall-guard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        """One beat: a gap above the threshold since the last one counts a stall (before the beat moves)."""
        now = self._clock()
        if now - self._last > self.threshold:
            self.stalls += 1
        self._last = now

    def in_doubt(self) -> bool:
        """A stall happened that was not verified since, or is happening (no beat for too long)."""
        last = self._last  # first: a beat that moved it has counted its stall already
        return self.stalls != self._verified or self._clock() - last > self.threshold

    def verified(self, seen: int) -> None:
        """Leadership was confirmed after the first `seen` stalls (read `stalls` before asking)."""
        self._verified = max(self._verified, seen)
