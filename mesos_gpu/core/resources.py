"""Resources (pure): an immutable Mesos-style value type with fixed-point scalars and port ranges.

Scalars are stored as integers of thousandths, as Mesos does (`Value::Scalar` keeps three decimals), so
`a + b - b == a` holds exactly however often the arithmetic is repeated.

Example::

    offer = Resources.parse("cpus:8;mem:32768;gpus:2;ports:[31000-31999]")
    task = Resources.of(cpus=2, mem=4096, gpus=1) + Resources.from_ports([31000])
    assert offer.contains(task)
    left = offer - task                     # raises ResourcesError if `task` were not contained
    Resources.from_mesos(left.to_mesos()) == left
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

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

Range = tuple[int, int]
"""An inclusive range of integers, `(begin, end)` with `begin <= end`, as Mesos `Value.Range`."""

_SCALE = 1000
_Parts = tuple[dict[str, int], dict[str, list[Range]], dict[str, set[str]]]
_EMPTY_RANGES: tuple[Range, ...] = ()
_UNRESERVED = "*"


class ResourcesError(ValueError):
    """Invalid resources: a negative or non-finite scalar, a bad range, or subtracting what is absent."""


# --------------------------------------------------------------------------- fixed point
def to_milli(value: float | int | str) -> int:
    """Convert a scalar to integer thousandths, rounding half away from zero (Mesos uses llround)."""
    if isinstance(value, bool):
        raise ResourcesError(f"scalar must be a number, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ResourcesError(f"scalar must not be negative, got {value}")
        return value * _SCALE
    number = float(value)
    if not math.isfinite(number):
        raise ResourcesError(f"scalar must be finite, got {value!r}")
    if number < 0:
        raise ResourcesError(f"scalar must not be negative, got {value!r}")
    return math.floor(number * _SCALE + 0.5)


def from_milli(milli: int) -> float | int:
    """Thousandths back to a number: an `int` when whole (JSON `4`, not `4.0`), otherwise a float."""
    whole, rest = divmod(milli, _SCALE)
    return whole if rest == 0 else milli / _SCALE


# --------------------------------------------------------------------------- ranges
def _normalise(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sort and coalesce overlapping and adjacent ranges; validate each one."""
    items = []
    for begin, end in ranges:
        if isinstance(begin, bool) or isinstance(end, bool) or not isinstance(begin, int) \
                or not isinstance(end, int):
            raise ResourcesError(f"range bounds must be integers, got [{begin!r}-{end!r}]")
        if begin < 0 or end < begin:
            raise ResourcesError(f"invalid range [{begin}-{end}]")
        items.append((begin, end))
    if len(items) <= 1:
        return tuple(items)
    items.sort()
    merged: list[Range] = [items[0]]
    for begin, end in items[1:]:
        last_begin, last_end = merged[-1]
        if begin <= last_end + 1:
            if end > last_end:
                merged[-1] = (last_begin, end)
        else:
            merged.append((begin, end))
    return tuple(merged)


def ranges_add(left: Sequence[Range], right: Sequence[Range]) -> tuple[Range, ...]:
    """The union of two range lists, normalised."""
    if not right:
        return tuple(left)
    if not left:
        return _normalise(right)
    return _normalise([*left, *right])


def ranges_contains(outer: Sequence[Range], inner: Sequence[Range]) -> bool:
    """Whether every integer of `inner` is in `outer` (`outer` normalised)."""
    return all(any(o_b <= begin and end <= o_e for o_b, o_e in outer) for begin, end in inner)


def ranges_subtract(outer: Sequence[Range], inner: Sequence[Range]) -> tuple[Range, ...]:
    """`outer` without the integers of `inner` (missing integers are ignored), normalised."""
    result = list(outer)
    for begin, end in inner:
        cut: list[Range] = []
        for o_begin, o_end in result:
            if end < o_begin or begin > o_end:
                cut.append((o_begin, o_end))
                continue
            if o_begin < begin:
                cut.append((o_begin, begin - 1))
            if end < o_end:
                cut.append((end + 1, o_end))
        result = cut
    return tuple(result)


def ranges_count(ranges: Sequence[Range]) -> int:
    """How many integers the (normalised) ranges hold."""
    return sum(end - begin + 1 for begin, end in ranges)


def take_ports(ranges: Sequence[Range], count: int) -> tuple[int, ...]:
    """The `count` lowest integers of the normalised `ranges`, deterministically; error if too few."""
    return take_lowest(ranges, count)[0]


def take_lowest(ranges: Sequence[Range], count: int) -> tuple[tuple[int, ...], tuple[Range, ...]]:
    """The `count` lowest integers of the normalised `ranges` and what is left of `ranges` without
    them, in one pass (the lowest numbers always come off the front); error if too few. The planner's
    debit of a task's ports."""
    if count <= 0:
        if count < 0:
            raise ResourcesError(f"cannot take {count} ports")
        return (), tuple(ranges)
    taken: list[int] = []
    for position, (begin, end) in enumerate(ranges):
        want = count - len(taken)
        if end - begin + 1 > want:
            taken.extend(range(begin, begin + want))
            return tuple(taken), ((begin + want, end), *ranges[position + 1:])
        taken.extend(range(begin, end + 1))
        if len(taken) == count:
            return tuple(taken), tuple(ranges[position + 1:])
    raise ResourcesError(f"{count} ports wanted, only {len(taken)} available")


