"""Resources (pure): an immutable Mesos-style value type with fixed-point scalars and port ranges.
The scalar and range arithmetic underneath is `mesos_gpu.core.values` (re-exported here).

Scalars are stored as integers of thousandths, as Mesos does (`Value::Scalar` keeps three decimals), so
`a + b - b == a` holds exactly however often the arithmetic is repeated.

Example::

    offer = Resources.parse("cpus:8;mem:32768;gpus:2;ports:[31000-31999]")
    task = Resources.of(cpus=2, mem=4096, gpus=1) + Resources.from_ports([31000])
    assert offer.contains(task)
    left = offer - task                     # raises ResourcesError if `task` were not contained

The Mesos `Resource` JSON codec is `mesos_gpu.core.wire` (`resources_to_mesos`, `resources_from_mesos`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from mesos_gpu.core.values import (
    Range,
    ResourcesError,
    from_milli,
    normalise_ranges,
    ports_to_ranges,
    ranges_add,
    ranges_contains,
    ranges_count,
    ranges_subtract,
    take_lowest,
    take_ports,
    to_milli,
)

__all__ = [
    "Range",
    "Resources",
    "ResourcesError",
    "from_milli",
    "ranges_add",
    "ranges_contains",
    "ranges_count",
    "ranges_subtract",
    "take_lowest",
    "take_ports",
    "to_milli",
]

_SCALE = 1000
_EMPTY_RANGES: tuple[Range, ...] = ()
_UNRESERVED = "*"


# --------------------------------------------------------------------------- the value type
class Resources:
    """An immutable bag of Mesos resources: named scalars (fixed point), ranges and sets.

    `+`, `-`, `contains`, `<=` (contained in) work on quantities only. The Mesos labels `role` (the
    reservation role, "*" when unreserved) and `allocation_role` (`allocation_info.role`, kept so a task
    can echo its offer's) come from the left operand of `+` and `-`, and take part in `==`.
    Ranges and sets add as unions (as in Mesos), so `a + b - b == a` needs them disjoint; scalars are exact.
    """

    __slots__ = ("_hash", "_ranges", "_scalars", "_sets", "allocation_role", "role")

    _scalars: dict[str, int]
    _ranges: dict[str, tuple[Range, ...]]
    _sets: dict[str, frozenset[str]]
    role: str
    allocation_role: str | None
    _hash: int | None

    def __init__(
        self,
        scalars_milli: Mapping[str, int] | None = None,
        ranges: Mapping[str, Iterable[Range]] | None = None,
        sets: Mapping[str, Iterable[str]] | None = None,
        *,
        role: str = _UNRESERVED,
        allocation_role: str | None = None,
    ) -> None:
        """Build from thousandths (`{"cpus": 1500}` is 1.5 cpus); zero and empty entries are dropped."""
        clean_scalars: dict[str, int] = {}
        for name, milli in (scalars_milli or {}).items():
            if type(milli) is not int and (isinstance(milli, bool) or not isinstance(milli, int)):
                raise ResourcesError(f"scalar {name!r} must be integer thousandths, got {milli!r}")
            if milli > 0:
                clean_scalars[name] = milli
            elif milli < 0:
                raise ResourcesError(f"scalar {name!r} must not be negative, got {milli / _SCALE}")
        clean_ranges = {name: r for name, raw in (ranges or {}).items() if (r := normalise_ranges(raw))}
        clean_sets = {name: s for name, raw in (sets or {}).items() if (s := frozenset(raw))}
        self._init(clean_scalars, clean_ranges, clean_sets, role, allocation_role)

    def _init(
        self,
        scalars: dict[str, int],
        ranges: dict[str, tuple[Range, ...]],
        sets: dict[str, frozenset[str]],
        role: str,
        allocation_role: str | None,
    ) -> None:
        setter = object.__setattr__
        setter(self, "_scalars", scalars)
        setter(self, "_ranges", ranges)
        setter(self, "_sets", sets)
        setter(self, "role", role)
        setter(self, "allocation_role", allocation_role)
        setter(self, "_hash", None)

    @classmethod
    def _make(
        cls,
        scalars: dict[str, int],
        ranges: dict[str, tuple[Range, ...]],
        sets: dict[str, frozenset[str]],
        role: str,
        allocation_role: str | None,
    ) -> Resources:
        """Build from already clean parts (no validation): the fast path of the arithmetic."""
        made = cls.__new__(cls)
        made._init(scalars, ranges, sets, role, allocation_role)
        return made

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Resources is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Resources is immutable (cannot delete {name!r})")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def of(
        cls,
        cpus: float = 0,
        mem: float = 0,
        disk: float = 0,
        gpus: float = 0,
        *,
        ports: Iterable[Range] = (),
        scalars: Mapping[str, float] | None = None,
        role: str = _UNRESERVED,
        allocation_role: str | None = None,
    ) -> Resources:
        """Build from ordinary numbers: `Resources.of(cpus=2, mem=4096, gpus=1, ports=[(31000, 31009)])`."""
        milli = {"cpus": to_milli(cpus), "mem": to_milli(mem), "disk": to_milli(disk), "gpus": to_milli(gpus)}
        for name, value in (scalars or {}).items():
            milli[name] = milli.get(name, 0) + to_milli(value)
        return cls(milli, {"ports": list(ports)}, role=role, allocation_role=allocation_role)

    @classmethod
    def from_ports(cls, ports: Iterable[int], name: str = "ports") -> Resources:
        """Resources holding exactly the given port numbers (as normalised ranges)."""
        return cls._make({}, {name: r} if (r := ports_to_ranges(ports)) else {}, {}, _UNRESERVED, None)

    @classmethod
    def parse(cls, text: str) -> Resources:
        """Parse Mesos' text form: `cpus:2;mem:1024;ports:[31000-31005,32000-32000];zones:{a,b}`.

        A `(role)` suffix on a name sets the role (all entries must agree).
        """
        scalars: dict[str, int] = {}
        ranges: dict[str, list[Range]] = {}
        sets: dict[str, set[str]] = {}
        roles: set[str] = set()
        for raw in text.split(";"):
            item = raw.strip()
            if not item:
                continue
            name, sep, value = item.partition(":")
            if not sep or not name.strip() or not value.strip():
                raise ResourcesError(f"bad resource {item!r}: expected name:value")
            name, value = name.strip(), value.strip()
            if name.endswith(")") and "(" in name:
                name, _, role = name[:-1].partition("(")
                roles.add(role)
            if value.startswith("["):
                if not value.endswith("]"):
                    raise ResourcesError(f"bad ranges {value!r}")
                for part in filter(None, (p.strip() for p in value[1:-1].split(","))):
                    begin, dash, end = part.partition("-")
                    try:
                        bounds = (int(begin), int(end) if dash else int(begin))
                    except ValueError as error:
                        raise ResourcesError(f"bad range {part!r} in {name!r}") from error
                    ranges.setdefault(name, []).append(bounds)
            elif value.startswith("{"):
                if not value.endswith("}"):
                    raise ResourcesError(f"bad set {value!r}")
                sets.setdefault(name, set()).update(filter(None, (p.strip() for p in value[1:-1].split(","))))
            else:
                try:
                    scalars[name] = scalars.get(name, 0) + to_milli(value)
                except ValueError as error:
                    raise ResourcesError(f"bad scalar {value!r} for {name!r}") from error
        if len(roles) > 1:
            raise ResourcesError(f"mixed roles in {text!r}: {sorted(roles)}")
        return cls(scalars, ranges, sets, role=roles.pop() if roles else _UNRESERVED)

    def with_labels(self, *, role: str | None = None, allocation_role: str | None = None) -> Resources:
        """A copy with the given `role` and/or `allocation_role` (None keeps the current one)."""
        return Resources._make(
            self._scalars, self._ranges, self._sets,
            self.role if role is None else role,
            self.allocation_role if allocation_role is None else allocation_role,
        )

    # ------------------------------------------------------------------ accessors
    @property
    def cpus(self) -> float:
        return self._scalars.get("cpus", 0) / _SCALE

    @property
    def mem(self) -> float:
        return self._scalars.get("mem", 0) / _SCALE

    @property
    def disk(self) -> float:
        return self._scalars.get("disk", 0) / _SCALE

    @property
    def gpus(self) -> float:
        return self._scalars.get("gpus", 0) / _SCALE

    @property
    def ports(self) -> tuple[Range, ...]:
        return self._ranges.get("ports", _EMPTY_RANGES)

    def scalar(self, name: str) -> float:
        """The scalar `name` as a number (0 when absent)."""
        return self._scalars.get(name, 0) / _SCALE

    def scalar_milli(self, name: str) -> int:
        """The scalar `name` in thousandths (0 when absent): exact, for comparisons."""
        return self._scalars.get(name, 0)

    def scalar_key(self) -> tuple[tuple[str, int], ...] | None:
        """The scalars as (name, thousandths) pairs, hashable; None when there are ranges or sets."""
        if self._ranges or self._sets:
            return None
        return tuple(self._scalars.items())

    def scalars_milli(self) -> dict[str, int]:
        """A copy of every scalar, in thousandths."""
        return dict(self._scalars)

    def ranges(self, name: str) -> tuple[Range, ...]:
        """The normalised ranges of `name` (empty when absent)."""
        return self._ranges.get(name, _EMPTY_RANGES)

    def set_items(self, name: str) -> frozenset[str]:
        """The items of the SET resource `name` (empty when absent)."""
        return self._sets.get(name, frozenset())

    def range_map(self) -> dict[str, tuple[Range, ...]]:
        """A copy of every range resource by name (normalised)."""
        return dict(self._ranges)

    def names(self) -> frozenset[str]:
        """The names present (with a non-zero scalar, a non-empty range or set)."""
        return frozenset((*self._scalars, *self._ranges, *self._sets))

    def is_empty(self) -> bool:
        return not (self._scalars or self._ranges or self._sets)

    def __bool__(self) -> bool:
        return not self.is_empty()

    def take_ports(self, count: int, name: str = "ports") -> tuple[int, ...]:
        """The `count` lowest port numbers of range `name` (deterministic); ResourcesError if too few."""
        return take_ports(self._ranges.get(name, _EMPTY_RANGES), count)

    def plus_ports(self, ports: Sequence[int], name: str = "ports") -> Resources:
        """A copy with the given port numbers added to range `name` (the planner's fast path)."""
        if not ports:
            return self
        ranges = dict(self._ranges)
        extra = ports_to_ranges(ports)
        ranges[name] = ranges_add(ranges[name], extra) if name in ranges else extra
        return Resources._make(self._scalars, ranges, self._sets, self.role, self.allocation_role)

    # ------------------------------------------------------------------ arithmetic
    def contains(self, other: Resources) -> bool:
        """Whether `other`'s quantities all fit inside this one's (labels are not compared)."""
        mine = self._scalars
        for name, milli in other._scalars.items():
            if mine.get(name, 0) < milli:
                return False
        for name, inner in other._ranges.items():
            if not ranges_contains(self._ranges.get(name, _EMPTY_RANGES), inner):
                return False
        return all(items <= self._sets.get(name, frozenset()) for name, items in other._sets.items())

    def __add__(self, other: object) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        scalars = dict(self._scalars)
        for name, milli in other._scalars.items():
            scalars[name] = scalars.get(name, 0) + milli
        ranges = dict(self._ranges)
        for name, extra in other._ranges.items():
            ranges[name] = ranges_add(ranges.get(name, _EMPTY_RANGES), extra)
        sets = dict(self._sets)
        for name, items in other._sets.items():
            sets[name] = sets.get(name, frozenset()) | items
        return Resources._make(scalars, ranges, sets, self.role, self.allocation_role)

    def __sub__(self, other: object) -> Resources:
        """Subtract `other`, which must be contained (else ResourcesError, naming what is missing)."""
        if not isinstance(other, Resources):
            return NotImplemented
        if not self.contains(other):
            missing = other.subtract_or_zero(self)
            raise ResourcesError(f"cannot subtract {other} from {self}: missing {missing}")
        return self.subtract_or_zero(other)

    def subtract_or_zero(self, other: Resources) -> Resources:
        """Subtract what is there: scalars stop at zero, absent range/set items are ignored."""
        scalars = dict(self._scalars)
        for name, milli in other._scalars.items():
            left = scalars.get(name, 0) - milli
            if left > 0:
                scalars[name] = left
            else:
                scalars.pop(name, None)
        ranges = dict(self._ranges)
        for name, inner in other._ranges.items():
            if name in ranges:
                cut = ranges_subtract(ranges[name], inner)
                if cut:
                    ranges[name] = cut
                else:
                    del ranges[name]
        sets = dict(self._sets)
        for name, items in other._sets.items():
            if name in sets:
                rest = sets[name] - items
                if rest:
                    sets[name] = rest
                else:
                    del sets[name]
        return Resources._make(scalars, ranges, sets, self.role, self.allocation_role)

    @staticmethod
    def sum(items: Iterable[Resources]) -> Resources:
        """The sum of `items` (labels from the first one); empty Resources for none."""
        total: Resources | None = None
        for item in items:
            total = item if total is None else total + item
        return total if total is not None else Resources._make({}, {}, {}, _UNRESERVED, None)

    # ------------------------------------------------------------------ comparison
    def _key(self) -> tuple[object, ...]:
        return (
            tuple(sorted(self._scalars.items())),
            tuple(sorted(self._ranges.items())),
            tuple(sorted((name, tuple(sorted(items))) for name, items in self._sets.items())),
            self.role,
            self.allocation_role,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return (
            self._scalars == other._scalars and self._ranges == other._ranges and self._sets == other._sets
            and self.role == other.role and self.allocation_role == other.allocation_role
        )

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(self._key()))
        assert self._hash is not None
        return self._hash

    def __le__(self, other: object) -> bool:
        """`a <= b`: `a` is contained in `b` (a partial order on quantities)."""
        if not isinstance(other, Resources):
            return NotImplemented
        return other.contains(self)

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self.contains(other)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return other.contains(self) and not self.contains(other)

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self.contains(other) and not other.contains(self)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.names()))

    def __str__(self) -> str:
        parts: list[str] = []
        for name in sorted(self.names()):
            if name in self._scalars:
                parts.append(f"{name}:{from_milli(self._scalars[name])}")
            if name in self._ranges:
                parts.append(f"{name}:[" + ",".join(f"{b}-{e}" for b, e in self._ranges[name]) + "]")
            if name in self._sets:
                parts.append(f"{name}:{{" + ",".join(sorted(self._sets[name])) + "}")
        return ";".join(parts) if parts else "{}"

    def __repr__(self) -> str:
        labels = "" if self.role == _UNRESERVED else f", role={self.role!r}"
        if self.allocation_role is not None:
            labels += f", allocation_role={self.allocation_role!r}"
        return f"Resources({str(self)!r}{labels})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._scalars, self._ranges, self._sets, self.role, self.allocation_role))


def _rebuild(
    scalars: dict[str, int],
    ranges: dict[str, tuple[Range, ...]],
    sets: dict[str, frozenset[str]],
    role: str,
    allocation_role: str | None,
) -> Resources:
    return Resources._make(dict(scalars), dict(ranges), dict(sets), role, allocation_role)
