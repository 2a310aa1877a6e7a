"""The offer snapshot (pure): one `AgentSlot` per agent (its offers summed), gathered in an `OfferView`;
and `OfferLabels`, how the offered resources are labelled, which a task's resources must repeat."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mesos_gpu.core.resources import Resources, from_milli
from mesos_gpu.core.values import ports_to_ranges
from mesos_gpu.core.wire import resource_labels, resources_from_mesos_by_role, resources_to_mesos

_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
#: The scalars a task usually asks for, in the order Mesos lists them (`wire.mesos_order`); ports come next.
_AGENT_SCALAR_ORDER = ("cpus", "mem", "gpus", "disk")
_AGENT_SCALARS = frozenset(_AGENT_SCALAR_ORDER)


def _ports_entry(allocation: str | None, ports: Sequence[int]) -> dict[str, Any]:
    """The unreserved RANGES entry of port numbers `ports`."""
    items = [{"begin": begin, "end": end} for begin, end in ports_to_ranges(ports)]
    entry: dict[str, Any] = {"name": "ports", "type": "RANGES", "ranges": {"range": items}, "role": "*"}
    if allocation is not None:
        entry["allocation_info"] = {"role": allocation}
    return entry


@functools.lru_cache(maxsize=8192)
def _one_port_entry(allocation: str | None, port: int) -> dict[str, Any]:
    """`_ports_entry` of one port, made once and shared by the TaskInfos that take it (never mutated, as
    the scalar entries they share)."""
    return _ports_entry(allocation, (port,))


@functools.lru_cache(maxsize=4096)
def _shared_scalar_entries(allocation: str | None, request: Resources) -> tuple[dict[str, Any], ...] | None:
    """The unreserved SCALAR entries of `request`, made once per (allocation role, request): TaskInfos are
    values, never changed once built (`mesos_gpu.core.tasktemplates.TaskInfoTemplate`), so tasks alike
    share these entries. None when the request has ranges or sets, or scalars the agent does not name."""
    key = request.scalar_key()
    if key is None or not _AGENT_SCALARS.issuperset(name for name, _ in key):
        return None
    return _scalar_entries(dict(key), allocation)


def _scalar_entries(milli: Mapping[str, int], allocation: str | None) -> tuple[dict[str, Any], ...]:
    """The unreserved SCALAR entries of `milli` (thousandths by name) in the agent's order."""
    entries = []
    for name in _AGENT_SCALAR_ORDER:
        value = milli.get(name, 0)
        if value:
            entry: dict[str, Any] = {"name": name, "type": "SCALAR", "scalar": {"value": value / 1000},
                                     "role": "*"}
            if allocation is not None:
                entry["allocation_info"] = {"role": allocation}
            entries.append(entry)
    return tuple(entries)


@dataclass(frozen=True)
class AgentSlot:
    """What one agent offers now: its offers' resources summed, their ids, its attributes.

    `total` is the agent's whole capacity when known (it decides "can never fit" and normalises the
    packing score); `gpu_agent` overrides the guess "has GPUs in total, in the offer, or a GPU model".
    `offered`: the offers' Mesos `Resource` entries as received (the reservation details of `labels`).
    """

    agent_id: str
    hostname: str
    available: Resources
    offer_ids: tuple[str, ...] = ()
    attributes: Mapping[str, str] = dataclasses.field(default_factory=lambda: _NO_ATTRIBUTES)
    total: Resources | None = None
    gpu_agent: bool | None = None
    offered: Sequence[Mapping[str, Any]] = dataclasses.field(default=(), compare=False, repr=False)

    def labels(self) -> OfferLabels:
        """How the resources placement takes from this agent (`available`) are labelled in its offers."""
        return OfferLabels(self.available.role, self.available.allocation_role, self.offered)

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
            offered: Sequence[Mapping[str, Any]]
            if len(agent_offers) == 1:
                offered = first.get("resources", ())
                pools = resources_from_mesos_by_role(offered)
            else:
                pools = {}
                offered = tuple(entry for offer in agent_offers for entry in offer.get("resources", ()))
                for offer in agent_offers:
                    for key, part in resources_from_mesos_by_role(offer.get("resources", ())).items():
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
                offered=offered,
            ))
        # The same catalog tuple lets a GangPlanner keep its "can never fit" check across cycles.
        kept = catalog if isinstance(catalog, tuple) or catalog is None else tuple(catalog)
        return cls(tuple(slots), kept)

    def by_agent(self) -> dict[str, AgentSlot]:
        return {slot.agent_id: slot for slot in self.slots}

    def __len__(self) -> int:
        return len(self.slots)


