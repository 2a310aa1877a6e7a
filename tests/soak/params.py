"""The soak's parameters: the short run of `make test` and the long run of `make soak`.

Chosen by `MESOS_GPU_SOAK` ("short", the default, or "long"); `MESOS_GPU_SOAK_SEED` fixes the seed
(else one is drawn and printed, so a failing run can be repeated), `MESOS_GPU_SOAK_KILLS` and
`MESOS_GPU_SOAK_MINUTES` override the long run's leader kills and its bound on the fault phase, and
`MESOS_GPU_SOAK_SESSION` the schedulers' ZooKeeper session (default 3 s: the soak's ZooKeeper ticks
every second, so it grants 2-20 s; the session bounds takeover after a kill -9).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass

FAULTS = ("kill", "kill_restarting", "pause", "zookeeper", "master", "task")


@dataclass(frozen=True)
class SoakParams:
    """`counts`: how many of each fault (FAULTS); the fault phase ends when they are done or after
    `fault_seconds`, whichever comes first; `drain_seconds` bounds the wait for every job to end."""

    name: str
    seed: int
    counts: Mapping[str, int]
    zookeeper_outage: tuple[float, float]  # seconds, drawn per outage
    fault_gap: tuple[float, float]  # seconds of calm between two faults
    fault_seconds: float
    drain_seconds: float
    submit_interval: float
    session_timeout: float = 3.0  # the schedulers' ZooKeeper session (MESOS_GPU_ZK_SESSION_TIMEOUT)

    def schedule(self) -> list[str]:
        """The faults in a seeded order; leader kills spread out, the first fault a plain kill."""
        faults = [kind for kind in FAULTS for _ in range(self.counts.get(kind, 0))]
        random.Random(self.seed).shuffle(faults)
        if "kill" in faults:
            faults.remove("kill")
            faults.insert(0, "kill")
        return faults

    @property
    def leader_kills(self) -> int:
        return self.counts.get("kill", 0) + self.counts.get("kill_restarting", 0)


def soak_params(env: Mapping[str, str] | None = None) -> SoakParams:
    env = os.environ if env is None else env
    seed = int(env.get("MESOS_GPU_SOAK_SEED") or random.SystemRandom().randrange(1 << 30))
    session = float(env.get("MESOS_GPU_SOAK_SESSION") or 3.0)  # 2-20 ticks of ZOOKEEPER_TICK_MS
    if env.get("MESOS_GPU_SOAK", "short").strip().lower() == "long":
        kills = int(env.get("MESOS_GPU_SOAK_KILLS") or 100)
        minutes = float(env.get("MESOS_GPU_SOAK_MINUTES") or 60)
        counts = {"kill": kills - kills // 5, "kill_restarting": kills // 5, "pause": max(2, kills // 12),
                  "zookeeper": max(2, kills // 15), "master": max(2, kills // 12), "task": max(4, kills // 4)}
        return SoakParams("long", seed, counts, (10.0, 30.0), (1.0, 4.0), minutes * 60, 300.0, 0.4, session)
    counts = {"kill": 1, "kill_restarting": 1, "pause": 1, "zookeeper": 1, "master": 1, "task": 2}
    return SoakParams("short", seed, counts, (5.0, 8.0), (0.5, 1.5), 150.0, 90.0, 0.5, session)


#: The soak's ZooKeeper tick (ms): 1 s, so sessions of 2 s and more are granted (ZooKeeper's default
#: 2 s tick grants 4 s at least).
ZOOKEEPER_TICK_MS = 1000
