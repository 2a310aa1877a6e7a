"""The offer snapshot (pure): one `AgentSlot` per agent (its offers summed), gathered in an `OfferView`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mesos_gpu.resources import Resources, from_milli

_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class AgentSlot:
    """What one agent offers now: its offers' resources summed, their ids, its attributes.

    `total` is the agent's whole capacity when known (it decides "can never fit" and normalises the
    packing score); `gpu_agent` overrides the guess "has GPUs in total, in the offer, or a GPU model".
    """

    agent_id: str
    hostname: str
    available: Resources
    offer_ids: tuple[str, ...] = ()
    attributes: Mapping[str, str] = dataclasses.field(default_factory=lambda: _NO_ATTRIBUTES)
    total: Resources | None = None
    gpu_agent: bool | None = None

    def has_gpus(self, gpu_model_attribute: str = "gpu_model") -> bool:
        """Whether this is a GPU agent (kept for GPU work by default)."""
        if self.gpu_agent is not None:
            return self.gpu_agent
        if self.total is not None and self.total.scalar_milli("gpus") > 0:
            return True
        return self.available.scalar_milli("gpus") > 0 or gpu_model_attribute in self.attributes

    def gpu_model(self, gpu_model_attribute: str = "gpu_model") -> str | None:
        return self.attributes.get(gpu_model_attribute)


@dataclass(frozen=True)
class OfferView:
    """A snapshot of the offers at hand, one slot per agent.

    `catalog`, when given, lists every agent of the cluster with `available` set to its whole capacity:
    a job that does not fit even there "can never fit".
    """

    slots: tuple[AgentSlot, ...]
    catalog: tuple[AgentSlot, ...] | None = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for slot in self.slots:
            if slot.agent_id in seen:
                raise ValueError(f"agent {slot.agent_id} appears twice in one offer view")
            seen.add(slot.agent_id)

    @classmethod
    def from_mesos_offers(
        cls, offers: Iterable[Mapping[str, Any]], catalog: Sequence[AgentSlot] | None = None
    ) -> OfferView:
        """Group Mesos v1 `Offer` JSON objects by agent; each agent's offers are accepted together.

        Reserved resources (a role other than "*") are left out when unreserved ones are offered too.
        """
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for offer in offers:
            grouped.setdefault(offer["agent_id"]["value"], []).append(offer)
        slots = []
        for agent_id, agent_offers in grouped.items():
            first = agent_offers[0]
            if len(agent_offers) == 1:
                pools = Resources.from_mesos_by_role(first.get("resources", ()))
            else:
                pools = {}
                for offer in agent_offers:
                    for key, part in Resources.from_mesos_by_role(offer.get("resources", ())).items():
                        pools[key] = pools[key] + part if key in pools else part
            if len(pools) == 1:
                available = next(iter(pools.values()))
            else:
                keys = sorted(pools, key=lambda k: k[0] != "*")   # unreserved first
                available = pools[keys[0]] if keys else Resources()
            attributes = first.get("attributes")
            slots.append(AgentSlot(
                agent_id=agent_id,
                hostname=first.get("hostname", ""),
                available=available,
                offer_ids=tuple(offer["id"]["value"] for offer in agent_offers),
                attributes=attributes_from_mesos(attributes) if attributes else _NO_ATTRIBUTES,
            ))
        # The same catalog tuple lets a GangPlanner keep its "can never fit" check across cycles.
        kept = catalog if isinstance(catalog, tuple) or catalog is None else tuple(catalog)
        return cls(tuple(slots), kept)

    def by_agent(self) -> dict[str, AgentSlot]:
        return {slot.agent_id: slot for slot in self.slots}

    def __len__(self) -> int:
        return len(self.slots)


def attribute_value(attribute: Mapping[str, Any]) -> str:
    """A Mesos `Attribute` as the string constraints match: text, `3` or `2.5`, `[1-2,5-6]`, `{a,b}`."""
    kind = attribute.get("type", "TEXT")
    if kind == "SCALAR":
        value = float(attribute["scalar"]["value"])
        return str(from_milli(round(value * 1000)))
    if kind == "RANGES":
        ranges = attribute.get("ranges", {}).get("range", [])
        return "[" + ",".join(f"{r['begin']}-{r['end']}" for r in ranges) + "]"
    if kind == "SET":
        return "{" + ",".join(attribute.get("set", {}).get("item", [])) + "}"
    return str(attribute.get("text", {}).get("value", ""))


def attributes_from_mesos(attributes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """`[{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}]` -> `{"rack": "r1"}`."""
    return {attribute["name"]: attribute_value(attribute) for attribute in attributes}
