"""What `core.profilereclaim` keeps between offer cycles and ticks (pure, in memory; `ShareHosts.reclaim`).

Each agent's last offer cycle (when, the whole GPUs it offered free, its share hosts then), since when this
leader is connected, and the whole-GPU tasks stopped for the switch in force (rebuilt from the records'
`drained_for` after a failover or at a new switch).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mesos_gpu.core.profiles import Profile, ProfilesConfig

__all__ = ["Offered", "ReclaimTrack"]


class Offered(NamedTuple):
    """An agent's last offer cycle: when, its whole GPUs offered free, and the share hosts there then."""

    at: float
    free: int
    hosts: int
    ours: int = 0   # whole GPUs our tasks held there then (fewer now: some of ours ended since, freeing GPUs)


@dataclass
class ReclaimTrack:
    """What the tick needs between offer cycles (in memory; rebuilt after a failover from the records)."""

    offered: dict[str, Offered] = field(default_factory=dict)
    connected_since: float | None = None
    switch: float | None = None     # the switch `stopped` belongs to
    # task id -> (agent id, whole GPUs, when it was first seen ended; None: still active)
    stopped: dict[str, tuple[str, int, float | None]] = field(default_factory=dict)
    # The switch fresh offers were asked for (a REVIVE), when, and whether to SUPPRESS again after it.
    revived_for: float | None = None
    revived_at: float = 0.0
    suppress_after: bool = False
    _previous: dict[float, Profile | None] = field(default_factory=dict)

    def note_offers(self, offers: Sequence[Mapping[str, Any]], hosts: Mapping[str, int], now: float,
                    active: Container[str] = (), ours: Mapping[str, int] | None = None) -> None:
        """An offer cycle's offers (before anything is placed): each agent's whole GPUs free, its share
        hosts (`hosts`: agent id -> hosts not ended) and the whole GPUs our tasks hold there (`ours`); a
        stopped task not `active` (task ids) ended by now (`ended`)."""
        self.ended(active, now)
        if self.connected_since is None:    # offers come only while connected
            self.connected_since = now
        gpus: dict[str, float] = {}
        for offer in offers:
            agent = offer.get("agent_id", {}).get("value")
            if agent is None:
                continue
            total = sum(float(r.get("scalar", {}).get("value", 0)) for r in offer.get("resources", ())
                        if r.get("name") == "gpus")
            gpus[str(agent)] = gpus.get(str(agent), 0.0) + total
        for agent, total in gpus.items():
            self.offered[agent] = Offered(now, int(total + 1e-9), hosts.get(agent, 0),
                                          ours.get(agent, 0) if ours is not None else 0)

    def ended(self, active: Container[str], now: float) -> None:
        """Note `now` as when each stopped task not in `active` was first seen ended: an offer of its agent
        at or after that shows its GPU free (an offer made before Mesos recovered it is not told apart)."""
        for task_id, (agent, gpus, ended) in list(self.stopped.items()):
            if ended is None and task_id not in active:
                self.stopped[task_id] = (agent, gpus, now)

    def previous(self, config: ProfilesConfig, since: float) -> Profile | None:
        """The profile in force just before the switch at `since`."""
        if since not in self._previous:
            self._previous = {since: config.at(since - 1.0).profile}
        return self._previous[since]
