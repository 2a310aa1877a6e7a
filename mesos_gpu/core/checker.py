"""The generic part of checking a parsed JSON document (pure): `DocumentChecker` walks it, collecting a
`FieldError` (JSON Pointer path + message) for every problem instead of stopping at the first, and
returns each parsed value or None. `validation` (jobs) and `sharevalidation` (GPU shares, isolation,
URIs) build on it.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard

from mesos_gpu.core.errors import FieldError, json_pointer

Path = tuple[str | int, ...]

__all__ = ["DocumentChecker", "Path", "is_json_number", "range_message"]


def is_json_number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number (a bool is not one, though Python counts it as an int)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def range_message(low: float, high: float, whole: bool) -> str:
    """"must be a whole number from 0 to 64" / "must be a number from 0.01 to 1024"."""
    kind = "whole number" if whole else "number"
    return f"must be a {kind} from {_number_text(low)} to {_number_text(high)}"


class DocumentChecker:
    """Collects FieldErrors while walking one document; each method returns the parsed value or None."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: Path, message: str) -> None:
        self.errors.append(FieldError(json_pointer(path), message))

    def mapping(self, path: Path, value: object, fields: tuple[str, ...] | None) -> dict[str, Any] | None:
        """A JSON object; with `fields`, other keys are reported as unknown (and dropped)."""
        if not isinstance(value, dict):
            self.error(path, "must be an object")
            return None
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.error((*path, str(key)), "keys must be strings")
            elif fields is not None and key not in fields:
                self.error((*path, key), "unknown field")
            else:
                out[key] = item
        return out

    def number(self, path: Path, value: object, bounds: tuple[float, float, bool]) -> float | int | None:
        """A JSON number within bounds (bool is not a number); whole numbers may be written 2 or 2.0."""
        low, high, whole = bounds
        number: float | int | None = None
        if is_json_number(value) and not (whole and isinstance(value, float) and not value.is_integer()):
            number = value
        if number is None or not low <= number <= high:
            self.error(path, range_message(low, high, whole))
            return None
        return int(number) if whole else float(number)

    def text(
        self, path: Path, value: object, pattern: re.Pattern[str], max_length: int, message: str
    ) -> str | None:
        if not isinstance(value, str) or len(value) > max_length or not pattern.fullmatch(value):
            self.error(path, message)
            return None
        return value

    def boolean(self, path: Path, value: object) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, "must be true or false")
            return None
        return value

    def choice(self, path: Path, value: object, enum: Any, message: str) -> Any:
        """The member of `enum` whose value is the string `value`, or None (with an error)."""
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                pass
        self.error(path, message)
        return None
