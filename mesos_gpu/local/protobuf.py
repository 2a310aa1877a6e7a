"""Binary protobuf (the proto2 wire format) for the Mesos v1 messages in `prototables`: `encode(name, obj)`
and `decode(name, data)` over the JSON form the JSON wire uses (enum names, bytes as base64, 64-bit
integers as numbers, non-finite doubles as "Infinity"/"-Infinity"/"NaN"), plus binary RecordIO framing.

Errors: `ProtobufError` (a ValueError) with `EncodeError` (the object is not a valid message: unknown
key, wrong JSON kind, value out of range, missing required field) and `DecodeError` (the bytes do not
parse: truncated, malformed, or a required field missing, where protobuf's ParseFromString fails too).
Mesos answers any DecodeError of a Call with 400 `Failed to parse body into Call protobuf`."""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import struct
from typing import Any

from mesos_gpu.core.wire import json_kind
from mesos_gpu.local.prototables import ENUMS, INTEGERS, MESSAGES, FieldSpec, field_spec

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
_MASK64 = (1 << 64) - 1
_RANGES = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, _MASK64),
}
_DOUBLE_WORDS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}
_INT_TEXT = re.compile(r"-?\d+")


class ProtobufError(ValueError):
    """A message could not be encoded or decoded."""


class EncodeError(ProtobufError):
    """The JSON-form object is not a valid message of its type."""


class DecodeError(ProtobufError):
    """The bytes are not a valid message of its type."""


@functools.cache
def _fields(message: str) -> dict[str, FieldSpec]:
    try:
        specs = MESSAGES[message]
    except KeyError:
        raise ProtobufError(f"Unknown message '{message}'") from None
    return dict(sorted(((key, field_spec(spec)) for key, spec in specs.items()), key=lambda kv: kv[1].number))


@functools.cache
def _numbered(message: str) -> dict[int, tuple[str, FieldSpec]]:
    return {spec.number: (key, spec) for key, spec in _fields(message).items()}


@functools.cache
def _enum_names(enum: str) -> dict[int, str]:
    return {number: name for name, number in ENUMS[enum].items()}


def _wire_type(kind: str) -> int:
    if kind in INTEGERS or kind == "bool" or kind.startswith("enum:"):
        return VARINT
    if kind == "double":
        return FIXED64
    return LENGTH


# ---------------------------------------------------------------------------------------------------
# encoding


def _varint(value: int) -> bytes:
    value &= _MASK64  # negative int32/int64 take ten bytes, as two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint((number << 3) | wire)


def _delimited(number: int, payload: bytes) -> bytes:
    return _tag(number, LENGTH) + _varint(len(payload)) + payload


def encode(message: str, obj: Any) -> bytes:
    """The binary form of `obj` (JSON form) as `message`; fields in field-number order, repeated scalars
    unpacked (proto2's default), as protobuf's SerializeToString writes them. Raises EncodeError."""
    return _encode_message(message, obj, "")


def _encode_message(message: str, obj: Any, path: str) -> bytes:
    if not isinstance(obj, dict):
        raise EncodeError(f"Expecting a JSON object for message '{path or message}'")
    fields = _fields(message)
    for key in obj:
        if key not in fields:
            raise EncodeError(f"Unknown field '{key}' in message '{message}'")
    out = bytearray()
    for key, spec in fields.items():
        item = obj.get(key)
        sub = f"{path}.{key}" if path else key
        if item is None:
            if spec.label == "!":
                raise EncodeError(f"Missing required field: {sub}")
            continue
        if spec.kind.startswith("map:"):
            out += _encode_map(spec, item, key, sub)
        elif spec.label == "*":
            if not isinstance(item, list):
                raise EncodeError(f"Expecting a JSON array for field '{key}'")
            for index, element in enumerate(item):
                out += _encode_field(spec.number, spec.kind, element, key, f"{sub}[{index}]")
        else:
            out += _encode_field(spec.number, spec.kind, item, key, sub)
    return bytes(out)


