"""A one-line progress bar on stderr for the simulator's long runs (no third-party dependency).

Example::

    bar = ProgressBar("fill", enabled=None)     # None: only when stderr is a terminal
    result = fill(nodes, tasks, cases, progress=bar)
    bar.close()
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """`bar(done, total)` redraws `label [#####.....] done/total  pct  elapsed  ~left` in place; `close()`
    ends the line. Silent unless `enabled` (None: when `stream` is a terminal)."""

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.clock = clock
        self.started = clock()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        self.stream.write("\r" + self.line(done, total))
        self.stream.flush()
        self.drawn = True

    def line(self, done: int, total: int) -> str:
        """The bar's text for `done` of `total`."""
        fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
        filled = round(WIDTH * fraction)
        elapsed = self.clock() - self.started
        left = f"  ~{_duration(elapsed * (1 - fraction) / fraction)} left" if 0 < fraction < 1 else ""
        return (f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} {fraction:4.0%}  "
                f"{_duration(elapsed)}{left}")

    def close(self) -> None:
        """End the bar's line (nothing when it never drew)."""
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
