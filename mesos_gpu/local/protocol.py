"""Mesos v1 wire helpers shared by the local master and agents: RecordIO framing, ids, Duration text,
error texts, the wire forms of unreserved resources, and a protobuf-JSON converter for the v1 messages
(`convert(obj, "scheduler.Call")` parses like Mesos: unknown keys ignored, required fields enforced).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import socket
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.resources import Resources, to_milli

MESOS_VERSION = "1.11.0"
DEFAULT_HEARTBEAT_INTERVAL = 15.0
DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 31536000.0
MIN_CPUS = 0.01
MIN_MEM = 32.0

TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
)

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
PROTOBUF_UNSUPPORTED = "Failed to parse body into Call protobuf"


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


def executor_call_validation_error(detail: str) -> str:
    return f"Failed to validate Executor::Call: {detail}"


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
# Ids, durations, small JSON helpers


def new_master_id() -> str:
    return str(uuid.uuid4())


def new_stream_id() -> str:
    return str(uuid.uuid4())


def new_status_uuid() -> str:
    """A TaskStatus uuid as Mesos writes it in JSON: base64 of 16 random bytes."""
    return base64.b64encode(uuid.uuid4().bytes).decode("ascii")


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


_DURATION_UNITS = (
    ("weeks", 7 * 86400.0),
    ("days", 86400.0),
    ("hrs", 3600.0),
    ("mins", 60.0),
    ("secs", 1.0),
    ("ms", 1e-3),
    ("us", 1e-6),
    ("ns", 1e-9),
)


def format_duration(seconds: float) -> str:
    """Mesos' Duration text (stout `operator<<`): the largest unit that fits, e.g. 5 -> `5secs`,
    900 -> `15mins`, 1.5 -> `1.5secs`, 0.25 -> `250ms`."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size in _DURATION_UNITS:
        if seconds >= size or unit == "ns":
            amount = seconds / size
            if unit == "ns":
                amount = round(amount)
            return f"{sign}{amount:.15g}{unit}"
    raise AssertionError("unreachable")


def parse_duration(text: str) -> float:
    """The inverse of `format_duration` (units ns us ms secs mins hrs days weeks)."""
    match = re.fullmatch(r"\s*(-?[0-9.]+(?:e-?\d+)?)\s*(ns|us|ms|secs|mins|hrs|days|weeks)\s*", text)
    if match is None:
        raise ValueError(f"Invalid duration '{text}'")
    scale = dict(_DURATION_UNITS)[match.group(2)]
    return float(match.group(1)) * scale


def duration_info_seconds(info: Any, default: float) -> float:
    """Seconds from a DurationInfo JSON `{"nanoseconds": n}`."""
    if isinstance(info, dict) and "nanoseconds" in info:
        try:
            return int(info["nanoseconds"]) / 1e9
        except (TypeError, ValueError):
            return default
    return default