def _encode_map(spec: FieldSpec, item: Any, key: str, path: str) -> bytes:
    """A proto `map<string, V>`: one length-delimited entry {1: key, 2: value} per JSON member."""
    if not isinstance(item, dict):
        raise EncodeError(f"Expecting a JSON object for field '{key}'")
    out = bytearray()
    for index, (name, value) in enumerate(item.items()):
        if value is None:
            continue
        entry = _delimited(1, str(name).encode("utf-8"))
        entry += _encode_field(2, spec.kind[4:], value, "value", f"{path}[{index}].value")
        out += _delimited(spec.number, entry)
    return bytes(out)


def _encode_field(number: int, kind: str, item: Any, key: str, path: str) -> bytes:
    if kind in MESSAGES:
        return _delimited(number, _encode_message(kind, item, path))
    return _tag(number, _wire_type(kind)) + _encode_scalar(kind, item, key)


def _encode_scalar(kind: str, item: Any, key: str) -> bytes:
    wrong = EncodeError(f"Not expecting a JSON {json_kind(item)} for field '{key}'")
    if kind == "string":
        if not isinstance(item, str):
            raise wrong
        try:
            data = item.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodeError(f"Invalid UTF-8 text for field '{key}'") from None
        return _varint(len(data)) + data
    if kind == "bytes":
        if not isinstance(item, str):
            raise wrong
        try:
            data = base64.b64decode(item.encode("ascii"), validate=True)
        except (binascii.Error, ValueError):
            raise EncodeError(f"Failed to base64 decode bytes field '{key}'") from None
        return _varint(len(data)) + data
    if kind == "bool":
        if not isinstance(item, bool):
            raise wrong
        return _varint(int(item))
    if kind == "double":
        return struct.pack("<d", _double(item, wrong))
    if kind in INTEGERS:
        value = _integer(item, wrong)
        low, high = _RANGES[kind]
        if not low <= value <= high:
            raise EncodeError(f"Value {value} out of range for {kind} field '{key}'")
        return _varint(value)
    if kind.startswith("enum:"):
        if not isinstance(item, str):
            raise wrong
        number = ENUMS[kind[5:]].get(item)
        if number is None:
            raise EncodeError(f"Failed to find enum for '{item}'")
        return _varint(number)
    raise EncodeError(f"Unknown type '{kind}' for field '{key}'")


def _double(item: Any, wrong: EncodeError) -> float:
    if isinstance(item, bool):
        raise wrong
    if isinstance(item, str):
        if item in _DOUBLE_WORDS:
            return _DOUBLE_WORDS[item]
        try:
            return float(item)
        except ValueError:
            raise wrong from None
    if isinstance(item, (int, float)):
        try:
            return float(item)
        except OverflowError:
            raise wrong from None
    raise wrong


def _integer(item: Any, wrong: EncodeError) -> int:
    if isinstance(item, bool):
        raise wrong
    if isinstance(item, int):
        return item
    if isinstance(item, float) and item.is_integer():
        return int(item)
    if isinstance(item, str) and _INT_TEXT.fullmatch(item):
        return int(item)
    raise wrong


# ---------------------------------------------------------------------------------------------------
# decoding


