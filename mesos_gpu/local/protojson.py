"""protobuf-JSON conversion against the v1 proto tables: `convert(obj, "scheduler.Call")` parses like Mesos
(stout's protobuf parse): unknown keys ignored, required fields enforced, Mesos' own error wording."""

from __future__ import annotations

import binascii
import math
import re
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.wire import json_kind
from mesos_gpu.local.protocol import decode_bytes
from mesos_gpu.local.prototables import ENUMS, INTEGERS, MESSAGES, field_spec

_INT_STRING = re.compile(r"-?\d+")
_DOUBLE_WORDS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


class ConversionError(ValueError):
    """The JSON does not convert into the protobuf message; the text is Mesos' (stout) wording."""


@dataclass
class _Converter:
    strict: bool
    missing: list[str] = field(default_factory=list)

    def message(self, obj: Any, name: str, path: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise ConversionError(f"Expecting a JSON object for message '{path or name}'")
        spec = MESSAGES[name]
        out: dict[str, Any] = {}
        for key, item in obj.items():
            if key not in spec:
                if self.strict:
                    raise ConversionError(f"Unknown field '{key}' in message '{name}'")
                continue
            kind, label = split_spec(spec[key])
            sub = f"{path}.{key}" if path else key
            if item is None:
                continue
            if label == "*":
                if not isinstance(item, list):
                    raise ConversionError(f"Not expecting a JSON {json_kind(item)} for field '{key}'")
                values = []
                for index, element in enumerate(item):
                    converted = self.single(element, kind, key, f"{sub}[{index}]")
                    if converted is not _DROP:
                        values.append(converted)
                out[key] = values
            else:
                converted = self.single(item, kind, key, sub)
                if converted is not _DROP:
                    out[key] = converted
        for key, fspec in spec.items():
            if split_spec(fspec)[1] == "!" and key not in out:
                self.missing.append(f"{path}.{key}" if path else key)
        return out

    def single(self, item: Any, kind: str, key: str, path: str) -> Any:
        wrong = ConversionError(f"Not expecting a JSON {json_kind(item)} for field '{key}'")
        if kind == "string":
            if not isinstance(item, str):
                raise wrong
            return item
        if kind == "bool":
            if not isinstance(item, bool):
                raise wrong
            return item
        if kind == "double":
            if isinstance(item, bool):
                raise wrong
            if isinstance(item, (int, float)):
                return item
            if isinstance(item, str):
                if item in _DOUBLE_WORDS:
                    return item
                try:
                    float(item)
                except ValueError:
                    raise wrong from None
                return item
            raise wrong
        if kind in INTEGERS:
            if isinstance(item, bool):
                raise wrong
            if isinstance(item, int) or (isinstance(item, float) and item.is_integer()):
                return int(item)
            if isinstance(item, str) and _INT_STRING.fullmatch(item):
                return int(item)
            raise wrong
        if kind == "bytes":
            if not isinstance(item, str):
                raise wrong
            try:
                decode_bytes(item)
            except (binascii.Error, ValueError):
                raise ConversionError(f"Failed to base64 decode bytes field '{key}'") from None
            return item
        if kind.startswith("enum:"):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                raise ConversionError(f"Not expecting a JSON number for field '{key}'")
            if not isinstance(item, str):
                raise wrong
            if item not in ENUMS[kind[5:]]:
                if self.strict:
                    raise ConversionError(f"Failed to find enum for '{item}'")
                return _DROP
            return item
        if kind.startswith("map:"):
            return self.map_field(item, kind[4:], key, path)
        return self.message(item, kind, path)

    def map_field(self, item: Any, value_kind: str, key: str, path: str) -> dict[str, Any]:
        """A proto `map<string, V>` as stout parses it: a JSON object whose values each fill the entry's
        `value` field (so nested errors name field 'value' and missing paths read `f[i].value.x`)."""
        if not isinstance(item, dict):
            raise ConversionError(f"Not expecting a JSON {json_kind(item)} for field '{key}'")
        out: dict[str, Any] = {}
        for index, (name, element) in enumerate(item.items()):
            if element is None:
                continue
            converted = self.single(element, value_kind, "value", f"{path}[{index}].value")
            if converted is not _DROP:
                out[name] = converted
        return out


_DROP = object()


def split_spec(spec: str) -> tuple[str, str]:
    """A field spec's kind and label (see `prototables`): `"ID!=2"` -> ("ID", "!")."""
    kind, label, _ = field_spec(spec)
    return kind, label


def convert(obj: Any, message: str, strict: bool = False) -> dict[str, Any]:
    """Convert parsed JSON into `message` as Mesos does; raises `ConversionError` with Mesos' text.

    Unknown keys are dropped (strict: rejected), unknown optional enum names dropped (strict: rejected),
    and required fields enforced after parsing: `Missing required fields: a.b, c`.
    """
    converter = _Converter(strict)
    out = converter.message(obj, message, "")
    if converter.missing:
        raise ConversionError("Missing required fields: " + ", ".join(converter.missing))
    return out


def strict_errors(obj: Any, message: str) -> list[str]:
    """An empty list when `obj` is a strictly valid `message` (used to check emitted events)."""
    try:
        convert(obj, message, strict=True)
    except ConversionError as exc:
        return [str(exc)]
    return []