def decode_bytes(text: str) -> bytes:
    """Base64 as Mesos decodes JSON `bytes` fields (standard alphabet, padding required)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


# ---------------------------------------------------------------------------------------------------
# Resources on the wire: the local master's JSON, /state and text forms of unreserved resources (role
# "*"), over the pure value type mesos_gpu.resources.Resources (fixed-point scalars, 3 decimals).

_MILLI = to_milli(1)
_NAME_ORDER = {"cpus": 0, "mem": 1, "gpus": 2, "disk": 3, "ports": 4}


def resources_from_json(items: Any) -> Resources:
    """Unreserved Resources from a converted JSON list of Resource, leniently: roles are ignored, malformed
    items (and negative ranges) skipped, a name's scalars summed (zero or negative totals dropped)."""
    scalars: dict[str, int] = {}
    ranges: dict[str, list[tuple[int, int]]] = {}
    sets: dict[str, set[str]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        kind = item.get("type", "SCALAR")
        if kind == "SCALAR" and isinstance(item.get("scalar"), dict):
            try:
                amount = float(item["scalar"].get("value", 0))
            except (TypeError, ValueError):
                continue
            if math.isfinite(amount * _MILLI):  # huge values overflow to inf: malformed, skipped
                scalars[name] = scalars.get(name, 0) + round(amount * _MILLI)
        elif kind == "RANGES" and isinstance(item.get("ranges"), dict):
            for rng in item["ranges"].get("range", []) or []:
                try:
                    begin, end = int(rng["begin"]), int(rng["end"])
                except (KeyError, TypeError, ValueError):
                    continue
                if 0 <= begin <= end:
                    ranges.setdefault(name, []).append((begin, end))
        elif kind == "SET" and isinstance(item.get("set"), dict):
            sets.setdefault(name, set()).update(str(x) for x in item["set"].get("item", []) or [])
    return Resources({k: v for k, v in scalars.items() if v > 0}, ranges, sets)


def _ordered_names(resources: Resources) -> list[str]:
    """Names in the order a Mesos agent lists them (cpus, mem, gpus, disk, ports, then by name)."""
    return sorted(resources.names(), key=lambda n: (_NAME_ORDER.get(n, 99), n))


def _format_scalar(milli: int) -> str:
    text = f"{milli / _MILLI:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def resources_to_json(
    resources: Resources, role: str = "*", allocation_role: str | None = None
) -> list[dict[str, Any]]:
    """Resources in the pre-refinement format (`"role":"*"`, scalars as floats), optionally with
    allocation_info; one item per name (a scalar wins over ranges, ranges over a set)."""
    out: list[dict[str, Any]] = []
    for name in _ordered_names(resources):
        item: dict[str, Any]
        if resources.scalar_milli(name):
            item = {"name": name, "type": "SCALAR", "scalar": {"value": resources.scalar(name)}}
        elif resources.ranges(name):
            item = {
                "name": name,
                "type": "RANGES",
                "ranges": {"range": [{"begin": b, "end": e} for b, e in resources.ranges(name)]},
            }
        else:
            item = {"name": name, "type": "SET", "set": {"item": sorted(resources.set_items(name))}}
        item["role"] = role
        if allocation_role is not None:
            item["allocation_info"] = {"role": allocation_role}
        out.append(item)
    return out


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
    for name in _ordered_names(resources):
        label = name if allocation_role is None else f"{name}(allocated: {allocation_role})"
        if resources.scalar_milli(name):
            parts.append(f"{label}:{_format_scalar(resources.scalar_milli(name))}")
        elif resources.ranges(name):
            parts.append(f"{label}:[" + ", ".join(f"{b}-{e}" for b, e in resources.ranges(name)) + "]")
        else:
            parts.append(f"{label}:{{" + ", ".join(sorted(resources.set_items(name))) + "}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------------
# protobuf-JSON conversion against the v1 protos (the subset the scheduler and executor APIs use)
#
# A field spec is "<type><label>": label "!" required, "*" repeated, "" optional. Types: string, bool,
# double, int, bytes, enum:<Name>, map:<type> (a proto map<string, type> as a JSON object), any (an
# object kept as-is; left only on call-side fields no event carries), or a message name.


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


ENUMS: dict[str, frozenset[str]] = {
    "Call.Type": _names(
        "UNKNOWN SUBSCRIBE TEARDOWN ACCEPT DECLINE ACCEPT_INVERSE_OFFERS DECLINE_INVERSE_OFFERS REVIVE "
        "KILL SHUTDOWN ACKNOWLEDGE ACKNOWLEDGE_OPERATION_STATUS RECONCILE RECONCILE_OPERATIONS MESSAGE "
        "REQUEST SUPPRESS UPDATE_FRAMEWORK"
    ),
    "Event.Type": _names(
        "UNKNOWN SUBSCRIBED OFFERS INVERSE_OFFERS RESCIND RESCIND_INVERSE_OFFER UPDATE "
        "UPDATE_OPERATION_STATUS MESSAGE FAILURE ERROR HEARTBEAT"
    ),
    "ExecutorCall.Type": _names("UNKNOWN SUBSCRIBE UPDATE MESSAGE HEARTBEAT"),
    "ExecutorEvent.Type": _names(
        "UNKNOWN SUBSCRIBED LAUNCH LAUNCH_GROUP KILL ACKNOWLEDGED MESSAGE ERROR SHUTDOWN HEARTBEAT"
    ),
    "Capability": _names(
        "UNKNOWN REVOCABLE_RESOURCES TASK_KILLING_STATE GPU_RESOURCES SHARED_RESOURCES PARTITION_AWARE "
        "MULTI_ROLE RESERVATION_REFINEMENT REGION_AWARE"
    ),
    "MasterCapability": _names("UNKNOWN AGENT_UPDATE AGENT_DRAINING QUOTA_V2"),
    "Value.Type": _names("SCALAR RANGES SET TEXT"),
    "Operation.Type": _names(
        "UNKNOWN LAUNCH LAUNCH_GROUP RESERVE UNRESERVE CREATE DESTROY GROW_VOLUME SHRINK_VOLUME "
        "CREATE_DISK DESTROY_DISK"
    ),
    "ExecutorInfo.Type": _names("UNKNOWN DEFAULT CUSTOM"),
    "ContainerInfo.Type": _names("DOCKER MESOS"),
    "DockerInfo.Network": _names("HOST BRIDGE NONE USER"),
    "Image.Type": _names("APPC DOCKER"),
    "Volume.Mode": _names("RW RO"),
    "Variable.Type": _names("UNKNOWN VALUE SECRET"),
    "TaskState": _names(
        "TASK_STAGING TASK_STARTING TASK_RUNNING TASK_KILLING TASK_FINISHED TASK_FAILED TASK_KILLED "
        "TASK_ERROR TASK_LOST TASK_DROPPED TASK_UNREACHABLE TASK_GONE TASK_GONE_BY_OPERATOR "
        "TASK_UNKNOWN"
    ),
    "Source": _names("SOURCE_MASTER SOURCE_AGENT SOURCE_EXECUTOR"),
    "Reason": _names(
        "REASON_COMMAND_EXECUTOR_FAILED REASON_CONTAINER_LAUNCH_FAILED REASON_CONTAINER_LIMITATION "
        "REASON_CONTAINER_LIMITATION_DISK REASON_CONTAINER_LIMITATION_MEMORY REASON_CONTAINER_PREEMPTED "
        "REASON_CONTAINER_UPDATE_FAILED REASON_MAX_COMPLETION_TIME_REACHED "
        "REASON_EXECUTOR_REGISTRATION_TIMEOUT "
        "REASON_EXECUTOR_REREGISTRATION_TIMEOUT REASON_EXECUTOR_TERMINATED REASON_EXECUTOR_UNREGISTERED "
        "REASON_FRAMEWORK_REMOVED REASON_GC_ERROR REASON_INVALID_FRAMEWORKID REASON_INVALID_OFFERS "
        "REASON_IO_SWITCHBOARD_EXITED REASON_MASTER_DISCONNECTED REASON_RECONCILIATION "
        "REASON_RESOURCES_UNKNOWN REASON_AGENT_DISCONNECTED REASON_AGENT_DRAINING REASON_AGENT_REMOVED "
        "REASON_AGENT_REMOVED_BY_OPERATOR REASON_AGENT_REREGISTERED REASON_AGENT_RESTARTED "
        "REASON_AGENT_UNKNOWN REASON_TASK_KILLED_DURING_LAUNCH REASON_TASK_CHECK_STATUS_UPDATED "
        "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED REASON_TASK_GROUP_INVALID REASON_TASK_GROUP_UNAUTHORIZED "
        "REASON_TASK_INVALID REASON_TASK_UNAUTHORIZED REASON_TASK_UNKNOWN"
    ),
    "KillPolicy.Type": frozenset(),
    "AgentInfo.Capability.Type": _names(
        "UNKNOWN MULTI_ROLE HIERARCHICAL_ROLE RESERVATION_REFINEMENT RESOURCE_PROVIDER RESIZE_VOLUME "
        "AGENT_OPERATION_FEEDBACK AGENT_DRAINING TASK_RESOURCE_LIMITS"
    ),
    "Resource.ReservationInfo.Type": _names("UNKNOWN STATIC DYNAMIC"),
    "Resource.DiskInfo.Source.Type": _names("UNKNOWN PATH MOUNT BLOCK RAW"),
    "NetworkInfo.Protocol": _names("IPv4 IPv6"),
    "HealthCheck.Type": _names("UNKNOWN COMMAND HTTP TCP"),
    "CheckInfo.Type": _names("UNKNOWN COMMAND HTTP TCP"),
    "DiscoveryInfo.Visibility": _names("FRAMEWORK CLUSTER EXTERNAL"),
    "CapabilityInfo.Capability": _names(
        "UNKNOWN CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE "
        "SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
        "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
        "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE"
    ),
    "LinuxInfo.IpcMode": _names("UNKNOWN PRIVATE SHARE_PARENT"),
    "RLimitInfo.RLimit.Type": _names(
        "UNKNOWN RLMT_AS RLMT_CORE RLMT_CPU RLMT_DATA RLMT_FSIZE RLMT_LOCKS RLMT_MEMLOCK RLMT_MSGQUEUE "
        "RLMT_NICE RLMT_NOFILE RLMT_NPROC RLMT_RSS RLMT_RTPRIO RLMT_RTTIME RLMT_SIGPENDING RLMT_STACK"
    ),
    "Secret.Type": _names("UNKNOWN REFERENCE VALUE"),
    "MountPropagation.Mode": _names("UNKNOWN HOST_TO_CONTAINER BIDIRECTIONAL"),
    "Volume.Source.Type": _names("UNKNOWN DOCKER_VOLUME HOST_PATH SANDBOX_PATH SECRET CSI_VOLUME"),
    "Volume.Source.SandboxPath.Type": _names("UNKNOWN SELF PARENT"),
    "CSIVolume.AccessMode.Mode": _names(
        "UNKNOWN SINGLE_NODE_WRITER SINGLE_NODE_READER_ONLY MULTI_NODE_READER_ONLY "
        "MULTI_NODE_SINGLE_WRITER MULTI_NODE_MULTI_WRITER"
    ),
    "OperationState": _names(
        "OPERATION_UNSUPPORTED OPERATION_PENDING OPERATION_FINISHED OPERATION_FAILED OPERATION_ERROR "
        "OPERATION_DROPPED OPERATION_UNREACHABLE OPERATION_GONE_BY_OPERATOR OPERATION_RECOVERING "
        "OPERATION_UNKNOWN"
    ),
}

MESSAGES: dict[str, dict[str, str]] = {
    "ID": {"value": "string!"},
    "Label": {"key": "string!", "value": "string"},
    "Labels": {"labels": "Label*"},
    "DurationInfo": {"nanoseconds": "int!"},
    "TimeInfo": {"nanoseconds": "int!"},
    "Value.Scalar": {"value": "double!"},
    "Value.Range": {"begin": "int!", "end": "int!"},
    "Value.Ranges": {"range": "Value.Range*"},
    "Value.Set": {"item": "string*"},
    "Value.Text": {"value": "string!"},
    "AllocationInfo": {"role": "string"},
    "Resource.ReservationInfo": {
        "type": "enum:Resource.ReservationInfo.Type",
        "role": "string",
        "principal": "string",
        "labels": "Labels",
    },
    "Resource.DiskInfo.Persistence": {"id": "string!", "principal": "string"},
    "Resource.DiskInfo.Source.Path": {"root": "string"},
    "Resource.DiskInfo.Source.Mount": {"root": "string"},
    "Resource.DiskInfo.Source": {
        "type": "enum:Resource.DiskInfo.Source.Type!",
        "path": "Resource.DiskInfo.Source.Path",
        "mount": "Resource.DiskInfo.Source.Mount",
        "vendor": "string",
        "id": "string",
        "metadata": "Labels",
        "profile": "string",
    },
    "Resource.DiskInfo": {
        "persistence": "Resource.DiskInfo.Persistence",
        "volume": "Volume",
        "source": "Resource.DiskInfo.Source",
    },
    "Resource.RevocableInfo": {},
    "Resource.SharedInfo": {},
    "Resource": {
        "name": "string!",
        "type": "enum:Value.Type!",
        "scalar": "Value.Scalar",
        "ranges": "Value.Ranges",
        "set": "Value.Set",
        "role": "string",
        "allocation_info": "AllocationInfo",
        "reservation": "Resource.ReservationInfo",
        "reservations": "Resource.ReservationInfo*",
        "disk": "Resource.DiskInfo",
        "revocable": "Resource.RevocableInfo",
        "shared": "Resource.SharedInfo",
        "provider_id": "ID",
    },
    "Attribute": {
        "name": "string!",
        "type": "enum:Value.Type!",
        "scalar": "Value.Scalar",
        "ranges": "Value.Ranges",
        "set": "Value.Set",
        "text": "Value.Text",
    },
    "Capability": {"type": "enum:Capability"},
    "MasterCapability": {"type": "enum:MasterCapability"},
    "OfferFilters.ResourceQuantities": {"quantities": "map:Value.Scalar"},
    "OfferFilters.MinAllocatableResources": {"quantities": "OfferFilters.ResourceQuantities*"},
    "OfferFilters": {"min_allocatable_resources": "OfferFilters.MinAllocatableResources"},
    "FrameworkInfo": {
        "user": "string!",
        "name": "string!",
        "id": "ID",
        "failover_timeout": "double",
        "checkpoint": "bool",
        "role": "string",
        "roles": "string*",
        "hostname": "string",
        "principal": "string",
        "webui_url": "string",
        "capabilities": "Capability*",
        "labels": "Labels",
        "offer_filters": "map:OfferFilters",
    },
    "Filters": {"refuse_seconds": "double"},
    "Secret.Reference": {"name": "string!", "key": "string"},
    "Secret.Value": {"data": "bytes!"},
    "Secret": {"type": "enum:Secret.Type", "reference": "Secret.Reference", "value": "Secret.Value"},
    "Variable": {"name": "string!", "type": "enum:Variable.Type", "value": "string", "secret": "Secret"},
    "Environment": {"variables": "Variable*"},
    "URI": {
        "value": "string!",
        "executable": "bool",
        "extract": "bool",
        "cache": "bool",
        "output_file": "string",
    },
    "CommandInfo": {
        "uris": "URI*",
        "environment": "Environment",
        "shell": "bool",
        "value": "string",
        "arguments": "string*",
        "user": "string",
    },
    "Credential": {"principal": "string!", "secret": "string"},
    "Image.Appc": {"name": "string!", "id": "string", "labels": "Labels"},
    "Image.Docker": {"name": "string!", "credential": "Credential", "config": "Secret"},
    "Image": {"type": "enum:Image.Type!", "appc": "Image.Appc", "docker": "Image.Docker", "cached": "bool"},
    "MountPropagation": {"mode": "enum:MountPropagation.Mode"},
    "Volume.Source.DockerVolume": {"driver": "string", "name": "string!", "driver_options": "Parameters"},
    "Volume.Source.HostPath": {"path": "string!", "mount_propagation": "MountPropagation"},
    "Volume.Source.SandboxPath": {"type": "enum:Volume.Source.SandboxPath.Type", "path": "string!"},
    "CSIVolume.BlockVolume": {},
    "CSIVolume.MountVolume": {"fs_type": "string", "mount_flags": "string*"},
    "CSIVolume.AccessMode": {"mode": "enum:CSIVolume.AccessMode.Mode!"},
    "CSIVolume.VolumeCapability": {
        "block": "CSIVolume.BlockVolume",
        "mount": "CSIVolume.MountVolume",
        "access_mode": "CSIVolume.AccessMode!",
    },
    "CSIVolume.StaticProvisioning": {
        "volume_id": "string!",
        "volume_capability": "CSIVolume.VolumeCapability!",
        "node_stage_secrets": "map:Secret",
        "node_publish_secrets": "map:Secret",
        "volume_context": "map:string",
    },
    "Volume.Source.CSIVolume": {
        "plugin_name": "string!",
        "static_provisioning": "CSIVolume.StaticProvisioning",
    },
    "Volume.Source": {
        "type": "enum:Volume.Source.Type",
        "docker_volume": "Volume.Source.DockerVolume",
        "host_path": "Volume.Source.HostPath",
        "sandbox_path": "Volume.Source.SandboxPath",
        "secret": "Secret",
        "csi_volume": "Volume.Source.CSIVolume",
    },
    "Volume": {
        "mode": "enum:Volume.Mode",
        "container_path": "string!",
        "host_path": "string",
        "image": "Image",
        "source": "Volume.Source",
    },
    "PortMapping": {"host_port": "int!", "container_port": "int!", "protocol": "string"},
    "Parameter": {"key": "string!", "value": "string!"},
    "Parameters": {"parameter": "Parameter*"},
    "NetworkInfo.IPAddress": {"protocol": "enum:NetworkInfo.Protocol", "ip_address": "string"},
    "NetworkInfo.PortMapping": {"host_port": "int!", "container_port": "int!", "protocol": "string"},
    "NetworkInfo": {
        "ip_addresses": "NetworkInfo.IPAddress*",
        "name": "string",
        "groups": "string*",
        "labels": "Labels",
        "port_mappings": "NetworkInfo.PortMapping*",
    },
    "CapabilityInfo": {"capabilities": "enum:CapabilityInfo.Capability*"},
    "SeccompInfo": {"profile_name": "string", "unconfined": "bool"},
    "LinuxInfo": {
        "capability_info": "CapabilityInfo",
        "bounding_capabilities": "CapabilityInfo",
        "effective_capabilities": "CapabilityInfo",
        "share_pid_namespace": "bool",
        "seccomp": "SeccompInfo",
        "ipc_mode": "enum:LinuxInfo.IpcMode",
        "shm_size": "int",
        "share_cgroups": "bool",
    },
    "RLimitInfo.RLimit": {"type": "enum:RLimitInfo.RLimit.Type", "hard": "int", "soft": "int"},
    "RLimitInfo": {"rlimits": "RLimitInfo.RLimit*"},
    "TTYInfo.WindowSize": {"rows": "int!", "columns": "int!"},
    "TTYInfo": {"window_size": "TTYInfo.WindowSize"},
    "DockerInfo": {
        "image": "string!",
        "network": "enum:DockerInfo.Network",
        "port_mappings": "PortMapping*",
        "privileged": "bool",
        "parameters": "Parameter*",
        "force_pull_image": "bool",
        "volume_driver": "string",
    },
    "MesosInfo": {"image": "Image"},
    "ContainerInfo": {
        "type": "enum:ContainerInfo.Type!",
        "volumes": "Volume*",
        "hostname": "string",
        "docker": "DockerInfo",
        "mesos": "MesosInfo",
        "network_infos": "NetworkInfo*",
        "linux_info": "LinuxInfo",
        "rlimit_info": "RLimitInfo",
        "tty_info": "TTYInfo",
    },
    "KillPolicy": {"grace_period": "DurationInfo"},
    "Port": {
        "number": "int!",
        "name": "string",
        "protocol": "string",
        "visibility": "enum:DiscoveryInfo.Visibility",
        "labels": "Labels",
    },
    "Ports": {"ports": "Port*"},
    "DiscoveryInfo": {
        "visibility": "enum:DiscoveryInfo.Visibility!",
        "name": "string",
        "environment": "string",
        "location": "string",
        "version": "string",
        "ports": "Ports",
        "labels": "Labels",
    },
    "HealthCheck.HTTPCheckInfo": {
        "protocol": "enum:NetworkInfo.Protocol",
        "scheme": "string",
        "port": "int!",
        "path": "string",
        "statuses": "int*",
    },
    "HealthCheck.TCPCheckInfo": {"protocol": "enum:NetworkInfo.Protocol", "port": "int!"},
    "HealthCheck": {
        "delay_seconds": "double",
        "interval_seconds": "double",
        "timeout_seconds": "double",
        "consecutive_failures": "int",
        "grace_period_seconds": "double",
        "type": "enum:HealthCheck.Type",
        "command": "CommandInfo",
        "http": "HealthCheck.HTTPCheckInfo",
        "tcp": "HealthCheck.TCPCheckInfo",
    },
    "CheckInfo.Command": {"command": "CommandInfo!"},
    "CheckInfo.Http": {"port": "int!", "path": "string"},
    "CheckInfo.Tcp": {"port": "int!"},
    "CheckInfo": {
        "type": "enum:CheckInfo.Type",
        "command": "CheckInfo.Command",
        "http": "CheckInfo.Http",
        "tcp": "CheckInfo.Tcp",
        "delay_seconds": "double",
        "interval_seconds": "double",
        "timeout_seconds": "double",
    },
    "CheckStatusInfo.Command": {"exit_code": "int"},
    "CheckStatusInfo.Http": {"status_code": "int"},
    "CheckStatusInfo.Tcp": {"succeeded": "bool"},
    "CheckStatusInfo": {
        "type": "enum:CheckInfo.Type",
        "command": "CheckStatusInfo.Command",
        "http": "CheckStatusInfo.Http",
        "tcp": "CheckStatusInfo.Tcp",
    },
    "ExecutorInfo": {
        "type": "enum:ExecutorInfo.Type",
        "executor_id": "ID!",
        "framework_id": "ID",
        "command": "CommandInfo",
        "container": "ContainerInfo",
        "resources": "Resource*",
        "name": "string",
        "source": "string",
        "data": "bytes",
        "discovery": "DiscoveryInfo",
        "shutdown_grace_period": "DurationInfo",
        "labels": "Labels",
    },
    "TaskInfo": {
        "name": "string!",
        "task_id": "ID!",
        "agent_id": "ID!",
        "resources": "Resource*",
        "executor": "ExecutorInfo",
        "command": "CommandInfo",
        "container": "ContainerInfo",
        "health_check": "HealthCheck",
        "check": "CheckInfo",
        "kill_policy": "KillPolicy",
        "data": "bytes",
        "labels": "Labels",
        "discovery": "DiscoveryInfo",
        "max_completion_time": "DurationInfo",
        "limits": "map:Value.Scalar",
    },
    "TaskGroupInfo": {"tasks": "TaskInfo*"},
    "Operation.Launch": {"task_infos": "TaskInfo*"},
    "Operation.LaunchGroup": {"executor": "ExecutorInfo!", "task_group": "TaskGroupInfo!"},
    "Operation.Reserve": {"source": "Resource*", "resources": "Resource*"},
    "Operation.Unreserve": {"resources": "Resource*"},
    "Operation.Create": {"volumes": "Resource*"},
    "Operation.Destroy": {"volumes": "Resource*"},
    "Operation.GrowVolume": {"volume": "Resource!", "addition": "Resource!"},
    "Operation.ShrinkVolume": {"volume": "Resource!", "subtract": "Value.Scalar!"},
    "Operation.CreateDisk": {
        "source": "Resource!",
        "target_type": "enum:Resource.DiskInfo.Source.Type!",
        "target_profile": "string",
    },
    "Operation.DestroyDisk": {"source": "Resource!"},
    "Operation": {
        "type": "enum:Operation.Type",
        "id": "ID",
        "launch": "Operation.Launch",
        "launch_group": "Operation.LaunchGroup",
        "reserve": "Operation.Reserve",
        "unreserve": "Operation.Unreserve",
        "create": "Operation.Create",
        "destroy": "Operation.Destroy",
        "grow_volume": "Operation.GrowVolume",
        "shrink_volume": "Operation.ShrinkVolume",
        "create_disk": "Operation.CreateDisk",
        "destroy_disk": "Operation.DestroyDisk",
    },
    "Call.Subscribe": {
        "framework_info": "FrameworkInfo!",
        "suppressed_roles": "string*",
        "offer_constraints": "any",
    },
    "Call.Accept": {"offer_ids": "ID*", "operations": "Operation*", "filters": "Filters"},
    "Call.Decline": {"offer_ids": "ID*", "filters": "Filters"},
    "Call.AcceptInverseOffers": {"inverse_offer_ids": "ID*", "filters": "Filters"},
    "Call.DeclineInverseOffers": {"inverse_offer_ids": "ID*", "filters": "Filters"},
    "Call.Revive": {"roles": "string*"},
    "Call.Suppress": {"roles": "string*"},
    "Call.Kill": {"task_id": "ID!", "agent_id": "ID", "kill_policy": "KillPolicy"},
    "Call.Shutdown": {"executor_id": "ID!", "agent_id": "ID!"},
    "Call.Acknowledge": {"agent_id": "ID!", "task_id": "ID!", "uuid": "bytes!"},
    "Call.AcknowledgeOperationStatus": {
        "agent_id": "ID",
        "resource_provider_id": "ID",
        "uuid": "bytes!",
        "operation_id": "ID!",
    },
    "Call.Reconcile.Task": {"task_id": "ID!", "agent_id": "ID"},
    "Call.Reconcile": {"tasks": "Call.Reconcile.Task*"},
    "Call.ReconcileOperations.Operation": {
        "operation_id": "ID!",
        "agent_id": "ID",
        "resource_provider_id": "ID",
    },
    "Call.ReconcileOperations": {"operations": "Call.ReconcileOperations.Operation*"},
    "Call.Message": {"agent_id": "ID!", "executor_id": "ID!", "data": "bytes!"},
    "Request": {"agent_id": "ID", "resources": "Resource*"},
    "Call.Request": {"requests": "Request*"},
    "Call.UpdateFramework": {
        "framework_info": "FrameworkInfo!",
        "suppressed_roles": "string*",
        "offer_constraints": "any",
    },
    "scheduler.Call": {
        "framework_id": "ID",
        "type": "enum:Call.Type",
        "subscribe": "Call.Subscribe",
        "accept": "Call.Accept",
        "decline": "Call.Decline",
        "accept_inverse_offers": "Call.AcceptInverseOffers",
        "decline_inverse_offers": "Call.DeclineInverseOffers",
        "revive": "Call.Revive",
        "suppress": "Call.Suppress",
        "kill": "Call.Kill",
        "shutdown": "Call.Shutdown",
        "acknowledge": "Call.Acknowledge",
        "acknowledge_operation_status": "Call.AcknowledgeOperationStatus",
        "reconcile": "Call.Reconcile",
        "reconcile_operations": "Call.ReconcileOperations",
        "message": "Call.Message",
        "request": "Call.Request",
        "update_framework": "Call.UpdateFramework",
    },
    # events
    "Address": {"hostname": "string", "ip": "string", "port": "int!"},
    "URL": {
        "scheme": "string!",
        "address": "Address!",
        "path": "string",
        "query": "Parameter*",
        "fragment": "string",
    },
    "DomainInfo.FaultDomain.RegionInfo": {"name": "string!"},
    "DomainInfo.FaultDomain.ZoneInfo": {"name": "string!"},
    "DomainInfo.FaultDomain": {
        "region": "DomainInfo.FaultDomain.RegionInfo!",
        "zone": "DomainInfo.FaultDomain.ZoneInfo!",
    },
    "DomainInfo": {"fault_domain": "DomainInfo.FaultDomain"},
    "Unavailability": {"start": "TimeInfo!", "duration": "DurationInfo"},
    "AgentInfo.Capability": {"type": "enum:AgentInfo.Capability.Type"},
    "MasterInfo": {
        "id": "string!",
        "ip": "int!",
        "port": "int!",
        "pid": "string",
        "hostname": "string",
        "version": "string",
        "address": "Address",
        "domain": "DomainInfo",
        "capabilities": "MasterCapability*",
    },
    "AgentInfo": {
        "hostname": "string!",
        "port": "int",
        "resources": "Resource*",
        "attributes": "Attribute*",
        "id": "ID",
        "domain": "DomainInfo",
        "capabilities": "AgentInfo.Capability*",
    },
    "Offer": {
        "id": "ID!",
        "framework_id": "ID!",
        "agent_id": "ID!",
        "hostname": "string!",
        "url": "URL",
        "domain": "DomainInfo",
        "resources": "Resource*",
        "attributes": "Attribute*",
        "executor_ids": "ID*",
        "unavailability": "Unavailability",
        "allocation_info": "AllocationInfo",
    },
    "InverseOffer": {
        "id": "ID!",
        "url": "URL",
        "framework_id": "ID!",
        "agent_id": "ID",
        "unavailability": "Unavailability!",
        "resources": "Resource*",
    },
    "UUID": {"value": "bytes!"},
    "OperationStatus": {
        "operation_id": "ID",
        "state": "enum:OperationState!",
        "message": "string",
        "converted_resources": "Resource*",
        "uuid": "UUID",
        "agent_id": "ID",
        "resource_provider_id": "ID",
    },
    "CgroupInfo.NetCls": {"classid": "int"},
    "CgroupInfo": {"net_cls": "CgroupInfo.NetCls"},
    "TaskResourceLimitation": {"resources": "Resource*"},
    "ContainerStatus": {
        "container_id": "ContainerID",
        "network_infos": "NetworkInfo*",
        "cgroup_info": "CgroupInfo",
        "executor_pid": "int",
    },
    "ContainerID": {"value": "string!", "parent": "ContainerID"},
    "TaskStatus": {
        "task_id": "ID!",
        "state": "enum:TaskState!",
        "message": "string",
        "source": "enum:Source",
        "reason": "enum:Reason",
        "data": "bytes",
        "agent_id": "ID",
        "executor_id": "ID",
        "timestamp": "double",
        "uuid": "bytes",
        "healthy": "bool",
        "check_status": "CheckStatusInfo",
        "labels": "Labels",
        "container_status": "ContainerStatus",
        "unreachable_time": "TimeInfo",
        "limitation": "TaskResourceLimitation",
    },
    "Event.Subscribed": {
        "framework_id": "ID!",
        "heartbeat_interval_seconds": "double",
        "master_info": "MasterInfo",
    },
    "Event.Offers": {"offers": "Offer*"},
    "Event.InverseOffers": {"inverse_offers": "InverseOffer*"},
    "Event.Rescind": {"offer_id": "ID!"},
    "Event.RescindInverseOffer": {"inverse_offer_id": "ID!"},
    "Event.UpdateOperationStatus": {"status": "OperationStatus!"},
    "Event.Update": {"status": "TaskStatus!"},
    "Event.Message": {"agent_id": "ID!", "executor_id": "ID!", "data": "bytes!"},
    "Event.Failure": {"agent_id": "ID", "executor_id": "ID", "status": "int"},
    "Event.Error": {"message": "string!"},
    "scheduler.Event": {
        "type": "enum:Event.Type",
        "subscribed": "Event.Subscribed",
        "offers": "Event.Offers",
        "rescind": "Event.Rescind",
        "update": "Event.Update",
        "message": "Event.Message",
        "failure": "Event.Failure",
        "error": "Event.Error",
        "inverse_offers": "Event.InverseOffers",
        "rescind_inverse_offer": "Event.RescindInverseOffer",
        "update_operation_status": "Event.UpdateOperationStatus",
    },
    # executor API
    "ExecutorCall.Subscribe": {
        "unacknowledged_tasks": "TaskInfo*",
        "unacknowledged_updates": "ExecutorCall.Update*",
    },
    "ExecutorCall.Update": {"status": "TaskStatus!"},
    "ExecutorCall.Message": {"data": "bytes!"},
    "executor.Call": {
        "executor_id": "ID!",
        "framework_id": "ID!",
        "type": "enum:ExecutorCall.Type",
        "subscribe": "ExecutorCall.Subscribe",
        "update": "ExecutorCall.Update",
        "message": "ExecutorCall.Message",
    },
    "ExecutorEvent.Subscribed": {
        "executor_info": "ExecutorInfo!",
        "framework_info": "FrameworkInfo!",
        "agent_info": "AgentInfo!",
        "container_id": "ContainerID",
    },
    "ExecutorEvent.Launch": {"task": "TaskInfo!"},
    "ExecutorEvent.LaunchGroup": {"task_group": "TaskGroupInfo!"},
    "ExecutorEvent.Kill": {"task_id": "ID!", "kill_policy": "KillPolicy"},
    "ExecutorEvent.Acknowledged": {"task_id": "ID!", "uuid": "bytes!"},
    "ExecutorEvent.Message": {"data": "bytes!"},
    "ExecutorEvent.Error": {"message": "string!"},
    "executor.Event": {
        "type": "enum:ExecutorEvent.Type",
        "subscribed": "ExecutorEvent.Subscribed",
        "launch": "ExecutorEvent.Launch",
        "launch_group": "ExecutorEvent.LaunchGroup",
        "kill": "ExecutorEvent.Kill",
        "acknowledged": "ExecutorEvent.Acknowledged",
        "message": "ExecutorEvent.Message",
        "error": "ExecutorEvent.Error",
    },
}

_INT_STRING = re.compile(r"-?\d+")
_DOUBLE_WORDS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


class ConversionError(ValueError):
    """The JSON does not convert into the protobuf message; the text is Mesos' (stout) wording."""


def _json_kind(item: Any) -> str:
    if isinstance(item, bool):
        return "boolean"
    if isinstance(item, (int, float)):
        return "number"
    if isinstance(item, str):
        return "string"
    if isinstance(item, list):
        return "array"
    if item is None:
        return "null"
    return "object"


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
            kind, label = _split_spec(spec[key])
            sub = f"{path}.{key}" if path else key
            if item is None:
                continue
            if label == "*":
                if not isinstance(item, list):
                    raise ConversionError(f"Not expecting a JSON {_json_kind(item)} for field '{key}'")
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
            if fspec.endswith("!") and key not in out:
                self.missing.append(f"{path}.{key}" if path else key)
        return out

    def single(self, item: Any, kind: str, key: str, path: str) -> Any:
        wrong = ConversionError(f"Not expecting a JSON {_json_kind(item)} for field '{key}'")
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
        if kind == "int":
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
        if kind == "any":
            if not isinstance(item, (dict, list)):
                raise wrong
            return item
        return self.message(item, kind, path)

    def map_field(self, item: Any, value_kind: str, key: str, path: str) -> dict[str, Any]:
        """A proto `map<string, V>` as stout parses it: a JSON object whose values each fill the entry's
        `value` field (so nested errors name field 'value' and missing paths read `f[i].value.x`)."""
        if not isinstance(item, dict):
            raise ConversionError(f"Not expecting a JSON {_json_kind(item)} for field '{key}'")
        out: dict[str, Any] = {}
        for index, (name, element) in enumerate(item.items()):
            if element is None:
                continue
            converted = self.single(element, value_kind, "value", f"{path}[{index}].value")
            if converted is not _DROP:
                out[name] = converted
        return out


_DROP = object()


def _split_spec(spec: str) -> tuple[str, str]:
    if spec[-1] in "!*":
        return spec[:-1], spec[-1]
    return spec, ""


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


def iter_tasks_of_operations(operations: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every TaskInfo inside LAUNCH and LAUNCH_GROUP operations."""
    for operation in operations:
        if operation.get("type") == "LAUNCH":
            yield from operation.get("launch", {}).get("task_infos", [])
        elif operation.get("type") == "LAUNCH_GROUP":
            yield from operation.get("launch_group", {}).get("task_group", {}).get("tasks", [])
