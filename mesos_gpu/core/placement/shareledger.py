"""The share ledger of one placement cycle (pure): every share host's device, indexed by isolation level and
free thousandths, with exact debit and credit (`mesos_gpu.core.placement.shares` places shares over it).

`ShareLedger` knows, per agent of the cycle, the share hosts the scheduler reported (`ShareHostView`:
fraction and memory given, isolation, accepting, free MIG instances) and the hosts opened tentatively in
this cycle; every debit can be credited back exactly (gang roll-back). The GPU profile in force
(`ShareHostViews.profile`) comes with the views: `gate` (`profilesapply.ProfileGate`) says what it allows,
and hosts that leave the share set are not indexed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mesos_gpu.core.model import Isolation
from mesos_gpu.core.placement.capabilities import caps_of
from mesos_gpu.core.placement.state import AgentState, CapacityLedger
from mesos_gpu.core.profiles import AgentGroup
from mesos_gpu.core.profilesapply import ProfileGate
from mesos_gpu.core.sharing import ShareHostView, ShareNeed

__all__ = ["NEW_HOST_PREFIX", "WHOLE", "Device", "ShareLedger"]

NEW_HOST_PREFIX = "new:"
WHOLE = 1000

class Device:
    """One share host's GPU in the ledger: what its shares take, and where it is indexed."""

    __slots__ = ("accepting", "agent", "agent_id", "device_memory", "host_id", "isolation", "mig_free",
                 "new", "seq", "used", "used_memory")

    def __init__(  # noqa: PLR0917
            self, seq: int, host_id: str, agent: AgentState | None, agent_id: str, isolation: Isolation,
            device_memory: int, used: int = 0, used_memory: int = 0, accepting: bool = True,
            mig_free: tuple[int, ...] = (), new: bool = False) -> None:
        self.seq = seq
        self.host_id = host_id
        self.agent = agent
        self.agent_id = agent_id
        self.isolation = isolation
        self.device_memory = device_memory
        self.used = used
        self.used_memory = used_memory
        self.accepting = accepting
        self.mig_free = mig_free
        self.new = new

    @property
    def free(self) -> int:
        return WHOLE - self.used

    def view(self) -> ShareHostView:
        """As the state machine would report it (tests feed these back as the next cycle's hosts)."""
        return ShareHostView(self.host_id, self.agent_id, self.isolation, self.device_memory, self.used,
                             self.used_memory, self.accepting, self.mig_free)

    def __repr__(self) -> str:
        return f"Device({self.host_id!r}, {self.isolation.value}, used={self.used}, mem={self.used_memory})"