def decode(message: str, data: bytes) -> dict[str, Any]:
    """The JSON form of `data` parsed as `message`, as protobuf's ParseFromString reads it: unknown
    fields (and unknown enum numbers) skipped, a repeated message field's occurrences merged, packed and
    unpacked repeated scalars both read, required fields enforced. Raises DecodeError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"Expecting bytes, not {type(data).__name__}")
    view = bytes(data)
    out = _decode_message(message, view, 0, len(view))
    missing: list[str] = []
    _find_missing(message, out, "", missing)
    if missing:
        raise DecodeError("Missing required fields: " + ", ".join(missing))
    return out


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise DecodeError(f"Truncated varint at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise DecodeError(f"Varint longer than ten bytes at byte {pos}")


def _read_length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    length, pos = _read_varint(data, pos, end)
    if length > end - pos:
        raise DecodeError(f"Length-delimited field of {length} bytes runs past the end at byte {pos}")
    return pos + length, pos


def _skip(data: bytes, pos: int, end: int, wire: int, number: int) -> int:
    """The position after an unknown field's value."""
    if wire == VARINT:
        return _read_varint(data, pos, end)[1]
    if wire in (FIXED64, FIXED32):
        size = 8 if wire == FIXED64 else 4
        if end - pos < size:
            raise DecodeError(f"Truncated fixed-size field at byte {pos}")
        return pos + size
    if wire == LENGTH:
        return _read_length(data, pos, end)[0]
    if wire == START_GROUP:
        while True:
            key, pos = _read_varint(data, pos, end)
            if key & 7 == END_GROUP:
                if key >> 3 != number:
                    raise DecodeError(f"Mismatched end of group {number} at byte {pos}")
                return pos
            pos = _skip(data, pos, end, key & 7, key >> 3)
    raise DecodeError(f"Invalid wire type {wire} for field {number} at byte {pos}")


def _decode_message(message: str, data: bytes, pos: int, end: int) -> dict[str, Any]:
    numbered = _numbered(message)
    out: dict[str, Any] = {}
    while pos < end:
        key, pos = _read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError(f"Invalid field number 0 at byte {pos}")
        known = numbered.get(number)
        if known is None:
            pos = _skip(data, pos, end, wire, number)
            continue
        name, spec = known
        expected = _wire_type(spec.kind)
        if wire == expected:
            value, pos = _decode_value(spec.kind, data, pos, end)
            _store(out, name, spec, value)
        elif wire == LENGTH and spec.label == "*" and expected != LENGTH:
            stop, pos = _read_length(data, pos, end)
            while pos < stop:  # packed repeated scalars
                value, pos = _decode_value(spec.kind, data, pos, stop)
                _store(out, name, spec, value)
        else:  # a known number with another wire type is an unknown field to protobuf
            pos = _skip(data, pos, end, wire, number)
    return out


_DROP = object()


def _store(out: dict[str, Any], name: str, spec: FieldSpec, value: Any) -> None:
    if value is _DROP:  # an enum number this table does not know: kept only as an unknown field
        return
    if spec.kind.startswith("map:"):
        entry_key, entry_value = value
        out.setdefault(name, {})[entry_key] = entry_value
    elif spec.label == "*":
        out.setdefault(name, []).append(value)
    elif spec.kind in MESSAGES and isinstance(out.get(name), dict):
        out[name] = _merge(spec.kind, out[name], value)
    else:
        out[name] = value