def _ports_to_ranges(ports: Iterable[int]) -> tuple[Range, ...]:
    ordered = sorted(ports)
    if not ordered:
        return ()
    if len(ordered) == 1 and type(ordered[0]) is int and ordered[0] >= 0:
        return ((ordered[0], ordered[0]),)    # the planner's common case: one port
    if ordered[0] < 0 or not all(type(port) is int for port in ordered):
        raise ResourcesError(f"ports must be non-negative integers, got {ordered!r}")
    out: list[Range] = []
    begin = end = ordered[0]
    for port in ordered[1:]:
        if port <= end + 1:
            end = max(end, port)
        else:
            out.append((begin, end))
            begin = end = port
    out.append((begin, end))
    return tuple(out)


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
            if isinstance(milli, bool) or not isinstance(milli, int):
                raise ResourcesError(f"scalar {name!r} must be integer thousandths, got {milli!r}")
            if milli < 0:
                raise ResourcesError(f"scalar {name!r} must not be negative, got {milli / _SCALE}")
            if milli:
                clean_scalars[name] = milli
        clean_ranges = {name: r for name, raw in (ranges or {}).items() if (r := _normalise(raw))}
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
        return cls._make({}, {name: r} if (r := _ports_to_ranges(ports)) else {}, {}, _UNRESERVED, None)

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

    @classmethod
    def from_mesos(cls, resources: Iterable[Mapping[str, Any]]) -> Resources:
        """Build from a Mesos v1 `Resource` JSON list (an offer's or a task's `resources`).

        Reservations become `role` (`role`, or the last of `reservations`); `allocation_info.role`
        becomes `allocation_role`. All entries must share one role and one allocation role; use
        `from_mesos_by_role` for an offer that mixes reserved and unreserved resources.
        """
        by_role = cls.from_mesos_by_role(resources)
        if len(by_role) > 1:
            raise ResourcesError(f"mixed roles in one Resource list: {sorted(map(str, by_role))}")
        if not by_role:
            return cls._make({}, {}, {}, _UNRESERVED, None)
        return next(iter(by_role.values()))

    @classmethod
    def from_mesos_by_role(
        cls, resources: Iterable[Mapping[str, Any]]
    ) -> dict[tuple[str, str | None], Resources]:
        """Split a Mesos `Resource` JSON list by `(role, allocation_role)`."""
        parts: dict[tuple[str, str | None], _Parts] = {}
        last_role: object = None
        last_allocation: str | None = None
        scalars: dict[str, int] = {}
        ranges: dict[str, list[Range]] = {}
        sets: dict[str, set[str]] = {}
        for entry in resources:
            # `_role_of` / `_allocation_role_of`, inlined for the common entry (no reservations, no
            # allocation info): every offer of an OFFERS event goes through here.
            if "reservations" in entry or "allocation_info" in entry:
                role, allocation = _role_of(entry), _allocation_role_of(entry)
            else:
                role = entry.get("role", _UNRESERVED)
                if not isinstance(role, str) or not role:
                    role = _UNRESERVED
                allocation = None
            if role != last_role or allocation != last_allocation:
                key = (role, allocation)
                scalars, ranges, sets = parts.get(key) or parts.setdefault(key, ({}, {}, {}))
                last_role, last_allocation = role, allocation
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise ResourcesError(f"resource without a name: {dict(entry)!r}")
            kind = entry.get("type", "SCALAR")
            if kind == "SCALAR":
                value = (entry.get("scalar") or {}).get("value")
                if value is None:
                    raise ResourcesError(f"SCALAR resource {name!r} without scalar.value")
                milli = value * _SCALE if type(value) is int and value >= 0 else to_milli(value)
                scalars[name] = scalars[name] + milli if name in scalars else milli
            elif kind == "RANGES":
                for item in (entry.get("ranges") or {}).get("range", []):
                    ranges.setdefault(name, []).append((int(item["begin"]), int(item["end"])))
            elif kind == "SET":
                sets.setdefault(name, set()).update((entry.get("set") or {}).get("item", []))
            else:
                raise ResourcesError(f"resource {name!r} has unsupported type {kind!r}")
        # Scalars are already valid thousandths (to_milli checked them); ranges are normalised here.
        return {
            key: cls._make(
                {name: milli for name, milli in scalars.items() if milli},
                {name: r for name, raw in ranges.items() if (r := _normalise(raw))},
                {name: items for name, raw in sets.items() if (items := frozenset(raw))},
                key[0], key[1],
            )
            for key, (scalars, ranges, sets) in parts.items()
        }

    # ------------------------------------------------------------------ conversion out
    def to_mesos(self, *, include_role: bool = True) -> list[dict[str, Any]]:
        """A Mesos v1 `Resource` JSON list sorted by name, with `allocation_info` if `allocation_role`."""
        out: list[dict[str, Any]] = []
        for name in sorted({*self._scalars, *self._ranges, *self._sets}):
            if name in self._scalars:
                value = from_milli(self._scalars[name])
                out.append({"name": name, "type": "SCALAR", "scalar": {"value": value}})
            if name in self._ranges:
                out.append({
                    "name": name, "type": "RANGES",
                    "ranges": {"range": [{"begin": b, "end": e} for b, e in self._ranges[name]]},
                })
            if name in self._sets:
                out.append({"name": name, "type": "SET", "set": {"item": sorted(self._sets[name])}})
        for entry in out:
            if include_role:
                entry["role"] = self.role
            if self.allocation_role is not None:
                entry["allocation_info"] = {"role": self.allocation_role}
        return out

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
        extra = _ports_to_ranges(ports)
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


def _role_of(entry: Mapping[str, Any]) -> str:
    reservations = entry.get("reservations")
    if reservations:
        role = reservations[-1].get("role")
        return role if isinstance(role, str) and role else _UNRESERVED
    role = entry.get("role")
    return role if isinstance(role, str) and role else _UNRESERVED


def _allocation_role_of(entry: Mapping[str, Any]) -> str | None:
    info = entry.get("allocation_info")
    if isinstance(info, Mapping):
        role = info.get("role")
        if isinstance(role, str):
            return role
    return None
