"""Mesos `Value` arithmetic (pure), as `src/common/values.cpp`: fixed-point scalars (integer thousandths,
Mesos' three decimals) and inclusive integer ranges (`Value.Ranges`, e.g. ports). `Resources` builds on
these; `mesos_gpu.core.resources` re-exports the public names (its `__all__` is the public surface).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Range = tuple[int, int]
"""An inclusive range of integers, `(begin, end)` with `begin <= end`, as Mesos `Value.Range`."""

_SCALE = 1000


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
def normalise_ranges(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sort and coalesce overlapping and adjacent ranges; validate each one (ResourcesError)."""
    items = []
    for begin, end in ranges:
        if (type(begin) is not int or type(end) is not int) and (
            isinstance(begin, bool) or isinstance(end, bool) or not isinstance(begin, int)
            or not isinstance(end, int)
        ):
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
        return normalise_ranges(right)
    return normalise_ranges([*left, *right])


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


def ports_to_ranges(ports: Iterable[int]) -> tuple[Range, ...]:
    """The port numbers as normalised ranges; error if one is not a non-negative integer."""
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
