"""The embedded master's and agents' own wire helpers: RecordIO framing, ids, error texts, and the
/state and text forms of unreserved resources. What the scheduler and isolator share too (terminal
states, Duration text, the Resource JSON codec) is `mesos_gpu.core.wire`; the proto tables are in
`prototables`, the protobuf-JSON converter in `protojson`."""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from mesos_gpu.core import wire
from mesos_gpu.core.resources import Resources, to_milli

MESOS_VERSION = "1.11.0"
DEFAULT_HEARTBEAT_INTERVAL = 15.0
DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 31536000.0
MIN_CPUS = 0.01
MIN_MEM = 32.0

# ---------------------------------------------------------------------------------------------------
# Error texts (src/master/http.cpp, src/master/validation.cpp, src/slave/http.cpp)

NO_LEADER = "No leader elected"
NOT_RECOVERED = "Master has not finished recovery"
MISSING_CONTENT_TYPE = "Expecting 'Content-Type' to be present"
UNSUPPORTED_CONTENT_TYPE = "Expecting 'Content-Type' of application/json or application/x-protobuf"
BAD_ACCEPT = "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"
SUBSCRIBE_WITH_STREAM_ID = "Subscribe calls should not include the 'Mesos-Stream-Id' header"
MISSING_STREAM_ID = "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
FRAMEWORK_NOT_FOUND = "Framework cannot be found"
FRAMEWORK_NOT_SUBSCRIBED = "Framework is not subscribed"
FRAMEWORK_FAILED_OVER = "Framework failed over"
FRAMEWORK_REMOVED = "Framework has been removed"
PROTOBUF_PARSE_FAILED = "Failed to parse body into Call protobuf"


def wrong_stream_id(stream_id: str, framework_id: str) -> str:
    return (
        f"The stream ID '{stream_id}' included in this request didn't match the stream ID currently "
        f"associated with framework ID {framework_id}"
    )


def json_parse_error(detail: str) -> str:
    return f"Failed to parse body into JSON: {detail}"


def conversion_error(detail: str) -> str:
    return f"Failed to convert JSON into Call protobuf: {detail}"


def call_validation_error(detail: str) -> str:
    return f"Failed to validate scheduler::Call: {detail}"


class HttpError(Exception):
    """An HTTP answer other than success: `code` and the exact Mesos body text."""

    def __init__(self, code: int, text: str = "") -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


# ---------------------------------------------------------------------------------------------------
# RecordIO


def encode_record(event: dict[str, Any]) -> bytes:
    """One RecordIO record: `<decimal length>\\n<JSON bytes>`."""
    data = json.dumps(event, separators=(",", ":")).encode("utf-8")
    return b"%d\n" % len(data) + data


class RecordIODecoder:
    """Incremental RecordIO reader: `feed(bytes)` returns the complete records decoded as JSON."""

    _HEADER = re.compile(rb"(\d+)\n")

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        records: list[dict[str, Any]] = []
        while True:
            match = self._HEADER.match(self._buffer)
            if match is None:
                if len(self._buffer) > 20 and b"\n" in self._buffer[:21]:
                    raise ValueError(f"bad RecordIO header: {self._buffer[:21]!r}")
                return records
            length = int(match.group(1))
            start = match.end()
            if len(self._buffer) < start + length:
                return records
            records.append(json.loads(self._buffer[start : start + length]))
            self._buffer = self._buffer[start + length :]


# ---------------------------------------------------------------------------------------------------
# Ids and small JSON helpers


def new_master_id() -> str:
    return str(uuid.uuid4())


def new_stream_id() -> str:
    return str(uuid.uuid4())


def framework_id_for(master_id: str, counter: int) -> str:
    return f"{master_id}-{counter:04d}"


def offer_id_for(master_id: str, counter: int) -> str:
    return f"{master_id}-O{counter}"


def agent_id_for(master_id: str, counter: int) -> str:
    return f"{master_id}-S{counter}"


def value(text: str) -> dict[str, str]:
    """The `{"value": ...}` wrapper of every Mesos id."""
    return {"value": text}


def id_of(obj: Any, key: str) -> str | None:
    """`obj[key]["value"]` or None when absent or malformed."""
    if not isinstance(obj, dict):
        return None
    inner = obj.get(key)
    if isinstance(inner, dict) and isinstance(inner.get("value"), str):
        return str(inner["value"])
    return None


def ip_as_uint32(ip: str) -> int:
    """MasterInfo.ip: the IPv4 address in network byte order read as a native (little-endian) uint32."""
    try:
        packed = socket.inet_aton(ip)
    except OSError:
        packed = socket.inet_aton("127.0.0.1")
    return int(struct.unpack("<I", packed)[0])


def decode_bytes(text: str) -> bytes:
    """Base64 as Mesos decodes JSON `bytes` fields (standard alphabet, padding required)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


# ---------------------------------------------------------------------------------------------------
# Resources in the master's /state and text forms (unreserved, role "*"); their Resource JSON is
# `wire.resources_to_mesos` / `wire.resources_from_mesos(items, lenient=True)`.

_MILLI = to_milli(1)


def _format_scalar(milli: int) -> str:
    text = f"{milli / _MILLI:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def resources_to_state(resources: Resources) -> dict[str, Any]:
    """The flat form of /state (`{"cpus": 1.0, "ports": "[31000-32000]"}`)."""
    state: dict[str, Any] = {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
    names = sorted(resources.names())
    for name, milli in sorted(resources.scalars_milli().items()):
        state[name] = milli / _MILLI
    for name in names:
        if resources.ranges(name):
            state[name] = "[" + ", ".join(f"{b}-{e}" for b, e in resources.ranges(name)) + "]"
    for name in names:
        if resources.set_items(name):
            state[name] = "{" + ", ".join(sorted(resources.set_items(name))) + "}"
    return state


def describe_resources(resources: Resources, allocation_role: str | None = "*") -> str:
    """Mesos' `stringify(Resources)`, e.g. `cpus(allocated: *):1; mem(allocated: *):32`."""
    parts = []
    for name in wire.mesos_order(resources.names()):
        label = name if allocation_role is None else f"{name}(allocated: {allocation_role})"
        if resources.scalar_milli(name):
            parts.append(f"{label}:{_format_scalar(resources.scalar_milli(name))}")
        elif resources.ranges(name):
            parts.append(f"{label}:[" + ", ".join(f"{b}-{e}" for b, e in resources.ranges(name)) + "]")
        else:
            parts.append(f"{label}:{{" + ", ".join(sorted(resources.set_items(name))) + "}")
    return "; ".join(parts)


def iter_tasks_of_operations(operations: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every TaskInfo inside LAUNCH and LAUNCH_GROUP operations."""
    for operation in operations:
        if operation.get("type") == "LAUNCH":
            yield from operation.get("launch", {}).get("task_infos", [])
        elif operation.get("type") == "LAUNCH_GROUP":
            yield from operation.get("launch_group", {}).get("task_group", {}).get("tasks", [])