def _merge(message: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """protobuf's MergeFrom: repeated fields and maps append, sub-messages merge, scalars are replaced."""
    fields = _fields(message)
    merged = dict(old)
    for key, value in new.items():
        spec = fields[key]
        if key not in merged:
            merged[key] = value
        elif spec.kind.startswith("map:"):
            merged[key] = {**merged[key], **value}
        elif spec.label == "*":
            merged[key] = merged[key] + value
        elif spec.kind in MESSAGES:
            merged[key] = _merge(spec.kind, merged[key], value)
        else:
            merged[key] = value
    return merged


def _decode_value(kind: str, data: bytes, pos: int, end: int) -> tuple[Any, int]:
    if kind.startswith("map:"):
        stop, pos = _read_length(data, pos, end)
        return _decode_map_entry(kind[4:], data, pos, stop), stop
    if kind in MESSAGES:
        stop, pos = _read_length(data, pos, end)
        return _decode_message(kind, data, pos, stop), stop
    if kind == "double":
        if end - pos < 8:
            raise DecodeError(f"Truncated double at byte {pos}")
        (number,) = struct.unpack_from("<d", data, pos)
        return _double_json(number), pos + 8
    if kind in ("string", "bytes"):
        stop, pos = _read_length(data, pos, end)
        raw = data[pos:stop]
        if kind == "bytes":
            return base64.b64encode(raw).decode("ascii"), stop
        return raw.decode("utf-8", errors="replace"), stop  # proto2 parses (and logs) bad UTF-8
    raw_value, pos = _read_varint(data, pos, end)
    return _varint_json(kind, raw_value), pos


def _decode_map_entry(value_kind: str, data: bytes, pos: int, end: int) -> Any:
    """A map entry {1: string key, 2: value}; an absent key or value takes its default, as in protobuf."""
    key = ""
    value: Any = {} if value_kind in MESSAGES else _default(value_kind)
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 1 and wire == LENGTH:
            key, pos = _decode_value("string", data, pos, end)
        elif number == 2 and wire == _wire_type(value_kind):
            decoded, pos = _decode_value(value_kind, data, pos, end)
            if decoded is not _DROP:
                value = _merge(value_kind, value, decoded) if value_kind in MESSAGES else decoded
        else:
            pos = _skip(data, pos, end, wire, number)
    return key, value


def _default(kind: str) -> Any:
    if kind in ("string", "bytes"):
        return ""
    if kind == "bool":
        return False
    if kind == "double":
        return 0.0
    if kind.startswith("enum:"):
        return next(iter(ENUMS[kind[5:]]))  # proto2: the first value listed
    return 0


def _varint_json(kind: str, value: int) -> Any:
    if kind == "bool":
        return value != 0
    if kind == "uint64":
        return value
    if kind == "uint32":
        return value & 0xFFFFFFFF
    if kind == "int64":
        return value - (1 << 64) if value >> 63 else value
    low = ((value & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000  # int32 and enums keep the low 32 bits
    if kind == "int32":
        return low
    return _enum_names(kind[5:]).get(low, _DROP)


def _double_json(number: float) -> Any:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _find_missing(message: str, obj: dict[str, Any], path: str, missing: list[str]) -> None:
    """Collect the paths of required fields absent anywhere in `obj` (protobuf's IsInitialized)."""
    for key, spec in _fields(message).items():
        sub = f"{path}.{key}" if path else key
        if key not in obj:
            if spec.label == "!":
                missing.append(sub)
            continue
        kind = spec.kind.removeprefix("map:")
        if kind not in MESSAGES:
            continue
        if spec.kind.startswith("map:"):
            for index, value in enumerate(obj[key].values()):
                _find_missing(kind, value, f"{sub}[{index}].value", missing)
        elif spec.label == "*":
            for index, element in enumerate(obj[key]):
                _find_missing(kind, element, f"{sub}[{index}]", missing)
        else:
            _find_missing(kind, obj[key], sub, missing)


# ---------------------------------------------------------------------------------------------------
# RecordIO with binary records (the SUBSCRIBE stream when the client accepts only protobuf)


def encode_record(message: str, obj: Any) -> bytes:
    """One RecordIO record: `<decimal length>\\n<protobuf bytes>`."""
    data = encode(message, obj)
    return b"%d\n" % len(data) + data


class RecordReader:
    """Incremental RecordIO reader for binary records: `feed(bytes)` returns the complete records' bytes."""

    _HEADER = re.compile(rb"(\d{1,19})\n")

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        records: list[bytes] = []
        while self._buffer:
            match = self._HEADER.match(self._buffer)
            if match is None:
                if b"\n" in self._buffer[:21] or len(self._buffer) > 20:
                    raise DecodeError(f"Bad RecordIO header: {self._buffer[:21]!r}")
                break
            start = match.end()
            stop = start + int(match.group(1))
            if len(self._buffer) < stop:
                break
            records.append(self._buffer[start:stop])
            self._buffer = self._buffer[stop:]
        return records
