"""What the profile in force changes (pure): tenants' terms, which share hosts drain, and what is overdue.

- `effective_tenants(config, now)`: the tenants' terms with the profile in force's `tenants` overrides
  (each replaces that tenant's terms; the others are kept); the config itself when no profile is in force.
- `draining(views, group_of)`: which share hosts leave the share set under the profile's groups: on each
  agent, a host whose level the group no longer offers, and beyond the group's `share_gpus` the hosts
  with the least granted (ties: the larger id), so the fullest keep their tasks. Closing hosts (a
  preemption closed them) are already leaving: they are not counted, and so never push a live host
  beyond the cap. A draining host takes no
  new share; its running shares finish, it empties, lingers and exits, and its GPU returns to Mesos for
  whole-GPU work (`mesos_gpu.core.placement.shares` reads this through `ShareHostViews.profile`).
- `overdue(views, tasks, draining, deadline, now)`: the share tasks to kill, with their note, once the
  profile's drain deadline has passed.
- `profile_view(config, now)`: the current and next profile as `GET /v1/cluster` shows them.
- `active_profile(config, now)`: the same with the tenants' terms the current profile overrides, as
  `GET /v1/tenants` shows it.
- `ProfileGate`: the above for one placement cycle (which agent may take which share, the cap counted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mesos_gpu.core.profiles import AgentGroup, Profile, ProfilesConfig

if TYPE_CHECKING:
    from mesos_gpu.core.placement.state import CapacityLedger
    from mesos_gpu.core.sharing import ShareHostView, ShareNeed
    from mesos_gpu.core.tenancy import TenantsConfig

__all__ = [
    "ProfileGate", "active_profile", "drain_note", "draining", "effective_tenants", "overdue", "profile_view",
]


def effective_tenants(config: TenantsConfig | None, now: float) -> TenantsConfig | None:
    """`config` with the tenant terms of the profile in force at `now` (see the module docstring)."""
    if config is None or config.profiles is None:
        return config
    profile = config.profiles.at(now).profile
    if profile is None or not profile.tenants:
        return config
    return dataclasses.replace(config, tenants={**config.tenants, **profile.tenants})


def draining(views: Iterable[ShareHostView],
             group_of: Callable[[str], AgentGroup | None]) -> frozenset[str]:
    """The ids of the share hosts that leave the share set (see the module docstring). `group_of` gives an
    agent's group by agent id (None: no limit there, nothing drains)."""
    by_agent: dict[str, list[ShareHostView]] = {}
    for view in views:
        if view.closing:    # already leaving (a preemption closed it): neither drained nor counted
            continue
        by_agent.setdefault(view.agent_id, []).append(view)
    out: set[str] = set()
    for agent_id, hosts in by_agent.items():
        group = group_of(agent_id)
        if group is None:
            continue
        offered = [host for host in hosts if host.isolation in group.isolation]
        out.update(host.host_id for host in hosts if host.isolation not in group.isolation)
        if group.share_gpus is not None and len(offered) > group.share_gpus:
            offered.sort(key=lambda host: (-host.used, host.host_id))
            out.update(host.host_id for host in offered[group.share_gpus:])
    return frozenset(out)


def drain_note(profile: str, deadline: float) -> str:
    """The note a share task killed at the drain deadline carries in its state."""
    when = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds")
    return (f"killed by the GPU profile switch to {profile!r}: its share host's GPU left the share set "
            f"and the drain deadline ({when}) passed")


def overdue(tasks: Mapping[str, str], draining_hosts: frozenset[str], profile: Profile | None,
            deadline: float | None, now: float) -> list[tuple[str, str]]:
    """(task id, note) of each share task (`tasks`: task id -> its host id) still on a draining host once
    `deadline` has passed at `now`; none before it, or without a deadline or a profile."""
    if profile is None or deadline is None or now < deadline:
        return []
    note = drain_note(profile.name, deadline)
    return [(task_id, note) for task_id, host_id in sorted(tasks.items()) if host_id in draining_hosts]


def _iso(instant: float | None, config: ProfilesConfig) -> str | None:
    if instant is None:
        return None
    return datetime.fromtimestamp(instant, config.zone).isoformat(timespec="seconds")