class OfferLabels:
    """How an agent's offered resources are labelled: the `role` (the reservation's, "*" unreserved) and
    `allocation_role` (`allocation_info.role`) that `Resources` keeps, and, by resource name, the
    reservation details it does not (`reservation` in the pre-refinement format, `reservations` in
    the refinement one), as the offer had them. A task must use its offer's resources labelled alike,
    or the master refuses the launch (TASK_ERROR, "Invalid resources").

    Example::

        labels = OfferLabels("tf", None, offer["resources"])
        labels.to_mesos(Resources.of(cpus=1, mem=32))   # entries with the offer's role and reservation
    """

    __slots__ = ("_reserved", "allocation_role", "offered", "role")

    def __init__(self, role: str = "*", allocation_role: str | None = None,
                 offered: Sequence[Mapping[str, Any]] = ()) -> None:
        self.role = role
        self.allocation_role = allocation_role
        self.offered = offered
        self._reserved: dict[str, dict[str, Any]] | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        return self.role, self.allocation_role

    def reservation_fields(self, name: str) -> Mapping[str, Any]:
        """The offer's `reservation` / `reservations` fields of resource `name` (empty when unreserved)."""
        return self._reserved_map().get(name, _NO_ATTRIBUTES)

    def _reserved_map(self) -> dict[str, dict[str, Any]]:
        if self._reserved is None:
            self._reserved = self._find_reserved()
        return self._reserved

    def _find_reserved(self) -> dict[str, dict[str, Any]]:
        """Each name's reservation details in this pool, where they are one: a name whose entries carry
        different reservations (or some none) gets none copied, since one TaskInfo entry cannot claim
        from several reservations; the role label alone then stands for it."""
        if self.role == "*":
            return {}
        seen: dict[str, list[dict[str, Any]]] = {}
        for entry in self.offered:
            name = entry.get("name")
            if not isinstance(name, str) or resource_labels(entry) != self.key:
                continue    # not a resource, or another pool's entry
            fields = {field: entry[field] for field in ("reservation", "reservations") if field in entry}
            seen.setdefault(name, []).append(fields)
        return {name: all_fields[0] for name, all_fields in seen.items()
                if all_fields[0] and all(fields == all_fields[0] for fields in all_fields)}

    def to_mesos(self, resources: Resources) -> list[dict[str, Any]]:
        """`resources` as Mesos `Resource` JSON labelled as the offer's: the codec's role and
        allocation_info, plus each name's reservation details (`reservations` replaces `role`)."""
        if (resources.role, resources.allocation_role) != self.key:
            resources = resources.with_labels(role=self.role, allocation_role=self.allocation_role)
        entries = resources_to_mesos(resources)
        if self.role == "*":
            return entries
        for entry in entries:
            fields = self.reservation_fields(entry["name"])
            if "reservations" in fields:
                del entry["role"]
            entry.update(fields)
        return entries

    def task_resources(self, request: Resources, ports: Sequence[int]) -> list[dict[str, Any]]:
        """A task's resources as its TaskInfo carries them: `request` plus `ports`, labelled as the offer's;
        the same JSON as `self.to_mesos(request.plus_ports(ports))` (`TaskPlacement.to_mesos`), made
        directly for the common task (unreserved, whole scalars of the agent's names, no ranges or sets):
        one offer cycle makes thousands of them."""
        shared = None
        if self.role == "*":
            allocation = self.allocation_role if self.allocation_role is not None else request.allocation_role
            shared = _shared_scalar_entries(allocation, request)
        if shared is None:
            resources = request.plus_ports(ports)
            if resources.role != self.role or resources.allocation_role != self.allocation_role:
                resources = resources.with_labels(role=self.role, allocation_role=self.allocation_role)
            return self.to_mesos(resources)
        if not ports:
            return list(shared)
        if len(ports) == 1 and type(port := ports[0]) is int and port >= 0:
            return [*shared, _one_port_entry(allocation, port)]     # the common task: one port
        return [*shared, _ports_entry(allocation, ports)]

    def __eq__(self, other: object) -> bool:
        """Alike labels: the same role and allocation role, and the same reservation details."""
        if not isinstance(other, OfferLabels):
            return NotImplemented
        return self.key == other.key and (self.role == "*" or self._reserved_map() == other._reserved_map())

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"OfferLabels({self.role!r}, {self.allocation_role!r})"


def catalog_from_master_state(state: Mapping[str, Any], gpu_model_attribute: str = "gpu_model") -> tuple[
    AgentSlot, ...
]:
    """Every active agent of a master's `/master/slaves` (or `/state`) answer, with its whole capacity
    offered and as its total: the catalog that tells "can never fit" from "waits". Resources come in
    /state's flat form (`{"cpus": 8.0, "gpus": 2.0, "ports": "[31000-32000]"}`), attributes flat or as
    a Mesos `Attribute` list. An agent whose resources cannot be read is left out."""
    slots = []
    for agent in state.get("slaves") or ():
        if not isinstance(agent, Mapping) or agent.get("active") is False or "id" not in agent:
            continue
        try:
            total = resources_from_state(agent.get("resources") or {})
        except ValueError:
            continue
        raw = agent.get("attributes") or {}
        if isinstance(raw, Mapping):
            attributes = {str(k): text for k, v in raw.items() if (text := _flat_attribute(v)) is not None}
        else:
            attributes = attributes_from_mesos(raw)
        slots.append(AgentSlot(
            agent_id=str(agent["id"]), hostname=str(agent.get("hostname", "")), available=total,
            attributes=attributes, total=total,
            gpu_agent=total.scalar_milli("gpus") > 0 or gpu_model_attribute in attributes,
        ))
    return tuple(slots)


def _flat_attribute(value: Any) -> str | None:
    """A /state attribute value as constraints match it (`2.5`, `3`, text, `[1-2,5-6]`, `{a,b}`; Mesos'
    JSON writes ranges and sets with ", " between items, offers' attributes as `attribute_value` does not),
    None if it is none of these."""
    if isinstance(value, str):
        return value.replace(", ", ",") if value[:1] in "[{" else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(from_milli(round(float(value) * 1000)))
    return None


def resources_from_state(flat: Mapping[str, Any]) -> Resources:
    """/state's flat resources (`{"cpus": 8.0, "ports": "[31000-32000]", "zones": "{a, b}"}`)."""
    parts = []
    for name, value in flat.items():
        if isinstance(value, bool):
            raise ValueError(f"resource {name!r} is not a quantity: {value!r}")
        if isinstance(value, int | float):
            if value:
                parts.append(f"{name}:{value}")
        elif isinstance(value, str) and value.strip("[]{} "):
            parts.append(f"{name}:{value.replace(' ', '')}")
    return Resources.parse(";".join(parts))


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
