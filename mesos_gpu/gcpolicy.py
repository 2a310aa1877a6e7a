"""Garbage-collector settings for the long-running scheduler process.

One placement cycle keeps tens of thousands of small objects alive (an outcome per pending job, a
launch per placement). With CPython's default thresholds, (700, 10, 10), that many survivors make the
collector run full collections of the whole heap every few OFFERS events: on a 2-core machine each one
paused the offer path for 30 to 60 ms, half the decision time (`benchmarks/placement.py` prints the
figure under both settings). The scheduler process therefore collects the young generation every
50,000 net allocations instead of 700, and freezes what it loaded at start (modules, settings), which no
collection needs to scan again. Cyclic garbage is still collected, only less often.

`MESOS_GPU_GC_THRESHOLDS="700,10,10"` restores CPython's defaults.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

#: gen0, gen1, gen2 thresholds of `gc.set_threshold` for the scheduler process.
SERVICE_THRESHOLDS = (50_000, 20, 10)
ENV_THRESHOLDS = "MESOS_GPU_GC_THRESHOLDS"


def parse_thresholds(text: str) -> tuple[int, int, int]:
    """`"50000,20,10"` -> (50000, 20, 10); ValueError naming what is wrong."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError(f"{ENV_THRESHOLDS} must be three non-negative integers like 50000,20,10, "
                         f"got {text!r}")
    first, second, third = (int(part) for part in parts)
    return first, second, third


def configure(env: Mapping[str, str] | None = None, *, freeze: bool = True) -> tuple[int, int, int]:
    """Apply the scheduler's thresholds (or `MESOS_GPU_GC_THRESHOLDS` from `env`) and, with `freeze`,
    move every object alive now out of future collections. Returns the thresholds applied (a bad
    `MESOS_GPU_GC_THRESHOLDS` is logged and the service thresholds are used)."""
    raw = (env or {}).get(ENV_THRESHOLDS, "").strip()
    thresholds = SERVICE_THRESHOLDS
    if raw:
        try:
            thresholds = parse_thresholds(raw)
        except ValueError as error:
            log.warning("%s; using %s", error, ",".join(map(str, SERVICE_THRESHOLDS)))
    gc.set_threshold(*thresholds)
    if freeze:
        gc.collect()
        gc.freeze()
    return thresholds
