"""The Mesos v1 wire forms every side shares (pure, standard library only): the scheduler, the
embedded master and agents in `local/`, and the `isolator` executor all read and write them here.

Public API:

- `TERMINAL_TASK_STATES`, `is_terminal_state(name)`: Mesos' `protobuf::isTerminalState`.
- `format_duration(seconds)`, `parse_duration(text)`: stout's Duration text (`5secs`, `250ms`).
- `duration_info(seconds)`, `duration_info_seconds(info, default)`, `duration_info_nanoseconds(info)`:
  the `DurationInfo` message (`{"nanoseconds": n}`).
- `kill_grace_seconds(kill_policy, default)`: a `KillPolicy`'s grace period in seconds.
- `resources_to_mesos(resources)`, `resources_from_mesos(items, lenient=False)`,
  `resources_from_mesos_by_role(items)`, `mesos_order(names)`: the one codec between `Resources` and a
  Mesos `Resource` JSON list (strict for the scheduler; lenient for the embedded master);
  `resource_labels(entry)`: one entry's `(role, allocation_role)` as the codec groups it.
- `ZooKeeperUrl`, `parse_zk_url(url)`: a `zk://[user:password@]host:port[,...][/path]` URL;
  `ZOOKEEPER_RECONNECT`: how the project's ZooKeeper clients reconnect.
- `json_kind(value)`: the JSON type name stout writes in conversion errors.
- `MasterUrl`: a master address, or a callable answering the current leader's (None when unknown).

Example::

    items = resources_to_mesos(Resources.of(cpus=1, mem=32))
    assert items[0] == {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"}
    assert resources_from_mesos(items) == Resources.of(cpus=1, mem=32)
    assert parse_duration(format_duration(900)) == 900        # "15mins"
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mesos_gpu.core.resources import Range, Resources, ResourcesError, to_milli

__all__ = [
    "TERMINAL_TASK_STATES",
    "ZOOKEEPER_RECONNECT",
    "MasterUrl",
    "ZooKeeperUrl",
    "duration_info",
    "duration_info_nanoseconds",
    "duration_info_seconds",
    "format_duration",
    "is_terminal_state",
    "json_kind",
    "kill_grace_seconds",
    "mesos_order",
    "parse_duration",
    "parse_zk_url",
    "resource_labels",
    "resources_from_mesos",
    "resources_from_mesos_by_role",
    "resources_to_mesos",
]

MasterUrl = str | Callable[[], str | None]
"""A master's `host:port` / URL, or a callable giving the current leader's (None while unknown)."""

# --------------------------------------------------------------------------- task states
TERMINAL_TASK_STATES = frozenset(
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
"""The TaskState names after which a task never runs again (`protobuf::isTerminalState` in
`src/common/protobuf_utils.cpp`); TASK_UNREACHABLE and TASK_UNKNOWN are not terminal."""


def is_terminal_state(name: str) -> bool:
    """Whether the TaskState `name` ("TASK_FINISHED") is terminal."""
    return name in TERMINAL_TASK_STATES


# --------------------------------------------------------------------------- durations
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
_UNIT_SECONDS = dict(_DURATION_UNITS)
_DURATION = re.compile(
    r"\s*(-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?)\s*(ns|us|ms|secs|mins|hrs|days|weeks)\s*"
)


def format_duration(seconds: float) -> str:
    """Mesos' Duration text (stout `operator<<`): the largest unit that fits, e.g. 5 -> `5secs`,
    900 -> `15mins`, 1.5 -> `1.5secs`, 0.25 -> `250ms`, 0 -> `0ns`."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size in _DURATION_UNITS[:-1]:
        if seconds >= size:
            return f"{sign}{seconds / size:.15g}{unit}"
    return f"{sign}{round(seconds / 1e-9)}ns"