class ShareLedger:
    """Every share host's device of the cycle, indexed by isolation and free thousandths."""

    def __init__(self, capacity: CapacityLedger, hosts: Sequence[ShareHostView] = ()) -> None:
        self.capacity = capacity
        self.devices: dict[int, Device] = {}
        # level -> free thousandths -> devices (usable this cycle: accepting, on a healthy offered agent)
        self.index: dict[Isolation, dict[int, dict[int, Device]]] = {}
        self.mig: dict[int, Device] = {}
        self.free_on: dict[int, int] = {}  # agent index -> thousandths free on its indexed (non-MIG) devices
        self.on_agent: dict[int, dict[int, Device]] = {}  # agent index -> its indexed (non-MIG) devices
        self._opened: dict[str, int] = {}
        self._seq = 0
        self.version = 0
        # agent index -> its hosts empty now that were empty at the start (their GPU returns at the linger)
        self.empty_on: dict[int, int] = {}
        self._empty: dict[int, int] = {}  # seq of a host empty at the start -> its `used` then
        self._unoffered: dict[str, AgentGroup | None] = {}  # agent id -> its group (`group_of`)
        # What the GPU profile in force allows (None: no profile; `ShareHostViews.profile`).
        profile = getattr(hosts, "profile", None)
        self.gate = None if profile is None else ProfileGate(profile, hosts, self._attributes_of)
        drain = frozenset() if self.gate is None else self.gate.draining
        for view in hosts:
            agent = capacity.by_id.get(view.agent_id)
            used = view.used
            if view.isolation is Isolation.MIG and agent is not None:
                layout = caps_of(agent).mig
                used = WHOLE - sum(layout[i].gpus for i in view.mig_free if i < len(layout))
            device = Device(self._next(), view.host_id, agent, view.agent_id, view.isolation,
                            view.device_memory, used, view.used_memory, view.accepting, tuple(view.mig_free))
            self.devices[device.seq] = device
            if agent is not None and view.accepting and not agent.unhealthy and view.host_id not in drain:
                self._index(device)
            if agent is not None and not view.used:
                self._empty[device.seq] = used
                self.empty_on[agent.index] = self.empty_on.get(agent.index, 0) + 1

    def _attributes_of(self, agent_id: str) -> Mapping[str, str] | None:
        agent = self.capacity.by_id.get(agent_id)
        return None if agent is None else agent.attributes

    def group_of(self, agent_id: str, attributes: Mapping[str, str]) -> AgentGroup | None:
        """The group of the profile in force of agent `agent_id`, offered in this cycle or not (None: no
        profile, or no group): `attributes` (the catalog's, `AgentSlot.attributes`) are read when it is not
        offered (the gate knows only the offered agents: a busy agent is often not offered)."""
        gate = self.gate
        if gate is None:
            return None
        if agent_id in self.capacity.by_id:
            return gate.group_of(agent_id)
        if agent_id not in self._unoffered:
            self._unoffered[agent_id] = gate.profile.group_of(attributes)
        return self._unoffered[agent_id]

    def profile_allows(self, agent: AgentState, need: ShareNeed, opening: bool) -> bool:
        """Whether the profile in force lets `need` go to `agent` (`opening`: on a new host there)."""
        return self.gate is None or self.gate.allows(agent.agent_id, need, opening)

    def _count_empty(self, device: Device, was_empty: bool) -> None:
        """Keep `empty_on` as a share lands on (or is given back to) a host empty at the start."""
        start = self._empty.get(device.seq)
        if start is None or device.agent is None:
            return
        change = int(device.used == start and not device.used_memory) - int(was_empty)
        if change:
            index = device.agent.index
            self.empty_on[index] = self.empty_on.get(index, 0) + change

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _index(self, device: Device) -> None:
        if device.isolation is Isolation.MIG:
            if device.mig_free:
                self.mig[device.seq] = device
            return
        by_free = self.index.setdefault(device.isolation, {})
        bucket = by_free.get(device.free)
        if bucket is None:
            by_free[device.free] = {device.seq: device}
        else:
            bucket[device.seq] = device
        index = device.agent.index  # type: ignore[union-attr]  # only devices on offered agents are indexed
        self.free_on[index] = self.free_on.get(index, 0) + device.free
        self.on_agent.setdefault(index, {})[device.seq] = device

    def _unindex(self, device: Device) -> None:
        if device.isolation is Isolation.MIG:
            self.mig.pop(device.seq, None)
            return
        by_free = self.index.get(device.isolation, {})
        bucket = by_free.get(device.free)
        if bucket is not None and bucket.pop(device.seq, None) is not None:
            if not bucket:
                del by_free[device.free]
            index = device.agent.index  # type: ignore[union-attr]
            self.free_on[index] -= device.free
            on = self.on_agent[index]
            del on[device.seq]
            if not on:
                del self.on_agent[index]

    def take(self, device: Device, gpus: int, memory: int, mig_index: int | None) -> None:
        """Give `gpus`/`memory` (or MIG instance `mig_index`) of `device` to a share."""
        self._unindex(device)
        was_empty = self._empty.get(device.seq) == device.used and not device.used_memory
        device.used += gpus
        device.used_memory += memory
        if mig_index is not None:
            device.mig_free = tuple(i for i in device.mig_free if i != mig_index)
        self._index(device)
        self._count_empty(device, was_empty)
        self.version += 1

    def give_back(self, device: Device, gpus: int, memory: int, mig_index: int | None) -> None:
        """Undo `take` exactly."""
        self._unindex(device)
        was_empty = self._empty.get(device.seq) == device.used and not device.used_memory
        device.used -= gpus
        device.used_memory -= memory
        if mig_index is not None:
            device.mig_free = tuple(sorted((*device.mig_free, mig_index)))
        self._index(device)
        self._count_empty(device, was_empty)
        self.version += 1

    def open(self, agent: AgentState, isolation: Isolation, device_memory: int,
             mig_free: tuple[int, ...]) -> Device:
        """A new host (provisional id "new:<agent_id>:<n>") on `agent`, empty."""
        n = self._opened.get(agent.agent_id, 0) + 1
        self._opened[agent.agent_id] = n
        device = Device(self._next(), f"{NEW_HOST_PREFIX}{agent.agent_id}:{n}", agent, agent.agent_id,
                        isolation, device_memory, 0, 0, True, mig_free, new=True)
        self.devices[device.seq] = device
        if self.gate is not None:
            self.gate.opened(agent.agent_id, 1)
        self._index(device)
        self.version += 1
        return device

    def close(self, device: Device) -> None:
        """Forget a host opened in this cycle (the last one opened on its agent)."""
        self._unindex(device)
        del self.devices[device.seq]
        if self.gate is not None:
            self.gate.opened(device.agent_id, -1)
        self._opened[device.agent_id] -= 1
        if not self._opened[device.agent_id]:
            del self._opened[device.agent_id]
        self.version += 1

    def views(self) -> list[ShareHostView]:
        return [device.view() for device in self.devices.values()]

