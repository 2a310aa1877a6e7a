"""Reading environment-style variables through parsers (pure): `EnvReader` collects one problem per bad
variable instead of stopping at the first, then raises one `ValidationError` naming each (path `/VAR`).
A parser takes the raw string and returns the value or raises ValueError with the sentence to show;
secrets and tokens are never shown.

Example::

    reader = EnvReader({"PORT": "x"})
    port = reader.get("PORT", 8080, parse_port)
    reader.raise_problems()     # ValidationError: invalid scheduler settings: PORT: ... (got 'x')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from mesos_gpu.core.errors import FieldError, ValidationError, json_pointer

__all__ = ["EnvReader"]

T = TypeVar("T")


class EnvReader:
    """Reads variables through parsers, collecting one problem per bad variable instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._problems: dict[str, str] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._problems

    def _value(self, name: str) -> str | None:
        raw = self._env.get(name)
        if raw is None:
            return None
        if not isinstance(raw, str):
            self.fail(name, f"must be a string, not {type(raw).__name__}")
            return None
        return raw if raw.strip() else None

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._value(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.fail(name, f"{exc} (got {_shown(name, raw)})")
            return default

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        return self.get(name, None, parse)

    def first(self, names: tuple[str, ...], default: T, parse: Callable[[str], T]) -> T:
        """The first of `names` that is set (an earlier name wins), else `default`."""
        for name in names:
            if self._value(name) is not None:
                return self.get(name, default, parse)
        return default

    def fail(self, name: str, message: str) -> None:
        self._problems.setdefault(name, message)

    def raise_problems(self) -> None:
        if not self._problems:
            return
        errors = sorted(FieldError(json_pointer([name]), message) for name, message in self._problems.items())
        listed = "; ".join(f"{name}: {message}" for name, message in sorted(self._problems.items()))
        raise ValidationError(errors, f"invalid scheduler settings: {listed}")


def _shown(name: str, raw: str) -> str:
    """The value as an error message may show it: never the value of a secret or token."""
    if "SECRET" in name or "TOKEN" in name:
        return "a hidden value"
    return repr(raw)