def profile_view(config: ProfilesConfig | None, now: float,
                 hosts: Sequence[ShareHostView] = (),
                 group_of: Callable[[str], AgentGroup | None] | None = None) -> dict[str, Any] | None:
    """The current and next profile at `now` (None when no profiles are configured): names, when the
    current one began and the next begins (ISO 8601 in the schedule's time zone, and POSIX seconds), the
    drain deadline, and (given the hosts and the agents' groups) the share hosts draining now."""
    if config is None:
        return None
    at = config.at(now)
    current = at.profile
    drain = [] if current is None or group_of is None else sorted(draining(hosts, group_of))
    return {
        "time_zone": config.time_zone,
        "current": None if current is None else current.name,
        "since": _iso(at.since, config), "since_epoch": at.since,
        "next": at.next_profile,
        "next_at": _iso(at.next_at, config), "next_at_epoch": at.next_at,
        "drain_deadline": _iso(at.drain_deadline, config), "drain_deadline_epoch": at.drain_deadline,
        "draining_share_hosts": drain,
    }


def active_profile(config: ProfilesConfig | None, now: float) -> dict[str, Any] | None:
    """`profile_view` without the share hosts, with `tenants`: the terms the current profile gives each
    tenant it overrides (tenant -> terms; empty without a current profile). None: no profiles."""
    shown = profile_view(config, now)
    if shown is None or config is None:
        return None
    shown.pop("draining_share_hosts")
    current = config.at(now).profile
    overrides = {} if current is None else current.tenants
    shown["tenants"] = {name: overrides[name].to_dict() for name in sorted(overrides)}
    return shown


class ProfileGate:
    """What the profile in force allows placement in one cycle (`mesos_gpu.core.placement.shares`):
    agent id -> its group (from `attributes_of`: None for an agent not offered, no limit), the share hosts
    on each agent (known and opened in the cycle), and the hosts that drain."""

    def __init__(self, profile: Profile, views: Sequence[ShareHostView],
                 attributes_of: Callable[[str], Mapping[str, str] | None]) -> None:
        self.profile = profile
        self._attributes_of = attributes_of
        self._groups: dict[str, AgentGroup | None] = {}
        self.hosts_on: dict[str, int] = {}
        self._refused: dict[ShareNeed, tuple[tuple[int, int], int]] = {}
        for view in views:
            self.hosts_on[view.agent_id] = self.hosts_on.get(view.agent_id, 0) + 1
        self.draining = draining(views, self.group_of)

    def group_of(self, agent_id: str) -> AgentGroup | None:
        if agent_id not in self._groups:
            attributes = self._attributes_of(agent_id)
            self._groups[agent_id] = None if attributes is None else self.profile.group_of(attributes)
        return self._groups[agent_id]

    def allows(self, agent_id: str, need: ShareNeed, opening: bool) -> bool:
        """Whether `need` may go to agent `agent_id` (`opening`: on a new share host there)."""
        group = self.group_of(agent_id)
        if group is None:
            return True
        if not group.offers(need.isolation, need.gpus_min, need.gpus):
            return False
        cap = group.share_gpus
        return not opening or cap is None or self.hosts_on.get(agent_id, 0) < cap

    def opened(self, agent_id: str, change: int) -> None:
        """A host opened (+1) or closed again (-1) on `agent_id` in this cycle."""
        self.hosts_on[agent_id] = self.hosts_on.get(agent_id, 0) + change

    def refused(self, capacity: CapacityLedger, need: ShareNeed) -> int:
        """How many agents of the cycle may not open a host for `need`; counted once per need while the
        ledger of `capacity` is unchanged (a long queue of shares that wait)."""
        memo = self._refused.get(need)
        version = (capacity.version, sum(self.hosts_on.values()))
        if memo is not None and memo[0] == version:
            return memo[1]
        count = sum(1 for agent in capacity.agents if not self.allows(agent.agent_id, need, True))
        self._refused[need] = (version, count)
        return count

    def reason(self, need: ShareNeed) -> str:
        """The wait reason of an agent the profile refuses `need`."""
        return (f"gpu profile {self.profile.name!r}: no new share host for a {need.isolation.value} "
                f"share of {need.gpus / 1000:g} gpu here")
