"""Marathon placement constraints (pure): UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS.

Syntax as Marathon: `["hostname", "UNIQUE"]`, `["rack", "GROUP_BY", "3"]`, `["gpu_model", "LIKE", "A100.*"]`,
or the colon form `"hostname:MAX_PER:2"`. Semantics as Marathon's `Constraints.scala`: the field is
`hostname` (also `@hostname`) or an agent attribute; LIKE/UNLIKE match the whole value (Java `matches`);
an agent without the attribute passes only UNLIKE; UNIQUE, CLUSTER without value, GROUP_BY and MAX_PER
look at the values of the agents that already hold members of the same job.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from mesos_gpu.core.placement.reasons import constraint_reason

HOSTNAME_FIELDS = frozenset({"hostname", "@hostname"})


class Operator(StrEnum):
    UNIQUE = "UNIQUE"
    CLUSTER = "CLUSTER"
    GROUP_BY = "GROUP_BY"
    LIKE = "LIKE"
    UNLIKE = "UNLIKE"
    MAX_PER = "MAX_PER"
    IS = "IS"


_NEEDS_VALUE = frozenset({Operator.LIKE, Operator.UNLIKE, Operator.MAX_PER, Operator.IS})
_STATIC = frozenset({Operator.LIKE, Operator.UNLIKE, Operator.IS})


@dataclass(frozen=True)
class Constraint:
    """One Marathon constraint; `reason` is the name shown when an agent fails it."""

    field: str
    operator: Operator
    value: str | None = None
    pattern: re.Pattern[str] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    limit: int = dataclasses.field(default=0, init=False, repr=False, compare=False)
    reason: str = dataclasses.field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.field:
            raise ValueError("constraint field must not be empty")
        operator = self.operator
        if operator in _NEEDS_VALUE and not self.value:
            raise ValueError(f"constraint {self.field} {operator.value} needs a value")
        where = f"constraint {self.field} {operator.value}"
        if operator in (Operator.LIKE, Operator.UNLIKE):
            try:
                object.__setattr__(self, "pattern", re.compile(self.value or ""))
            except re.error as error:
                raise ValueError(f"{where}: bad regex {self.value!r}: {error}") from error
        if operator in (Operator.MAX_PER, Operator.GROUP_BY) and self.value:
            try:
                limit = int(self.value)
            except ValueError as error:
                raise ValueError(f"{where}: {self.value!r} is not an integer") from error
            if limit < (1 if operator is Operator.MAX_PER else 0):
                raise ValueError(f"{where}: {limit} is out of range")
            object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "reason", constraint_reason(operator.value, self.field))

    @property
    def is_static(self) -> bool:
        """Whether the answer depends on the agent alone (not on where the job's members are)."""
        return self.operator in _STATIC or (self.operator is Operator.CLUSTER and bool(self.value))

    def allows(self, value: str | None, placed: Mapping[str | None, int], first: str | None = None) -> bool:
        """Whether an agent whose `field` is `value` (None: attribute missing) may take one more member.

        `placed` counts the job's members already placed by the same field's value; `first` is the value
        of the first member placed (CLUSTER without a value follows it).
        """
        operator = self.operator
        if value is None:
            return operator is Operator.UNLIKE
        if operator is Operator.UNIQUE:
            return not placed.get(value, 0)
        if operator is Operator.LIKE:
            assert self.pattern is not None
            return self.pattern.fullmatch(value) is not None
        if operator is Operator.UNLIKE:
            assert self.pattern is not None
            return self.pattern.fullmatch(value) is None
        if operator is Operator.IS:
            return value == self.value
        if operator is Operator.CLUSTER:
            if self.value:
                return value == self.value
            return first is None or value == first
        if operator is Operator.MAX_PER:
            return placed.get(value, 0) < self.limit
        # GROUP_BY: a new value is always welcome; a known one only when it is among the smallest groups
        # and at least `limit` groups exist (Marathon's checkGroupBy).
        count = placed.get(value, 0)
        if not count:
            return True
        groups = [n for n in placed.values() if n]
        return len(groups) >= self.limit and count == min(groups)

    def to_marathon(self) -> list[str]:
        """The Marathon JSON form: `["hostname", "UNIQUE"]`."""
        return [self.field, self.operator.value] + ([self.value] if self.value is not None else [])

    def __str__(self) -> str:
        return ":".join(self.to_marathon())


def parse_constraint(raw: Sequence[str] | str) -> Constraint:
    """Parse `["field", "OP"(, "value")]` or `"field:OP(:value)"`; ValueError says what is wrong."""
    parts = raw.split(":", 2) if isinstance(raw, str) else list(raw)
    if len(parts) not in (2, 3) or not all(isinstance(part, str) for part in parts):
        raise ValueError(f"constraint must be [field, operator] or [field, operator, value], got {raw!r}")
    name, operator = parts[0], parts[1].upper()
    try:
        op = Operator(operator)
    except ValueError:
        known = ", ".join(o.value for o in Operator)
        raise ValueError(f"unknown constraint operator {parts[1]!r} (known: {known})") from None
    return Constraint(name, op, parts[2] if len(parts) == 3 else None)


def parse_constraints(raw: Sequence[Sequence[str] | str]) -> tuple[Constraint, ...]:
    """Parse a list of constraints (Marathon's `constraints` array)."""
    return tuple(parse_constraint(item) for item in raw)
