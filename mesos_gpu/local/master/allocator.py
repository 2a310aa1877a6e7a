"""The master's allocator (Mesos' `HierarchicalDRFAllocator` in miniature): which framework is offered
each agent's free resources, offer lifetime and rescinds, DECLINE filters with `refuse_seconds`,
SUPPRESS and REVIVE of roles, and the suppressed roles each SUBSCRIBE sets. Runs on the master's IOLoop
thread.

It reads the master's frameworks and agents and sends OFFERS / RESCIND through `Master.send`; the offers
themselves live here (`Allocator.offers`)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from mesos_gpu.core import wire
from mesos_gpu.core.resources import Resources
from mesos_gpu.local import protocol as p
from mesos_gpu.local.master.records import AgentRecord, FrameworkRecord, OfferFilter, OfferRecord
from mesos_gpu.local.protocol import value

if TYPE_CHECKING:
    from mesos_gpu.local.master.master import Master


def refuse_seconds(filters: Any) -> float:
    """`Filters.refuse_seconds` as the master applies it: default 5 s, NaN or garbage -> default, capped at
    a year."""
    refuse = p.DEFAULT_REFUSE_SECONDS
    if isinstance(filters, dict) and "refuse_seconds" in filters:
        try:
            refuse = float(filters["refuse_seconds"])
        except (TypeError, ValueError):
            refuse = p.DEFAULT_REFUSE_SECONDS
    if math.isnan(refuse):
        refuse = p.DEFAULT_REFUSE_SECONDS
    return min(refuse, p.MAX_REFUSE_SECONDS)


def offerable(resources: Resources) -> bool:
    """Mesos offers an agent only when at least MIN_CPUS or MIN_MEM of it is free."""
    return resources.scalar("cpus") >= p.MIN_CPUS or resources.scalar("mem") >= p.MIN_MEM


def dominant_share(framework: FrameworkRecord, totals: Resources) -> float:
    used = framework.used()
    shares = [used.scalar(n) / totals.scalar(n) for n in ("cpus", "mem", "gpus") if totals.scalar(n) > 0]
    return max(shares, default=0.0)


class Allocator:
    """Offers, filters and suppression for one `Master`; `stop()` cancels its timers."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.config = master.config
        self.loop = master.loop
        self.offers: dict[str, OfferRecord] = {}
        self._offer_counter = 0
        self._pending = False
        self._timer: object | None = None
        self._stopped = False
        self._schedule_periodic()

    def stop(self) -> None:
        self._stopped = True
        self._cancel(self._timer)
        for offer in list(self.offers.values()):
            self._cancel(offer.timer)

    def _cancel(self, handle: object | None) -> None:
        if handle is not None:
            self.loop.remove_timeout(handle)

    # ------------------------------------------------------------------ when to allocate
    def request(self) -> None:
        """Allocate once more, soon (coalesced: many requests in one IOLoop turn allocate once)."""
        if self._pending or self._stopped:
            return
        self._pending = True
        self.loop.add_callback(self._allocate_soon)

    def _allocate_soon(self) -> None:
        self._pending = False
        self.allocate()

    def _schedule_periodic(self) -> None:
        if self._stopped:
            return
        self._timer = self.loop.call_later(self.config.allocation_interval, self._periodic)

    def _periodic(self) -> None:
        self.allocate()
        self._schedule_periodic()

    # ------------------------------------------------------------------ the allocation
    def allocate(self) -> None:
        """Offer each agent's available resources to one eligible framework (lowest dominant share)."""
        master = self.master
        if not master.is_leader or self._stopped:
            return
        candidates = [
            f for f in master.frameworks.values() if f.connected and f.stream is not None and not f.suppressed
        ]
        if not candidates:
            return
        totals = Resources()
        for agent in master.agents.values():
            totals = totals + agent.total
        shares = {f.framework_id: dominant_share(f, totals) for f in candidates}
        batches: dict[str, list[dict[str, Any]]] = {}
        now = time.monotonic()
        for agent in sorted(master.agents.values(), key=lambda a: a.agent_id):
            available = agent.available()
            if not offerable(available):
                continue
            eligible = [f for f in candidates if self._eligible(f, agent, available, now)]
            if not eligible:
                continue
            chosen = min(eligible, key=lambda f: (shares[f.framework_id], f.registered_time))
            offer = self._make_offer(chosen, agent, available)
            batches.setdefault(chosen.framework_id, []).append(offer)
        for framework_id, offers in batches.items():
            master.send(master.frameworks[framework_id], {"type": "OFFERS", "offers": {"offers": offers}})

    def _eligible(
        self, framework: FrameworkRecord, agent: AgentRecord, available: Resources, now: float
    ) -> bool:
        """GPU agents only for GPU_RESOURCES frameworks (when filtering), and no live refusal covering
        everything the agent has free (an expired refusal is dropped here)."""
        if agent.has_gpus and self.config.filter_gpu_resources and not framework.has("GPU_RESOURCES"):
            return False
        refusals = framework.filters.get(agent.agent_id)
        if not refusals:
            return True
        live = [refused for refused in refusals if refused.expires > now]
        if len(live) < len(refusals):
            if live:
                framework.filters[agent.agent_id] = live
            else:
                del framework.filters[agent.agent_id]
        return not any(refused.resources.contains(available) for refused in live)

    def _make_offer(
        self, framework: FrameworkRecord, agent: AgentRecord, resources: Resources
    ) -> dict[str, Any]:
        offer_id = p.offer_id_for(self.master.master_id, self._offer_counter)
        self._offer_counter += 1
        record = OfferRecord(offer_id, framework.framework_id, agent.agent_id, resources)
        if self.config.offer_timeout is not None:
            record.timer = self.loop.call_later(self.config.offer_timeout, self._offer_timed_out, offer_id)
        self.offers[offer_id] = record
        framework.offers.add(offer_id)
        agent.offered = agent.offered + resources
        return offer_json(record, framework, agent)

    def _offer_timed_out(self, offer_id: str) -> None:
        offer = self.offers.get(offer_id)
        if offer is not None:
            offer.timer = None
            self.remove_offer(offer_id, rescind=True)
            self.request()

    # ------------------------------------------------------------------ offers going away
    def remove_offer(self, offer_id: str, rescind: bool) -> OfferRecord | None:
        """Forget an offer and give its resources back to the agent; RESCIND it when `rescind`."""
        offer = self.offers.pop(offer_id, None)
        if offer is None:
            return None
        self._cancel(offer.timer)
        agent = self.master.agents.get(offer.agent_id)
        if agent is not None:
            agent.offered = agent.offered.subtract_or_zero(offer.resources)
        framework = self.master.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.discard(offer_id)
            if rescind:
                self.master.send(framework, {"type": "RESCIND", "rescind": {"offer_id": value(offer_id)}})
        return offer

    def remove_framework_offers(self, framework: FrameworkRecord) -> None:
        """The framework failed over, disconnected or went: its offers go without RESCIND."""
        for offer_id in list(framework.offers):
            self.remove_offer(offer_id, rescind=False)

    def rescind_agent_offers(self, agent_id: str) -> None:
        for offer_id in [o.offer_id for o in self.offers.values() if o.agent_id == agent_id]:
            self.remove_offer(offer_id, rescind=True)

    # ------------------------------------------------------------------ DECLINE / REVIVE / SUPPRESS
    def decline(self, framework: FrameworkRecord, offer_ids: list[str], filters: Any) -> None:
        for offer_id in offer_ids:
            offer = self.offers.get(offer_id)
            if offer is None or offer.framework_id != framework.framework_id:
                continue
            self.remove_offer(offer_id, rescind=False)
            self.add_filter(framework, offer.agent_id, offer.resources, filters)
        self.request()

    def add_filter(
        self, framework: FrameworkRecord, agent_id: str, resources: Resources, filters: Any
    ) -> None:
        """Refuse `resources` of the agent for `refuse_seconds`, beside the agent's other live refusals: as
        Mesos' `RefusedOfferFilter`s, each hides what it contains until its own end (the agent is filtered
        while one of them contains everything it has free), never merged into one that would hide more,
        or longer. As Mesos' `HierarchicalAllocatorProcess::expire`, the end of a refusal only drops it:
        the agent is offered again by the next allocation (the periodic batch, every
        `allocation_interval`), together with every other agent whose refusal has ended by then, not
        alone at that instant."""
        refuse = refuse_seconds(filters)
        if refuse <= 0 or resources.is_empty():
            return
        framework.filters.setdefault(agent_id, []).append(OfferFilter(resources, time.monotonic() + refuse))

    def revive(self, framework: FrameworkRecord, roles: set[str]) -> None:
        """Offers again for `roles` (filters are the framework's, whatever the role: all go)."""
        framework.filters.clear()
        framework.suppressed_roles -= roles
        self.request()

    def suppress(self, framework: FrameworkRecord, roles: set[str]) -> None:
        framework.suppressed_roles |= roles

    def set_suppressed(self, framework: FrameworkRecord, roles: set[str]) -> None:
        """A (re)subscription or UPDATE_FRAMEWORK: exactly `roles` are suppressed from now on."""
        framework.suppressed_roles = set(roles)

    def deactivate(self, framework: FrameworkRecord) -> None:
        """The framework disconnected: its offers go (no RESCIND) and, as Mesos', its filters."""
        self.remove_framework_offers(framework)
        framework.filters.clear()


def offer_json(offer: OfferRecord, framework: FrameworkRecord, agent: AgentRecord) -> dict[str, Any]:
    """The v1 `Offer` of an OFFERS event (allocation_info and role-allocated resources for MULTI_ROLE)."""
    multi_role = framework.has("MULTI_ROLE")
    role = framework.role
    ip, port = agent.link.endpoint()
    out: dict[str, Any] = {
        "id": value(offer.offer_id),
        "framework_id": value(framework.framework_id),
        "agent_id": value(agent.agent_id),
        "hostname": agent.hostname,
        "url": {
            "scheme": "http",
            "address": {"hostname": agent.hostname, "ip": ip, "port": int(port)},
            "path": "/slave(1)",
        },
        "resources": wire.resources_to_mesos(
            offer.resources.with_labels(allocation_role=role) if multi_role else offer.resources
        ),
        "attributes": list(agent.info.get("attributes", [])),
        "executor_ids": [value(k[1]) for k in agent.executors if k[0] == framework.framework_id],
    }
    if multi_role:
        out["allocation_info"] = {"role": role}
    return out