def parse_duration(text: str) -> float:
    """Seconds from Duration text (`5secs`, `500ms`, `1.5mins`; units ns us ms secs mins hrs days
    weeks): the inverse of `format_duration`. ValueError when it is not one."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"Invalid duration '{text}'")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def duration_info(seconds: float) -> dict[str, int]:
    """A `DurationInfo` JSON: `{"nanoseconds": n}` (rounded to the nearest nanosecond)."""
    return {"nanoseconds": round(seconds * 1e9)}


def duration_info_nanoseconds(info: Any) -> int | None:
    """The nanoseconds of a `DurationInfo` JSON, or None when absent or malformed."""
    if not isinstance(info, Mapping) or "nanoseconds" not in info:
        return None
    try:
        return int(info["nanoseconds"])
    except (TypeError, ValueError):
        return None


def duration_info_seconds(info: Any, default: float) -> float:
    """Seconds from a `DurationInfo` JSON, or `default` when absent or malformed."""
    nanoseconds = duration_info_nanoseconds(info)
    return default if nanoseconds is None else nanoseconds / 1e9


def kill_grace_seconds(kill_policy: Any, default: float) -> float:
    """`KillPolicy.grace_period` in seconds (never negative), or `default` when the policy or its
    grace period is absent or malformed."""
    if not isinstance(kill_policy, Mapping):
        return default
    return max(0.0, duration_info_seconds(kill_policy.get("grace_period"), default))


# --------------------------------------------------------------------------- resources
_Key = tuple[str, str | None]
_UNRESERVED = "*"
_UNLABELLED: _Key = (_UNRESERVED, None)
_AGENT_ORDER = {"cpus": 0, "mem": 1, "gpus": 2, "disk": 3, "ports": 4}


def mesos_order(names: Iterable[str]) -> list[str]:
    """Resource names in the order a Mesos agent lists them: cpus, mem, gpus, disk, ports, then by name."""
    return sorted(names, key=lambda name: (_AGENT_ORDER.get(name, 99), name))


def resources_to_mesos(resources: Resources) -> list[dict[str, Any]]:
    """A Mesos `Resource` JSON list in the pre-refinement format Mesos writes: names in `mesos_order`,
    scalars as floats, `role` from `resources.role`, and `allocation_info` when it has an
    `allocation_role`. A name holding a scalar, ranges and a set gives one entry per kind."""
    out: list[dict[str, Any]] = []
    for name in mesos_order(resources.names()):
        milli = resources.scalar_milli(name)
        if milli:
            out.append({"name": name, "type": "SCALAR", "scalar": {"value": milli / 1000}})
        ranges = resources.ranges(name)
        if ranges:
            items = [{"begin": begin, "end": end} for begin, end in ranges]
            out.append({"name": name, "type": "RANGES", "ranges": {"range": items}})
        members = resources.set_items(name)
        if members:
            out.append({"name": name, "type": "SET", "set": {"item": sorted(members)}})
    for entry in out:
        entry["role"] = resources.role
        if resources.allocation_role is not None:
            entry["allocation_info"] = {"role": resources.allocation_role}
    return out


def resources_from_mesos(items: Any, *, lenient: bool = False) -> Resources:
    """`Resources` from a Mesos `Resource` JSON list (an offer's, a task's, an agent's).

    Strict (the default): every entry must be well formed and all share one `(role, allocation_role)`
    (the last reservation's role, or `role`; and `allocation_info.role`), else `ResourcesError`; use
    `resources_from_mesos_by_role` for an offer that mixes reserved and unreserved resources.
    `lenient=True` (the embedded master reading a framework's JSON, validated elsewhere): malformed
    entries and negative or non-finite scalars are skipped, the labels ignored (all unreserved).
    """
    by_role = resources_from_mesos_by_role(items, lenient=lenient)
    if len(by_role) > 1:
        raise ResourcesError(f"mixed roles in one Resource list: {sorted(map(str, by_role))}")
    return next(iter(by_role.values())) if by_role else Resources()


def resources_from_mesos_by_role(items: Any, *, lenient: bool = False) -> dict[_Key, Resources]:
    """A Mesos `Resource` JSON list split by `(role, allocation_role)`; see `resources_from_mesos`."""
    if not isinstance(items, (list, tuple)):
        if lenient:
            return {}
        if not isinstance(items, Iterable) or isinstance(items, (str, bytes, Mapping)):
            raise ResourcesError(f"a Resource list must be a JSON array, got {items!r}")
    parts: dict[_Key, tuple[dict[str, int], dict[str, list[Range]], dict[str, set[str]]]] = {}
    last_role: str | None = None
    last_allocation: str | None = None
    scalars: dict[str, int] = {}
    ranges: dict[str, list[Range]] = {}
    sets: dict[str, set[str]] = {}
    for entry in items:
        # The common entry (no reservations, no allocation info) inline: every offer of an OFFERS
        # event goes through here.
        if lenient:
            role, allocation = _UNRESERVED, None
        elif type(entry) is dict and "reservations" not in entry and "allocation_info" not in entry:
            role = entry.get("role", _UNRESERVED)
            if type(role) is not str or not role:
                role = _UNRESERVED
            allocation = None
        else:
            role, allocation = resource_labels(entry)
        if role != last_role or allocation != last_allocation:
            key = (role, allocation)
            scalars, ranges, sets = parts.get(key) or parts.setdefault(key, ({}, {}, {}))
            last_role, last_allocation = role, allocation
        try:
            _add_entry(entry, scalars, ranges, sets)
        except ResourcesError:
            if not lenient:
                raise
    return {
        key: Resources(scalars, ranges, sets, role=key[0], allocation_role=key[1])
        for key, (scalars, ranges, sets) in parts.items()
    }


def resource_labels(entry: Any) -> _Key:
    """`(role, allocation_role)` of one entry: the last reservation's role, else `role` ("*" when
    absent); `allocation_info.role`."""
    if not isinstance(entry, Mapping):
        raise ResourcesError(f"a Resource must be a JSON object, got {entry!r}")
    reservations = entry.get("reservations")
    role = reservations[-1].get("role") if reservations else entry.get("role")
    info = entry.get("allocation_info")
    allocation = info.get("role") if isinstance(info, Mapping) else None
    return (
        role if isinstance(role, str) and role else _UNRESERVED,
        allocation if isinstance(allocation, str) else None,
    )


def _add_entry(
    entry: Any, scalars: dict[str, int], ranges: dict[str, list[Range]], sets: dict[str, set[str]]
) -> None:
    """Add one well-formed `Resource` entry to the parts, or raise ResourcesError (adding nothing)."""
    if type(entry) is not dict and not isinstance(entry, Mapping):
        raise ResourcesError(f"a Resource must be a JSON object, got {entry!r}")
    name = entry.get("name")
    if type(name) is not str or not name:
        raise ResourcesError(f"resource without a name: {entry!r}")
    kind = entry.get("type", "SCALAR")
    if kind == "SCALAR":
        scalar = entry.get("scalar")
        value = scalar.get("value") if type(scalar) is dict or isinstance(scalar, Mapping) else None
        if value is None:
            raise ResourcesError(f"SCALAR resource {name!r} without scalar.value")
        if type(value) is int and value >= 0:
            milli = value * 1000
        elif type(value) is float and 0.0 <= value < 1e15:     # finite: `to_milli`'s rounding, inline
            milli = math.floor(value * 1000 + 0.5)
        else:
            milli = _milli(name, value)
        scalars[name] = scalars[name] + milli if name in scalars else milli
    elif kind == "RANGES":
        bounds = [_range(name, item) for item in _inner(entry, "ranges", "range")]
        if name in ranges:
            ranges[name].extend(bounds)
        else:
            ranges[name] = bounds
    elif kind == "SET":
        sets.setdefault(name, set()).update(str(item) for item in _inner(entry, "set", "item"))
    else:
        raise ResourcesError(f"resource {name!r} has unsupported type {kind!r}")


def _milli(name: str, value: Any) -> int:
    try:
        return to_milli(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ResourcesError(f"bad scalar {value!r} for {name!r}") from error


def _inner(entry: Mapping[str, Any], field: str, repeated: str) -> list[Any]:
    """`entry[field][repeated]` (a list; empty when absent)."""
    outer = entry.get(field) or {}
    items = outer.get(repeated) if isinstance(outer, Mapping) else None
    if items is None:
        return []
    if not isinstance(items, list):
        raise ResourcesError(f"{field}.{repeated} of a resource must be an array, got {items!r}")
    return items


def _range(name: str, item: Any) -> Range:
    try:
        begin, end = item["begin"], item["end"]
        if type(begin) is not int or type(end) is not int:
            begin, end = int(begin), int(end)
    except (KeyError, TypeError, ValueError) as error:
        raise ResourcesError(f"bad range {item!r} in {name!r}") from error
    if begin < 0 or end < begin:
        raise ResourcesError(f"invalid range [{begin}-{end}] in {name!r}")
    return begin, end


# --------------------------------------------------------------------------- ZooKeeper URLs
_SPACE = re.compile(r"\s")

#: How every long-lived ZooKeeper client of the project reconnects (kazoo `KazooRetry` arguments):
#: forever, backing off up to 2 s, well inside a session timeout, so that an outage keeps the session
#: (and its ephemeral nodes) whenever it can be kept; kazoo's default backs off up to an hour.
ZOOKEEPER_RECONNECT: Mapping[str, float] = {"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 2.0}


@dataclass(frozen=True)
class ZooKeeperUrl:
    """A parsed `zk://[user:password@]host:port[,host:port...][/path]`: `hosts` as kazoo takes them
    (`h1:2181,h2:2181`), `path` ("/" when the URL has none), `auth` ("user:password", as written)."""

    hosts: str
    path: str = "/"
    auth: str | None = None


def parse_zk_url(url: str) -> ZooKeeperUrl:
    """Parse a ZooKeeper URL as Mesos' `zookeeper::URL::parse` does (the `zk://` scheme required,
    credentials before the last '@', the path from the first '/'), and check what Mesos leaves to
    ZooKeeper: every host is `host:port` (port 1-65535), the path is a valid node path. ValueError
    otherwise, its text a sentence about the URL without the URL itself (callers add it where they
    show it).

    >>> parse_zk_url("zk://10.0.0.1:2181,10.0.0.2:2181/mesos-gpu/prod")
    ZooKeeperUrl(hosts='10.0.0.1:2181,10.0.0.2:2181', path='/mesos-gpu/prod', auth=None)
    """
    text = url.strip()
    if not text.startswith("zk://"):
        raise ValueError("ZooKeeper URL must start with zk:// (zk://host:port[,host:port]/path)")
    servers, slash, path = text[len("zk://") :].partition("/")
    auth = None
    if "@" in servers:
        auth, _, servers = servers.rpartition("@")
        if auth.count(":") != 1:
            raise ValueError("ZooKeeper URL credentials must be 'user:password'")
    if not servers:
        raise ValueError("ZooKeeper URL names no host (zk://host:port/path)")
    for server in servers.split(","):
        host, colon, port = server.rpartition(":")
        if not colon or not host or _SPACE.search(host) or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"ZooKeeper URL host {server!r} is not host:port")
    path = "/" + path if slash else "/"
    if path != "/" and any(part in ("", ".", "..") or _SPACE.search(part) for part in path.split("/")[1:]):
        raise ValueError(
            f"ZooKeeper URL needs a path without empty, '.' or '..' parts or a trailing '/', got {path!r}"
        )
    return ZooKeeperUrl(hosts=servers, path=path, auth=auth)


# --------------------------------------------------------------------------- JSON
def json_kind(value: object) -> str:
    """The JSON type of a decoded value as stout names it in errors: boolean, number, string, array,
    null or object."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"
